"""A conversation as a whole: list its messages in order, or erase it."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime, timedelta

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_response

from application.delete_messages import EraseMessages
from application.list_conversation import ConversationPage, ListConversation
from application.ports.messages import Position
from config.container import Container
from domain.errors import FieldProblem, ValidationFailed
from entrypoints.http.auth import authenticate, current_principal, limit_tenant
from entrypoints.http.schemas.common import Problem, TenantArgs
from entrypoints.http.schemas.messages import ConversationOut, ConversationPageArgs, ErasureOut, MessageOut
from entrypoints.http.tenants import erasure_out

blueprint = Blueprint("conversations", __name__, url_prefix="/v1/conversations")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


def encode_cursor(position: Position) -> str:
    raw = json.dumps({"at": position.created_at.isoformat(), "id": str(position.message_id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_out(page: ConversationPage) -> ConversationOut:
    """A page of messages as a listing answers it (a conversation's or a user's)."""
    return ConversationOut(
        messages=[MessageOut.of(m) for m in page.messages],
        next_cursor=None if page.next is None else encode_cursor(page.next),
    )


MAX_CURSOR_CHARS = 256  # what encode_cursor makes is about 110


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; a 422 naming `cursor` for anything this service did not hand out."""
    refused = ValidationFailed(
        [FieldProblem("cursor", "is not a cursor this service handed out: pass next_cursor as it came")]
    )
    if len(cursor) > MAX_CURSOR_CHARS:
        raise refused
    try:
        fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if (
            not isinstance(fields, dict)
            or not isinstance(fields.get("at"), str)
            or not isinstance(fields.get("id"), str)
        ):
            raise refused
        at = datetime.fromisoformat(fields["at"])
        # Handed out in UTC, as read: a row stored as PostgreSQL's -infinity or infinity (before
        # created_at had a range) is at Python's first or last instant, and its page goes on.
        if at.utcoffset() != timedelta(0):
            raise refused
        return Position(at, uuid.UUID(fields["id"]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None


@blueprint.get("/<conversation_id>/messages")
@tag(["conversations"])
@validate_querystring(ConversationPageArgs)
@validate_response(ConversationOut, 200)
@validate_response(Problem, 422)
@inject
async def list_messages(
    conversation_id: str,
    query_args: ConversationPageArgs,
    listing: ListConversation = Provide[Container.list_conversation],
) -> ConversationOut:
    """The conversation's messages oldest first (or newest first, with order=newest), a page at a
    time (archived ones with include_archived). A cursor goes on in the order it is passed with."""
    await limit_tenant(query_args.tenant_id)
    page = await listing(
        current_principal(),
        query_args.tenant_id,
        conversation_id,
        after=None if query_args.cursor is None else decode_cursor(query_args.cursor),
        limit=query_args.limit,
        include_archived=query_args.include_archived,
        order=query_args.order,
    )
    return page_out(page)


@blueprint.delete("/<conversation_id>")
@tag(["conversations"])
@validate_querystring(TenantArgs)
@validate_response(ErasureOut, 200)
@validate_response(Problem, 422)
@inject
async def erase_conversation(
    conversation_id: str, query_args: TenantArgs, erase: EraseMessages = Provide[Container.erase_messages]
) -> ErasureOut:
    """Erase every message of the conversation, vectors included; the receipt counts what went."""
    await limit_tenant(query_args.tenant_id)
    return erasure_out(await erase.conversation(current_principal(), query_args.tenant_id, conversation_id))
