"""The JSON shapes of messages and conversations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from application.ports.messages import Order
from domain.instant import RANGE
from domain.message import Message
from entrypoints.http.schemas.common import (
    AN_ID,
    JSON_BODY,
    JsonInstant,
    RoleName,
)


class MessageIn(BaseModel):
    model_config = JSON_BODY

    tenant_id: str = Field(
        description="Tenant the message belongs to: 1-128 of A-Z a-z 0-9 . _ : @ -", json_schema_extra=AN_ID
    )
    conversation_id: str = Field(description="Conversation inside the tenant, same charset", json_schema_extra=AN_ID)
    role: RoleName = Field(description="Who said it", examples=["user"])
    content: str = Field(description="The message text")
    metadata: dict[str, Any] | None = Field(None, description="Any JSON object, stored as is")
    importance: float | None = Field(None, ge=0, le=1, description="Explicit importance; wins over the computed score")
    created_at: JsonInstant | None = Field(
        None, description=f"When it was said (for imports), {RANGE}, kept in UTC; default now"
    )
    client_message_id: str | None = Field(
        None,
        description="Your id for this message: sent again, the message is stored once (same as Idempotency-Key)",
    )
    pinned: bool = Field(False, description="Retention always keeps a pinned message")
    user_id: str | None = Field(
        None,
        description="The person the message is about, inside the tenant: same charset as ids",
        json_schema_extra=AN_ID,
    )


class BatchIn(BaseModel):
    model_config = JSON_BODY

    messages: list[MessageIn] = Field(description="Up to 500 messages, all of one tenant")


class StoreArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: bool = Field(False, description="Answer once the messages are searchable (bounded wait)")


class MessageOut(BaseModel):
    id: uuid.UUID
    tenant_id: str
    conversation_id: str
    role: RoleName
    content: str
    metadata: dict[str, Any]
    importance: float = Field(description="The importance used in ranking, in [0, 1]")
    explicit_importance: float | None
    embedding_status: Literal["pending", "embedded", "failed"] = Field(
        description="Searchable once embedded; failed says why in embedding_error"
    )
    embedding_error: str | None
    client_message_id: str | None
    pinned: bool = Field(description="Retention always keeps it (so does an explicit importance of 1.0)")
    created_at: datetime
    archived_at: datetime | None = Field(description="Set while archived: readable, not searched")
    restored_at: datetime | None = Field(description="When it last came back from the archive")
    user_id: str | None = Field(description="The person the message is about; null when none was given")

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            tenant_id=message.tenant_id,
            conversation_id=message.conversation_id,
            role=message.role.value,
            content=message.content,
            metadata=message.metadata,
            importance=message.importance,
            explicit_importance=message.explicit_importance,
            embedding_status=message.embedding_status.value,
            embedding_error=message.embedding_error,
            client_message_id=message.client_message_id,
            pinned=message.pinned,
            created_at=message.created_at,
            archived_at=message.archived_at,
            restored_at=message.restored_at,
            user_id=message.user_id,
        )


class BatchOut(BaseModel):
    messages: list[MessageOut]


class MessagePatchIn(BaseModel):
    model_config = JSON_BODY

    content: str | None = Field(None, description="New text; the message is embedded again")
    metadata: dict[str, Any] | None = Field(None, description="Replaces the stored object; null clears it")
    importance: float | None = Field(
        None, ge=0, le=1, description="Explicit importance; null goes back to the computed score"
    )
    pinned: bool | None = Field(None, description="Retention always keeps a pinned message")
    user_id: str | None = Field(
        None, description="Sets or changes the message's user; null clears it", json_schema_extra=AN_ID
    )


class ConversationArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(json_schema_extra=AN_ID)
    limit: int = Field(50, description="Messages per page, 1-200")
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    include_archived: bool = Field(False, description="Include archived messages")


class ConversationPageArgs(ConversationArgs):
    order: Order = Field(
        Order.OLDEST,
        description="oldest (first said first) or newest (last said first); pass the same order with each cursor",
    )


class ConversationOut(BaseModel):
    messages: list[MessageOut] = Field(description="Oldest first, or in the order asked")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")


class ErasureOut(BaseModel):
    tenant_id: str
    conversation_id: str | None
    deleted: dict[str, int] = Field(
        description="What was deleted, per table and index: messages, vectors (and, for a tenant, "
        "tenant_retention and tenant_limits)"
    )
