"""Store one message: validate, score its importance, keep it, make it searchable."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from application.ports import Clock, Embedder, MessageRepository, Transactions, VectorIndex, VectorRecord
from domain.access import Principal
from domain.importance import score_importance
from domain.message import ContentLimits, EmbeddingStatus, Message, NewMessage


@dataclass(frozen=True, slots=True)
class StoreMessageCommand:
    tenant_id: str
    conversation_id: str
    role: str
    content: str
    metadata: dict[str, Any] | None = None
    importance: float | None = None
    created_at: datetime | None = None


def embedding_text(message: Message) -> str:
    """The text a message is embedded as."""
    return message.content


def vector_record(message: Message, vector: list[float]) -> VectorRecord:
    return VectorRecord(
        message_id=message.id,
        tenant_id=message.tenant_id,
        conversation_id=message.conversation_id,
        role=message.role,
        created_at=message.created_at,
        importance=message.importance,
        vector=vector,
    )


class StoreMessage:
    """Embeds inline: the vector is written before the answer goes back."""

    def __init__(
        self,
        messages: MessageRepository,
        index: VectorIndex,
        embedder: Embedder,
        transactions: Transactions,
        clock: Clock,
        limits: ContentLimits,
    ) -> None:
        self._transactions = transactions
        self._messages = messages
        self._index = index
        self._embedder = embedder
        self._clock = clock
        self._limits = limits

    async def __call__(self, principal: Principal, command: StoreMessageCommand) -> Message:
        new = NewMessage.parse(
            tenant_id=command.tenant_id,
            conversation_id=command.conversation_id,
            role=command.role,
            content=command.content,
            metadata=command.metadata,
            explicit_importance=command.importance,
            created_at=command.created_at,
            limits=self._limits,
        )
        principal.require_tenant(new.tenant_id)
        message = Message(
            id=uuid.uuid4(),
            tenant_id=new.tenant_id,
            conversation_id=new.conversation_id,
            role=new.role,
            content=new.content,
            metadata=new.metadata,
            created_at=new.created_at or self._clock.now(),
            importance=score_importance(new.role, new.content, new.explicit_importance).value,
            explicit_importance=new.explicit_importance,
            embedding_status=EmbeddingStatus.PENDING,
        )
        # Embed first, then write row, vector and status in one transaction: a failure
        # anywhere stores nothing and the client is told to retry, so no row is left
        # that search can never see, and a retry makes no duplicate.
        (vector,) = await self._embedder.embed_documents([embedding_text(message)])
        async with self._transactions.begin():
            await self._messages.add(message)
            await self._index.upsert([vector_record(message, vector)])
            await self._messages.mark_embedded(message.tenant_id, [message.id])
        return replace(message, embedding_status=EmbeddingStatus.EMBEDDED)
