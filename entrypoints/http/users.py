"""One person's messages inside a tenant (their user_id): list, erase, export."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_response

from application.users import EraseUser, ExportUser, ListUserMessages
from config.container import Container
from domain.message import Message
from entrypoints.http.auth import authenticate, current_principal, limit_tenant
from entrypoints.http.conversations import decode_cursor, page_out
from entrypoints.http.schemas.common import Problem, TenantArgs
from entrypoints.http.schemas.messages import ConversationArgs, ConversationOut, MessageOut
from entrypoints.http.schemas.users import UserErasureOut

blueprint = Blueprint("users", __name__, url_prefix="/v1/users")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])

NDJSON = "application/x-ndjson"


@blueprint.get("/<user_id>/messages")
@tag(["users"])
@validate_querystring(ConversationArgs)
@validate_response(ConversationOut, 200)
@validate_response(Problem, 422)
@inject
async def list_user_messages(
    user_id: str, query_args: ConversationArgs, listing: ListUserMessages = Provide[Container.list_user_messages]
) -> ConversationOut:
    """The user's messages across conversations, oldest first, a page at a time (archived ones with
    include_archived); cursors as for a conversation."""
    await limit_tenant(query_args.tenant_id)
    page = await listing(
        current_principal(),
        query_args.tenant_id,
        user_id,
        after=None if query_args.cursor is None else decode_cursor(query_args.cursor),
        limit=query_args.limit,
        include_archived=query_args.include_archived,
    )
    return page_out(page)


@blueprint.delete("/<user_id>")
@tag(["users"])
@validate_querystring(TenantArgs)
@validate_response(UserErasureOut, 200)
@validate_response(Problem, 422)
@inject
async def erase_user(
    user_id: str, query_args: TenantArgs, erase: EraseUser = Provide[Container.erase_user]
) -> UserErasureOut:
    """Erase every message of the user in the tenant, vectors included. A write for the user that
    commits while the erasure runs is erased whole or survives whole; a second call deletes nothing."""
    await limit_tenant(query_args.tenant_id)
    receipt = await erase(current_principal(), query_args.tenant_id, user_id)
    deleted = {"messages": receipt.messages, "vectors": receipt.vectors, "conversations": receipt.conversations}
    return UserErasureOut(tenant_id=receipt.tenant_id, user_id=receipt.user_id, deleted=deleted)


async def ndjson(messages: AsyncIterator[Message]) -> AsyncIterator[bytes]:
    async for message in messages:
        yield MessageOut.of(message).model_dump_json().encode() + b"\n"


@blueprint.get("/<user_id>/export")
@tag(["users"])
@validate_querystring(TenantArgs)
@validate_response(Problem, 422)
@inject
async def export_user(
    user_id: str, query_args: TenantArgs, export: ExportUser = Provide[Container.export_user]
) -> Response:
    """Every stored message of the user (archived ones included, every field), oldest first, as
    NDJSON: one message per line, each shaped as in GET /v1/messages/{id}, streamed."""
    await limit_tenant(query_args.tenant_id)
    messages = await export(current_principal(), query_args.tenant_id, user_id)
    return Response(ndjson(messages), status=200, content_type=NDJSON)
