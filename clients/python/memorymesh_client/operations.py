"""The data operations of the service's API (messages, conversations, users, search, context)
as pure functions: arguments in, the call out (`admin.py` holds the operators' ones).

The clients turn each into a method of the same name and arguments (`MemoryMesh.store_message`,
`await AsyncMemoryMesh.store_message`); the README's API table says what each route does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from memorymesh_client import types as t
from memorymesh_client.calls import (
    IDEMPOTENCY_HEADER,
    UNSET,
    Call,
    Unset,
    fields,
    given,
    json_body,
    nothing,
    operation,
    path,
    querystring,
)
from memorymesh_client.errors import MemoryMeshError, Unreachable

# Messages


def message_fields(
    tenant_id: str,
    conversation_id: str,
    role: t.Role,
    content: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    importance: float | None = None,
    created_at: datetime | str | None = None,
    client_message_id: str | None = None,
    pinned: bool | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    """One message to store, as `store_messages` takes it."""
    return fields(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        role=role,
        content=content,
        metadata=metadata,
        importance=importance,
        created_at=created_at,
        client_message_id=client_message_id,
        pinned=pinned,
        user_id=user_id,
    )


@operation("POST", "/v1/messages")
def store_message(
    tenant_id: str,
    conversation_id: str,
    role: t.Role,
    content: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    importance: float | None = None,
    created_at: datetime | str | None = None,
    client_message_id: str | None = None,
    pinned: bool | None = None,
    user_id: str | None = None,
    wait: bool = False,
) -> Call[t.Message]:
    """Store a message (`wait=True`: answer once it is searchable). Stored once however often it
    is retried: it carries an Idempotency-Key (its `client_message_id` when given)."""
    body = message_fields(
        tenant_id,
        conversation_id,
        role,
        content,
        metadata=metadata,
        importance=importance,
        created_at=created_at,
        client_message_id=client_message_id,
        pinned=pinned,
        user_id=user_id,
    )
    key = client_message_id or str(uuid.uuid4())
    return Call("POST", "/v1/messages", json_body, querystring(wait=wait or None), body, {IDEMPOTENCY_HEADER: key})


@operation("POST", "/v1/messages/batch")
def store_messages(messages: Sequence[Mapping[str, Any]], *, wait: bool = False) -> Call[t.Batch]:
    """Store up to 500 messages of one tenant at once, all or none (each as `message_fields` makes
    it). Each without a `client_message_id` is given one, so a retry never stores it twice."""
    sent = [{**m, "client_message_id": m.get("client_message_id") or str(uuid.uuid4())} for m in messages]
    return Call("POST", "/v1/messages/batch", json_body, querystring(wait=wait or None), {"messages": sent})


@operation("GET", "/v1/messages/{message_id}")
def get_message(tenant_id: str, message_id: str) -> Call[t.Message]:
    """One message, archived ones too."""
    return Call("GET", path("/v1/messages/{id}", id=message_id), json_body, querystring(tenant_id=tenant_id))


@operation("PATCH", "/v1/messages/{message_id}")
def update_message(
    tenant_id: str,
    message_id: str,
    *,
    content: str | Unset = UNSET,
    metadata: Mapping[str, Any] | Unset | None = UNSET,
    importance: float | Unset | None = UNSET,
    pinned: bool | Unset = UNSET,
    user_id: str | Unset | None = UNSET,
) -> Call[t.Message]:
    """Change a message: only the fields given; None clears metadata, user_id and an explicit importance."""
    body = given(content=content, metadata=metadata, importance=importance, pinned=pinned, user_id=user_id)
    return Call("PATCH", path("/v1/messages/{id}", id=message_id), json_body, querystring(tenant_id=tenant_id), body)


@operation("DELETE", "/v1/messages/{message_id}")
def delete_message(tenant_id: str, message_id: str) -> Call[None]:
    """Delete a message and its vector. (A retry after a lost answer may find it gone: NotFound.)"""
    return Call("DELETE", path("/v1/messages/{id}", id=message_id), nothing, querystring(tenant_id=tenant_id))


@operation("POST", "/v1/messages/{message_id}/archive")
def archive_message(tenant_id: str, message_id: str) -> Call[t.Message]:
    """Take a message out of search, kept and readable, until restored."""
    return Call("POST", path("/v1/messages/{id}/archive", id=message_id), json_body, querystring(tenant_id=tenant_id))


@operation("POST", "/v1/messages/{message_id}/restore")
def restore_message(tenant_id: str, message_id: str) -> Call[t.Message]:
    """Bring an archived message back into search."""
    return Call("POST", path("/v1/messages/{id}/restore", id=message_id), json_body, querystring(tenant_id=tenant_id))


# Tenants, as a console lists them


@operation("GET", "/v1/me")
def me() -> Call[t.Me]:
    """What this key is: its id, admin or not, and how many tenants it names."""
    return Call("GET", "/v1/me", json_body, querystring())


@operation("GET", "/v1/tenants")
def tenants(*, after: str | None = None, limit: int | None = None) -> Call[t.Tenants]:
    """One page of the tenants the key may see, in id order (an admin key: every tenant that holds
    a message); pass next_after as `after` for the next."""
    return Call("GET", "/v1/tenants", json_body, querystring(after=after, limit=limit))


@operation("GET", "/v1/tenants/{tenant_id}/conversations")
def tenant_conversations(
    tenant_id: str, *, after: str | None = None, limit: int | None = None
) -> Call[t.Conversations]:
    """One page of the tenant's conversations in id order, each with its counts and span."""
    return Call(
        "GET", path("/v1/tenants/{id}/conversations", id=tenant_id), json_body, querystring(after=after, limit=limit)
    )


# Conversations and users


@operation("GET", "/v1/conversations/{conversation_id}/messages", "conversation_messages")
def conversation_page(
    tenant_id: str,
    conversation_id: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    include_archived: bool | None = None,
    order: t.Order | None = None,
) -> Call[t.Page]:
    """One page of the conversation, oldest first (or newest first with order="newest");
    `conversation_messages` follows every page."""
    params = querystring(
        tenant_id=tenant_id, limit=limit, cursor=cursor, include_archived=include_archived, order=order
    )
    return Call("GET", path("/v1/conversations/{id}/messages", id=conversation_id), json_body, params)


@operation("DELETE", "/v1/conversations/{conversation_id}")
def erase_conversation(tenant_id: str, conversation_id: str) -> Call[t.Erasure]:
    """Erase every message of the conversation, vectors included."""
    return Call(
        "DELETE", path("/v1/conversations/{id}", id=conversation_id), json_body, querystring(tenant_id=tenant_id)
    )


@operation("GET", "/v1/users/{user_id}/messages", "user_messages")
def user_page(
    tenant_id: str,
    user_id: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    include_archived: bool | None = None,
) -> Call[t.Page]:
    """One page of the user's messages across conversations; `user_messages` follows every page."""
    params = querystring(tenant_id=tenant_id, limit=limit, cursor=cursor, include_archived=include_archived)
    return Call("GET", path("/v1/users/{id}/messages", id=user_id), json_body, params)


@operation("DELETE", "/v1/users/{user_id}")
def erase_user(tenant_id: str, user_id: str) -> Call[t.UserErasure]:
    """Erase every message of the user in the tenant, vectors included."""
    return Call("DELETE", path("/v1/users/{id}", id=user_id), json_body, querystring(tenant_id=tenant_id))


@operation("GET", "/v1/users/{user_id}/export")
def export_user(tenant_id: str, user_id: str) -> Call[None]:
    """Everything stored about the user, one message at a time, streamed (NDJSON)."""
    return Call(
        "GET", path("/v1/users/{id}/export", id=user_id), nothing, querystring(tenant_id=tenant_id), stream=True
    )


# Search and context


@operation("GET", "/v1/memory/search")
def search(
    tenant_id: str,
    query: str,
    *,
    top_k: int | None = None,
    mode: t.SearchMode | None = None,
    conversation_id: str | None = None,
    user_id: str | None = None,
    role: t.Role | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    min_importance: float | None = None,
) -> Call[t.SearchResults]:
    """The most relevant messages, best first, each with its scores (GET, a query string)."""
    params = querystring(
        tenant_id=tenant_id,
        query=query,
        top_k=top_k,
        mode=mode,
        conversation_id=conversation_id,
        user_id=user_id,
        role=role,
        since=since,
        until=until,
        min_importance=min_importance,
    )
    return Call("GET", "/v1/memory/search", json_body, params)


@operation("POST", "/v1/memory/search")
def search_post(
    tenant_id: str,
    query: str,
    *,
    top_k: int | None = None,
    mode: t.SearchMode | None = None,
    conversation_id: str | None = None,
    user_id: str | None = None,
    role: t.Role | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    min_importance: float | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Call[t.SearchResults]:
    """The same as `search`, sent as a JSON body, plus `metadata` (messages whose metadata contains it)."""
    body = fields(
        tenant_id=tenant_id,
        query=query,
        top_k=top_k,
        mode=mode,
        conversation_id=conversation_id,
        user_id=user_id,
        role=role,
        since=since,
        until=until,
        min_importance=min_importance,
        metadata=metadata,
    )
    return Call("POST", "/v1/memory/search", json_body, body=body)


@operation("POST", "/v1/context")
def context(
    tenant_id: str,
    conversation_id: str,
    max_tokens: int,
    *,
    query: str | None = None,
    recent: int | None = None,
    user_id: str | None = None,
    scope: t.Scope | None = None,
    mode: t.SearchMode | None = None,
    role: t.Role | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    min_importance: float | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Call[t.Context]:
    """The conversation's latest turns and the memories that matter, as a prompt within `max_tokens`."""
    body = fields(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        max_tokens=max_tokens,
        query=query,
        recent=recent,
        user_id=user_id,
        scope=scope,
        mode=mode,
        role=role,
        since=since,
        until=until,
        min_importance=min_importance,
        metadata=metadata,
    )
    return Call("POST", "/v1/context", json_body, body=body)


def page_of(call: Call[t.Page], cursor: str) -> Call[t.Page]:
    """The same listing from `cursor` on; a cursor that does not move on is an error, not a loop."""
    if call.params.get("cursor") == cursor:
        raise MemoryMeshError(None, "cursor_repeated", "the service gave the same next_cursor twice")
    return Call(call.method, call.path, call.read, {**call.params, "cursor": cursor}, call.body, call.headers)


def message_line(line: str) -> t.Message | None:
    """One NDJSON line of an export, or None for a blank one; a line that is not whole JSON means
    the answer was cut short (Unreachable)."""
    if not line.strip():
        return None
    try:
        return cast(t.Message, json.loads(line))
    except ValueError as error:
        raise cut_short(error) from error


def cut_short(error: Exception) -> Unreachable:
    """A streamed answer that broke off: the messages yielded so far are not all there is."""
    return Unreachable(None, "unreachable", f"the answer was cut short ({type(error).__name__}: {error})")
