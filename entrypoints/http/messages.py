from __future__ import annotations

import uuid

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_request, validate_response

from application.get_message import GetMessage
from application.store_message import StoreMessage, StoreMessageCommand
from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas import MessageIn, MessageOut, Problem, TenantArgs

blueprint = Blueprint("messages", __name__, url_prefix="/v1/messages")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


@blueprint.post("")
@tag(["messages"])
@validate_request(MessageIn)
@validate_response(MessageOut, 201)
@validate_response(Problem, 422)
@inject
async def store_message(data: MessageIn, store: StoreMessage = Provide["store_message"]) -> tuple[MessageOut, int]:
    """Store a message; it is embedded and searchable when this answers."""
    message = await store(
        current_principal(),
        StoreMessageCommand(
            tenant_id=data.tenant_id,
            conversation_id=data.conversation_id,
            role=data.role,
            content=data.content,
            metadata=data.metadata,
            importance=data.importance,
            created_at=data.created_at,
        ),
    )
    return MessageOut.of(message), 201


@blueprint.get("/<uuid:message_id>")
@tag(["messages"])
@validate_querystring(TenantArgs)
@validate_response(MessageOut, 200)
@validate_response(Problem, 404)
@inject
async def get_message(
    message_id: uuid.UUID, query_args: TenantArgs, get: GetMessage = Provide["get_message"]
) -> MessageOut:
    """One message by id, inside the tenant named by tenant_id."""
    return MessageOut.of(await get(current_principal(), query_args.tenant_id, message_id))
