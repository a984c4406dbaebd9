"""Store messages, one or a batch: validate, score importance, keep them once, make them searchable.

Two modes. Inline: embed first, then write rows and vectors in one transaction, so a
failure stores nothing. Async: write the rows as pending in one transaction, then hand
the work to the job queue; a worker embeds them (application/embed_pending.py). The row
is the record of the work, so a lost hand-off delays a message but never loses it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.errors import IdempotencyConflict
from application.jobs import EMBED_PENDING
from application.ports.clock import Clock
from application.ports.embedder import Embedder
from application.ports.job_queue import JobQueue
from application.ports.messages import MessageRepository
from application.ports.observability import Metrics
from application.ports.storage import Transactions
from application.ports.vectors import VectorIndex, VectorRecord
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.importance import score_importance
from domain.message import ContentLimits, EmbeddingStatus, Message, NewMessage


class EmbeddingMode(enum.StrEnum):
    INLINE = "inline"
    ASYNC = "async"


@dataclass(frozen=True, slots=True)
class StoreMessageCommand:
    tenant_id: str
    conversation_id: str
    role: str
    content: str
    metadata: dict[str, Any] | None = None
    importance: float | None = None
    created_at: datetime | None = None
    client_message_id: str | None = None
    pinned: bool = False
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: Message
    replayed: bool  # stored by an earlier request with the same client_message_id


@dataclass(frozen=True, slots=True)
class StoreSettings:
    mode: EmbeddingMode = EmbeddingMode.ASYNC
    limits: ContentLimits = field(default_factory=ContentLimits)
    max_batch: int = 500


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
        archived=message.archived_at is not None,
        user_id=message.user_id,
    )


def prefixed(problems: Sequence[FieldProblem], prefix: str) -> list[FieldProblem]:
    return [FieldProblem(f"{prefix}{p.field}", p.message) for p in problems]


class StoreMessages:
    def __init__(
        self,
        messages: MessageRepository,
        index: VectorIndex,
        embedder: Embedder,
        transactions: Transactions,
        queue: JobQueue,
        clock: Clock,
        settings: StoreSettings,
        metrics: Metrics,
    ) -> None:
        self._messages = messages
        self._index = index
        self._embedder = embedder
        self._transactions = transactions
        self._queue = queue
        self._clock = clock
        self._settings = settings
        self._metrics = metrics

    async def one(self, principal: Principal, command: StoreMessageCommand) -> StoredMessage:
        (stored,) = await self._store(principal, [self._parse(command)])
        return stored

    async def batch(self, principal: Principal, commands: Sequence[StoreMessageCommand]) -> list[StoredMessage]:
        """Up to max_batch messages of one tenant, stored together or not at all."""
        if not commands:
            raise ValidationFailed([FieldProblem("messages", "must hold at least one message")])
        if len(commands) > self._settings.max_batch:
            raise ValidationFailed(
                [FieldProblem("messages", f"holds {len(commands)} messages; the limit is {self._settings.max_batch}")]
            )
        parsed: list[NewMessage] = []
        problems: list[FieldProblem] = []
        for i, command in enumerate(commands):
            try:
                parsed.append(self._parse(command))
            except ValidationFailed as failure:
                problems += prefixed(failure.problems, f"messages[{i}].")
        if problems:
            raise ValidationFailed(problems)
        first = parsed[0].tenant_id
        problems = [
            FieldProblem(f"messages[{i}].tenant_id", f"must be '{first}' like messages[0]: a batch holds one tenant")
            for i, new in enumerate(parsed)
            if new.tenant_id != first
        ]
        if problems:
            raise ValidationFailed(problems)
        return await self._store(principal, parsed)

    def _parse(self, command: StoreMessageCommand) -> NewMessage:
        return NewMessage.parse(
            tenant_id=command.tenant_id,
            conversation_id=command.conversation_id,
            role=command.role,
            content=command.content,
            metadata=command.metadata,
            explicit_importance=command.importance,
            created_at=command.created_at,
            client_message_id=command.client_message_id,
            pinned=command.pinned,
            user_id=command.user_id,
            limits=self._settings.limits,
        )

    def _message(self, new: NewMessage, status: EmbeddingStatus) -> Message:
        return Message(
            id=uuid.uuid4(),
            tenant_id=new.tenant_id,
            conversation_id=new.conversation_id,
            role=new.role,
            content=new.content,
            metadata=new.metadata,
            created_at=new.created_at or self._clock.now(),
            importance=score_importance(new.role, new.content, new.explicit_importance).value,
            explicit_importance=new.explicit_importance,
            embedding_status=status,
            client_message_id=new.client_message_id,
            pinned=new.pinned,
            user_id=new.user_id,
        )

    async def _add(self, parsed: Sequence[NewMessage], candidates: list[Message]) -> tuple[list[Message], list[bool]]:
        """Add the candidates; return what is stored under each, and which are new."""
        stored = await self._messages.add_many(candidates)
        fresh = [kept.id == made.id for kept, made in zip(stored, candidates, strict=True)]
        for new, kept, is_new in zip(parsed, stored, fresh, strict=True):
            if not is_new and (differences := new.differences(kept)):
                raise IdempotencyConflict(
                    f"client_message_id '{new.client_message_id}' was already used for a different message "
                    f"(differing in {', '.join(differences)}); a retry sends the message as it was first sent"
                )
        return stored, fresh

    async def _store(self, principal: Principal, parsed: Sequence[NewMessage]) -> list[StoredMessage]:
        for tenant_id in {new.tenant_id for new in parsed}:
            principal.require_tenant(tenant_id)
        inline = self._settings.mode == EmbeddingMode.INLINE
        status = EmbeddingStatus.EMBEDDED if inline else EmbeddingStatus.PENDING
        candidates = [self._message(new, status) for new in parsed]
        # Inline embeds before writing: a model failure stores nothing, the client retries.
        vectors = await self._embedder.embed_documents([embedding_text(m) for m in candidates]) if inline else []
        if inline or len(candidates) > 1:
            # One transaction: a conflicting client_message_id, or a failed vector write,
            # stores none of the messages.
            async with self._transactions.begin():
                stored, fresh = await self._add(parsed, candidates)
                if inline:
                    await self._index.upsert(
                        [vector_record(m, v) for m, v, is_new in zip(candidates, vectors, fresh, strict=True) if is_new]
                    )
        else:  # one row is atomic by itself, and outside a transaction the repository may group-commit it
            stored, fresh = await self._add(parsed, candidates)
        if not inline and any(fresh):
            self._queue.submit(EMBED_PENDING)  # after the commit, so a worker sees the rows
        self._metrics.messages_stored(sum(fresh), self._settings.mode.value)
        return [StoredMessage(kept, replayed=not is_new) for kept, is_new in zip(stored, fresh, strict=True)]
