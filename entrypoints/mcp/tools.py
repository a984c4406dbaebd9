"""The six MCP tools: their names, descriptions and argument schemas, which an LLM reads.

Each tool finds the caller's Principal (resolved from the API key by endpoint.py), settles the
tenant (a key of one tenant may leave it out; an admin key must name it), and hands over to
operations.py. A refusal of any kind comes back as a tool error naming the problem (and the
field), never as a crash of the session: domain errors carry their code and detail.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from application.build_context import ContextRequest
from application.search_memory import SearchQuery
from application.store_messages import StoreMessageCommand
from domain.access import Principal
from domain.errors import DomainError
from entrypoints.mcp import USER_HEADER, operations

PRINCIPAL = "memorymesh.principal"  # the scope key endpoint.py leaves the caller's Principal under

INSTRUCTIONS = (
    "memorymesh keeps the messages of conversations and gives back the ones that matter. Call remember "
    "for each message worth keeping, get_context before answering in a conversation, recall to search by "
    "meaning. tenant_id may be left out when the API key belongs to one tenant."
)

TenantId = Annotated[
    str | None,
    Field(
        description="The tenant to act in. Leave it out when the API key belongs to one tenant (the usual case); "
        "an admin key must name it. Naming a tenant the key does not hold is refused."
    ),
]
ConversationId = Annotated[
    str, Field(description="The conversation's id, chosen by you: 1-128 characters of A-Z a-z 0-9 . _ : @ -")
]
BOUND_USER = f"; default: the user this connection is bound to (the {USER_HEADER} header), if any"
UserId = Annotated[
    str | None, Field(description="The person the message is about (same characters as ids)" + BOUND_USER)
]


def principal_of(ctx: Context) -> Principal:
    request = ctx.request_context.request
    principal = None if request is None else getattr(request, "scope", {}).get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise ToolError("unauthorized: no API key came with this call")
    return principal


def user_of(ctx: Context, user_id: str | None) -> str | None:
    """The user a call names, else the one its connection is bound to, else none."""
    if user_id is not None:
        return user_id
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    bound = None if headers is None else headers.get(USER_HEADER)
    return bound or None


def tenant_of(principal: Principal, tenant_id: str | None) -> str:
    if tenant_id is not None:
        principal.require_tenant(tenant_id)  # the use cases check it again
        return tenant_id
    if principal.admin:
        raise ToolError("validation_failed: tenant_id: an admin API key must name the tenant")
    if len(principal.tenants) != 1:
        held = ", ".join(sorted(principal.tenants))
        raise ToolError(f"validation_failed: tenant_id: this API key holds several tenants ({held}); name one")
    (only,) = principal.tenants
    return only


Work = Callable[[Principal, str], Awaitable[dict[str, Any]]]


async def acting(ctx: Context, tenant_id: str | None, work: Work) -> dict[str, Any]:
    """The work's answer for the caller in its tenant, or a tool error with the problem's code and
    detail (a validation error names its fields)."""
    principal = principal_of(ctx)
    try:
        return await work(principal, tenant_of(principal, tenant_id))
    except DomainError as error:
        raise ToolError(f"{error.code}: {error.detail}") from error


async def remember(
    ctx: Context,
    conversation_id: ConversationId,
    role: Annotated[
        Literal["user", "assistant", "system", "tool"], Field(description="Who said it: user, assistant, system, tool")
    ],
    content: Annotated[str, Field(description="The message text, as said. Not empty.")],
    user_id: UserId = None,
    metadata: Annotated[
        dict[str, Any] | None, Field(description="Any JSON object stored with the message (tags, source, ...)")
    ] = None,
    client_message_id: Annotated[
        str | None,
        Field(
            description="Your own id for this message (same characters as ids): the same id again stores it once, "
            "so a call retried after a lost answer never stores it twice"
        ),
    ] = None,
    tenant_id: TenantId = None,
) -> dict[str, Any]:
    """Store one message of a conversation in long-term memory. It is searchable by meaning (recall,
    get_context) once stored; the answer carries its id (for forget_message) and whether it is searchable yet."""
    return await acting(
        ctx,
        tenant_id,
        lambda principal, tenant: operations.remember(
            principal,
            StoreMessageCommand(
                tenant_id=tenant,
                conversation_id=conversation_id,
                role=role,
                content=content,
                metadata=metadata,
                user_id=user_of(ctx, user_id),
                client_message_id=client_message_id,
            ),
        ),
    )


async def recall(
    ctx: Context,
    query: Annotated[str, Field(description="What to look for, in words: a question or a topic. Not empty.")],
    top_k: Annotated[int, Field(description="How many messages to return, best first", ge=1)] = 5,
    conversation_id: Annotated[str | None, Field(description="Only messages of this conversation")] = None,
    user_id: Annotated[str | None, Field(description="Only messages about this person" + BOUND_USER)] = None,
    tenant_id: TenantId = None,
) -> dict[str, Any]:
    """Search the stored messages by meaning and words. Returns the most relevant messages, best first,
    each with its scores (similarity, importance, recency, final)."""
    return await acting(
        ctx,
        tenant_id,
        lambda principal, tenant: operations.recall(
            principal,
            SearchQuery(
                tenant_id=tenant,
                query=query,
                top_k=top_k,
                conversation_id=conversation_id,
                user_id=user_of(ctx, user_id),
            ),
        ),
    )


async def get_context(
    ctx: Context,
    conversation_id: ConversationId,
    max_tokens: Annotated[
        int, Field(description="The token budget: the prompt returned never counts more tokens", ge=1)
    ] = 1000,
    query: Annotated[
        str | None, Field(description="What to find memories for; default: the conversation's latest user message")
    ] = None,
    user_id: Annotated[
        str | None,
        Field(description="The person the next turn is for: the user scope draws on their messages" + BOUND_USER),
    ] = None,
    scope: Annotated[
        Literal["conversation", "user", "tenant"] | None,
        Field(
            description="Where memories come from: earlier in this conversation, any conversation of this user, "
            "or the whole tenant; default: user when user_id is given, else conversation"
        ),
    ] = None,
    tenant_id: TenantId = None,
) -> dict[str, Any]:
    """What to know before the next turn of a conversation: its latest turns and the relevant older
    memories, each once, within max_tokens. `prompt` is all of it as dated plain text, ready for a
    system message; `recent` and `memories` list the messages it holds."""
    return await acting(
        ctx,
        tenant_id,
        lambda principal, tenant: operations.get_context(
            principal,
            ContextRequest(
                tenant_id=tenant,
                conversation_id=conversation_id,
                max_tokens=max_tokens,
                query=query,
                scope=scope,
                user_id=user_of(ctx, user_id),
            ),
        ),
    )


async def list_conversation(
    ctx: Context,
    conversation_id: ConversationId,
    limit: Annotated[int, Field(description="Messages per page, 1-200", ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Field(description="next_cursor of the previous page, as it came; leave out for the first page")
    ] = None,
    tenant_id: TenantId = None,
) -> dict[str, Any]:
    """The messages of one conversation, oldest first, a page at a time. `next_cursor` is null on the
    last page; otherwise pass it as cursor to get the next one."""
    return await acting(
        ctx,
        tenant_id,
        lambda principal, tenant: operations.list_conversation(principal, tenant, conversation_id, limit, cursor),
    )


async def forget_message(
    ctx: Context,
    message_id: Annotated[uuid.UUID, Field(description="The message's id (a UUID), as remember or recall gave it")],
    tenant_id: TenantId = None,
) -> dict[str, Any]:
    """Delete one message for good: its text and its vector are gone. A message that does not exist
    (or is not in the tenant) is a not_found error."""
    return await acting(
        ctx, tenant_id, lambda principal, tenant: operations.forget_message(principal, tenant, message_id)
    )


async def forget_conversation(
    ctx: Context, conversation_id: ConversationId, tenant_id: TenantId = None
) -> dict[str, Any]:
    """Erase every message of a conversation for good, vectors included. Answers how many went."""
    return await acting(
        ctx, tenant_id, lambda principal, tenant: operations.forget_conversation(principal, tenant, conversation_id)
    )


def build_server(version: str) -> MCPServer:
    server: MCPServer = MCPServer("memorymesh", version=version, instructions=INSTRUCTIONS)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    erases = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
    server.add_tool(remember, annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    server.add_tool(recall, annotations=reads)
    server.add_tool(get_context, annotations=reads)
    server.add_tool(list_conversation, annotations=reads)
    server.add_tool(forget_message, annotations=erases)
    server.add_tool(forget_conversation, annotations=erases)
    return server
