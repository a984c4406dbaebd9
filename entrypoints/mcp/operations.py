"""What each MCP tool does, once the caller's Principal and tenant are known: count the request
against the same rate limits as the REST route of the same use case, run the use case, and
answer with plain JSON. Wired by the container like the HTTP routes."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from dependency_injector.wiring import Provide, inject

from application.build_context import BuildContext, ContextRequest
from application.delete_messages import DeleteMessage, EraseMessages
from application.fair_share import TenantShares
from application.list_conversation import ListConversation
from application.ports.keys import ApiKeys
from application.ports.observability import HttpMetrics
from application.search_memory import SearchMemory, SearchQuery
from application.store_messages import StoreMessageCommand, StoreMessages
from application.throttle import Throttle
from application.wait_for_embedding import WaitForEmbedding
from config.container import Container
from config.settings import Settings
from domain.access import Principal
from domain.context import Entry
from domain.message import EmbeddingStatus, Message
from domain.ranking import RankedMessage
from entrypoints.http.conversations import decode_cursor, encode_cursor
from entrypoints.http.schemas.messages import MessageOut

MAX_KEY_LENGTH = 256
ROUTE = "/mcp"
logger = logging.getLogger("memorymesh.requests")


@inject
async def resolve_key(presented: str, api_keys: ApiKeys = Provide[Container.api_keys]) -> Principal | None:
    """The Principal of an API key, or None for a key that is not one."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return None
    return await api_keys.resolve(presented)


@inject
def observe(
    method: str,
    status: int,
    seconds: float,
    principal: Principal | None,
    metrics: HttpMetrics = Provide[Container.metrics],
) -> None:
    """A /mcp request in the HTTP metrics and the request log, as a REST request is (never the
    key, the arguments or any content)."""
    metrics.http_request(ROUTE, method, status, seconds)
    key_id = principal.key_id if principal is not None else None
    logger.info(
        "request",
        extra={
            "method": method,
            "route": ROUTE,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "key_id": key_id,
        },
    )


@inject
async def limit_key(principal: Principal, throttle: Throttle = Provide[Container.throttle]) -> None:
    """Count a /mcp request against its key's rate limit (endpoint.py, before the MCP app reads it)."""
    await throttle.key(principal)


@inject
async def admit(
    principal: Principal, tenant_id: str, messages: int = 0, throttle: Throttle = Provide[Container.throttle]
) -> None:
    """The REST routes' limits on what a tool acts on: the tenant's, and (for writes) the tenant's
    messages. The key's was counted at the door (limit_key)."""
    await throttle.tenant(principal, tenant_id)
    if messages:
        await throttle.messages(principal, tenant_id, messages)


def message_json(message: Message) -> dict[str, Any]:
    """A message as the REST routes answer it: one shape, whichever door an agent came in by."""
    return MessageOut.of(message).model_dump(mode="json")


def ranked_json(ranked: RankedMessage) -> dict[str, Any]:
    s = ranked.scores
    return {
        "message": message_json(ranked.message),
        "scores": {"similarity": s.similarity, "importance": s.importance, "recency": s.recency, "final": s.final},
    }


@inject
async def remember(
    principal: Principal,
    command: StoreMessageCommand,
    store: StoreMessages = Provide[Container.store_messages],
    waiter: WaitForEmbedding = Provide[Container.wait_for_embedding],
    settings: Settings = Provide[Container.settings],
) -> dict[str, Any]:
    """Store one message and wait (bounded, as POST /v1/messages?wait=true) until it is searchable."""
    await admit(principal, command.tenant_id, messages=1)
    stored = await store.one(principal, command)
    message = stored.message
    if settings.embedding_mode == "async":
        (message,) = await waiter([message])
    return {
        "message": message_json(message),
        "searchable": message.embedding_status == EmbeddingStatus.EMBEDDED,
        "replayed": stored.replayed,
    }


@inject
async def recall(
    principal: Principal,
    query: SearchQuery,
    search_memory: SearchMemory = Provide[Container.search_memory],
    shares: TenantShares = Provide[Container.tenant_shares],
) -> dict[str, Any]:
    await admit(principal, query.tenant_id)
    async with shares.hold(query.tenant_id):
        ranked = await search_memory(principal, query)
    return {"results": [ranked_json(r) for r in ranked]}


def entry_json(entry: Entry) -> dict[str, Any]:
    found: dict[str, Any] = {"message": message_json(entry.message), "content": entry.content, "cut": entry.cut}
    if entry.ranked is not None:
        found["reason"] = entry.reason
        found["score"] = entry.ranked.scores.final
    return found


@inject
async def get_context(
    principal: Principal,
    request: ContextRequest,
    build_context: BuildContext = Provide[Container.build_context],
    shares: TenantShares = Provide[Container.tenant_shares],
) -> dict[str, Any]:
    await admit(principal, request.tenant_id)
    async with shares.hold(request.tenant_id):
        built = await build_context(principal, request)
    return {
        "prompt": built.prompt,
        "tokens": {
            "recent": built.recent_tokens,
            "memories": built.memory_tokens,
            "total": built.total_tokens,
            "budget": built.budget,
        },
        "recent": [entry_json(e) for e in built.recent],
        "memories": [entry_json(e) for e in built.memories],
    }


@inject
async def list_conversation(
    principal: Principal,
    tenant_id: str,
    conversation_id: str,
    limit: int,
    cursor: str | None,
    listing: ListConversation = Provide[Container.list_conversation],
) -> dict[str, Any]:
    await admit(principal, tenant_id)
    page = await listing(
        principal,
        tenant_id,
        conversation_id,
        after=None if cursor is None else decode_cursor(cursor),
        limit=limit,
    )
    return {
        "messages": [message_json(m) for m in page.messages],
        "next_cursor": None if page.next is None else encode_cursor(page.next),
    }


@inject
async def forget_message(
    principal: Principal,
    tenant_id: str,
    message_id: uuid.UUID,
    delete: DeleteMessage = Provide[Container.delete_message],
) -> dict[str, Any]:
    await admit(principal, tenant_id)
    await delete(principal, tenant_id, message_id)
    return {"deleted": str(message_id), "tenant_id": tenant_id}


@inject
async def forget_conversation(
    principal: Principal,
    tenant_id: str,
    conversation_id: str,
    erase: EraseMessages = Provide[Container.erase_messages],
) -> dict[str, Any]:
    await admit(principal, tenant_id)
    receipt = await erase.conversation(principal, tenant_id, conversation_id)
    return {
        "tenant_id": receipt.tenant_id,
        "conversation_id": receipt.conversation_id,
        "deleted": {"messages": receipt.messages, "vectors": receipt.vectors},
    }
