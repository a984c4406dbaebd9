from __future__ import annotations

import uuid
from collections.abc import Sequence

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, request
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_request, validate_response
from werkzeug.datastructures import Headers

from application.delete_messages import DeleteMessage
from application.fair_share import TenantShares
from application.get_message import GetMessage
from application.restore_message import ArchiveMessage, RestoreMessage
from application.store_messages import StoredMessage, StoreMessageCommand, StoreMessages
from application.update_message import MessagePatch, UpdateMessage
from application.wait_for_embedding import WaitForEmbedding
from config.container import Container
from config.settings import Settings
from domain.errors import FieldProblem, ValidationFailed
from domain.message import EmbeddingStatus
from entrypoints.http.auth import authenticate, current_principal, limit_messages, limit_tenant
from entrypoints.http.schemas.common import Problem, TenantArgs
from entrypoints.http.schemas.messages import BatchIn, BatchOut, MessageIn, MessageOut, MessagePatchIn, StoreArgs

blueprint = Blueprint("messages", __name__, url_prefix="/v1/messages")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def command(data: MessageIn, client_message_id: str | None = None) -> StoreMessageCommand:
    return StoreMessageCommand(
        tenant_id=data.tenant_id,
        conversation_id=data.conversation_id,
        role=data.role,
        content=data.content,
        metadata=data.metadata,
        importance=data.importance,
        created_at=data.created_at,
        client_message_id=client_message_id or data.client_message_id,
        pinned=data.pinned,
        user_id=data.user_id,
    )


async def answered(
    stored: Sequence[StoredMessage], wait: bool, settings: Settings, waiter: WaitForEmbedding
) -> tuple[list[MessageOut], int, Headers]:
    """201 once searchable (inline, or async after ?wait=true); 202 while embedding is pending.

    A retry (same client_message_id) gets the same status the first request got, and the
    message as it is now.
    """
    messages = [s.message for s in stored]
    if settings.embedding_mode == "async" and wait:
        messages = await waiter(messages)
    searchable = settings.embedding_mode == "inline" or (
        wait and all(m.embedding_status == EmbeddingStatus.EMBEDDED for m in messages)
    )
    # A Headers object, not a dict: quart-schema would build a pydantic TypeAdapter to dump
    # a dict on every response (about 9% of a write's CPU, measured with py-spy).
    headers = Headers({REPLAYED_HEADER: "true"} if all(s.replayed for s in stored) else {})
    return [MessageOut.of(m) for m in messages], 201 if searchable else 202, headers


@blueprint.post("")
@tag(["messages"])
@validate_request(MessageIn)
@validate_querystring(StoreArgs)
@validate_response(MessageOut, 201)
@validate_response(MessageOut, 202)
@validate_response(Problem, 409)
@validate_response(Problem, 422)
@inject
async def store_message(
    data: MessageIn,
    query_args: StoreArgs,
    store: StoreMessages = Provide[Container.store_messages],
    waiter: WaitForEmbedding = Provide[Container.wait_for_embedding],
    settings: Settings = Provide[Container.settings],
) -> tuple[MessageOut, int, Headers]:
    """Store a message. Async mode answers 202 with embedding_status "pending" (searchable within
    moments; `?wait=true` answers once it is); inline mode answers 201 once it is searchable.
    An Idempotency-Key header (or client_message_id) stores it once however often it is sent."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and data.client_message_id is not None and key != data.client_message_id:
        raise ValidationFailed(
            [FieldProblem("client_message_id", f"differs from the {IDEMPOTENCY_HEADER} header; send one or the same")]
        )
    await limit_tenant(data.tenant_id)
    await limit_messages(data.tenant_id, 1)
    stored = await store.one(current_principal(), command(data, client_message_id=key))
    (message,), status, headers = await answered([stored], query_args.wait, settings, waiter)
    return message, status, headers


@blueprint.post("/batch")
@tag(["messages"])
@validate_request(BatchIn)
@validate_querystring(StoreArgs)
@validate_response(BatchOut, 201)
@validate_response(BatchOut, 202)
@validate_response(Problem, 409)
@validate_response(Problem, 422)
@inject
async def store_batch(
    data: BatchIn,
    query_args: StoreArgs,
    store: StoreMessages = Provide[Container.store_messages],
    waiter: WaitForEmbedding = Provide[Container.wait_for_embedding],
    settings: Settings = Provide[Container.settings],
    shares: TenantShares = Provide[Container.tenant_shares],
) -> tuple[BatchOut, int, Headers]:
    """Store up to 500 messages of one tenant in one transaction; the answer keeps their order.
    Each may carry a client_message_id; the batch is stored whole or not at all."""
    if request.headers.get(IDEMPOTENCY_HEADER) is not None:
        raise ValidationFailed(
            [
                FieldProblem(
                    IDEMPOTENCY_HEADER, "is for single messages: give each message of a batch a client_message_id"
                )
            ]
        )
    tenant_id = data.messages[0].tenant_id if data.messages else ""
    if data.messages:  # a batch holds one tenant (the use case refuses any other) and counts as one request
        await limit_tenant(tenant_id)
        await limit_messages(tenant_id, len(data.messages))  # and as each of its messages
    async with shares.hold(tenant_id):
        stored = await store.batch(current_principal(), [command(m) for m in data.messages])
    messages, status, headers = await answered(stored, query_args.wait, settings, waiter)
    return BatchOut(messages=messages), status, headers


@blueprint.get("/<uuid:message_id>")
@tag(["messages"])
@validate_querystring(TenantArgs)
@validate_response(MessageOut, 200)
@validate_response(Problem, 404)
@inject
async def get_message(
    message_id: uuid.UUID, query_args: TenantArgs, get: GetMessage = Provide[Container.get_message]
) -> MessageOut:
    """One message by id, inside the tenant named by tenant_id."""
    await limit_tenant(query_args.tenant_id)
    return MessageOut.of(await get(current_principal(), query_args.tenant_id, message_id))


@blueprint.patch("/<uuid:message_id>")
@tag(["messages"])
@validate_request(MessagePatchIn)
@validate_querystring(TenantArgs)
@validate_response(MessageOut, 200)
@validate_response(Problem, 404)
@validate_response(Problem, 422)
@inject
async def update_message(
    message_id: uuid.UUID,
    data: MessagePatchIn,
    query_args: TenantArgs,
    update: UpdateMessage = Provide[Container.update_message],
) -> MessageOut:
    """Change metadata (replaced whole), importance, pinned, user_id (null clears it), or content.
    New content is embedded again: the message answers searches once that is done (embedding_status says when)."""
    await limit_tenant(query_args.tenant_id)
    sent = data.model_fields_set
    patch = MessagePatch(
        content=data.content,
        metadata={} if "metadata" in sent and data.metadata is None else data.metadata,
        importance=data.importance,
        clear_importance="importance" in sent and data.importance is None,
        pinned=data.pinned,
        user_id=data.user_id,
        clear_user_id="user_id" in sent and data.user_id is None,
    )
    if "content" in sent and data.content is None:
        raise ValidationFailed([FieldProblem("content", "must not be null")])
    if "pinned" in sent and data.pinned is None:
        raise ValidationFailed([FieldProblem("pinned", "must be true or false")])
    return MessageOut.of(await update(current_principal(), query_args.tenant_id, message_id, patch))


@blueprint.delete("/<uuid:message_id>")
@tag(["messages"])
@validate_querystring(TenantArgs)
@validate_response(Problem, 404)
@inject
async def delete_message(
    message_id: uuid.UUID, query_args: TenantArgs, delete: DeleteMessage = Provide[Container.delete_message]
) -> tuple[str, int]:
    """Delete a message: its row and its vector are gone."""
    await limit_tenant(query_args.tenant_id)
    await delete(current_principal(), query_args.tenant_id, message_id)
    return "", 204


@blueprint.post("/<uuid:message_id>/restore")
@tag(["messages"])
@validate_querystring(TenantArgs)
@validate_response(MessageOut, 200)
@validate_response(Problem, 404)
@inject
async def restore_message(
    message_id: uuid.UUID, query_args: TenantArgs, restore: RestoreMessage = Provide[Container.restore_message]
) -> MessageOut:
    """Bring an archived message back into search; retention counts its age from now."""
    await limit_tenant(query_args.tenant_id)
    return MessageOut.of(await restore(current_principal(), query_args.tenant_id, message_id))


@blueprint.post("/<uuid:message_id>/archive")
@tag(["messages"])
@validate_querystring(TenantArgs)
@validate_response(MessageOut, 200)
@validate_response(Problem, 404)
@inject
async def archive_message(
    message_id: uuid.UUID, query_args: TenantArgs, archive: ArchiveMessage = Provide[Container.archive_message]
) -> MessageOut:
    """Take a message out of search, kept and readable (as retention archives), until restored."""
    await limit_tenant(query_args.tenant_id)
    return MessageOut.of(await archive(current_principal(), query_args.tenant_id, message_id))
