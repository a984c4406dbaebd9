"""The fakes of the message ports: one in-memory table, and a view of it per port."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from adapters.clock import SystemClock
from application.ports.clock import Clock
from application.ports.messages import MessageCatalog, MessageRepository, Order, Position
from domain.message import EmbeddingStatus, Message


@dataclass
class EmbeddingWork:
    """The queue fields PostgreSQL keeps on each row."""

    stored_at: datetime
    ready_at: datetime
    attempts: int = 0
    claim: uuid.UUID | None = None


class InMemoryMessageTable:
    """The messages table of one process: each message, and the queue fields PostgreSQL keeps on
    its row. Each fake port of messages is a view over one table, as each Pg adapter is a view
    over one database: build one table and hand each use case its view."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.rows: dict[uuid.UUID, Message] = {}
        self.work: dict[uuid.UUID, EmbeddingWork] = {}

    def snapshot(self) -> tuple[dict[uuid.UUID, Message], dict[uuid.UUID, EmbeddingWork]]:
        return dict(self.rows), copy.deepcopy(self.work)

    def roll_back_to(self, snapshot: tuple[dict[uuid.UUID, Message], dict[uuid.UUID, EmbeddingWork]]) -> None:
        self.rows, self.work = snapshot

    def of_tenant(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        found = (self.rows.get(i) for i in dict.fromkeys(message_ids))
        return [m for m in found if m is not None and m.tenant_id == tenant_id]


class InMemoryMessages(MessageRepository):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table

    async def add(self, message: Message) -> None:
        await self.add_many([message])

    async def add_many(self, messages: Sequence[Message]) -> list[Message]:
        stored = []
        for message in messages:
            existing = self._by_client_id(message)
            if existing is not None:
                stored.append(existing)
                continue
            now = self.table.clock.now()
            self.table.rows[message.id] = message
            self.table.work[message.id] = EmbeddingWork(stored_at=now, ready_at=now)
            stored.append(message)
        return stored

    def _by_client_id(self, message: Message) -> Message | None:
        if message.client_message_id is None:
            return None
        for row in self.table.rows.values():
            if row.tenant_id == message.tenant_id and row.client_message_id == message.client_message_id:
                return row
        return None

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None:
        message = self.table.rows.get(message_id)
        return message if message is not None and message.tenant_id == tenant_id else None

    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        found = (self.table.rows.get(i) for i in message_ids)
        return [m for m in found if m is not None and m.tenant_id == tenant_id]

    async def lock(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        return sorted(self.table.of_tenant(tenant_id, message_ids), key=lambda m: m.id)  # one process: nothing to lock

    async def update(self, message: Message, *, reembed: bool) -> Message | None:
        if await self.get(message.tenant_id, message.id) is None:
            return None
        current = self.table.rows[message.id]
        updated = replace(
            current,
            content=message.content,
            metadata=message.metadata,
            importance=message.importance,
            explicit_importance=message.explicit_importance,
            pinned=message.pinned,
            user_id=message.user_id,
            embedding_status=message.embedding_status,
        )
        if reembed:
            updated = replace(updated, embedding_error=None)
            now = self.table.clock.now()
            work = self.table.work.setdefault(message.id, EmbeddingWork(now, now))
            work.claim, work.attempts, work.ready_at = None, 0, now
        self.table.rows[message.id] = updated
        return updated

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        gone = self.table.of_tenant(tenant_id, message_ids)
        for message in gone:
            del self.table.rows[message.id]
            self.table.work.pop(message.id, None)
        return [m.id for m in gone]

    async def archive(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        archived = [m for m in self.table.of_tenant(tenant_id, message_ids) if m.archived_at is None]
        for message in archived:
            self.table.rows[message.id] = replace(message, archived_at=at)
        return [m.id for m in archived]

    async def restore(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        restored = [m for m in self.table.of_tenant(tenant_id, message_ids) if m.archived_at is not None]
        for message in restored:
            self.table.rows[message.id] = replace(message, archived_at=None, restored_at=at)
        return [m.id for m in restored]

    async def conversation_page(
        self,
        tenant_id: str,
        conversation_id: str,
        after: Position | None,
        limit: int,
        include_archived: bool,
        order: Order = Order.OLDEST,
    ) -> list[Message]:
        newest = order is Order.NEWEST
        chosen = sorted(
            (
                m
                for m in self.table.rows.values()
                if m.tenant_id == tenant_id
                and m.conversation_id == conversation_id
                and (include_archived or m.archived_at is None)
            ),
            key=lambda m: (m.created_at, m.id),
            reverse=newest,
        )
        if after is not None:
            mark = (after.created_at, after.message_id)
            chosen = [m for m in chosen if ((m.created_at, m.id) < mark if newest else (m.created_at, m.id) > mark)]
        return chosen[:limit]

    async def latest_turns(self, tenant_id: str, conversation_id: str, limit: int) -> list[Message]:
        everything = await self.conversation_page(tenant_id, conversation_id, None, len(self.table.rows), False)
        return everything[-limit:] if limit > 0 else []

    async def check(self) -> None:
        return None


class InMemoryMessageCatalog(MessageCatalog):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table

    async def tenants(self) -> list[str]:
        return sorted({m.tenant_id for m in self.table.rows.values()})

    async def message_ids(self, tenant_id: str, conversation_id: str | None, limit: int) -> list[uuid.UUID]:
        return [
            m.id
            for m in self.table.rows.values()
            if m.tenant_id == tenant_id and conversation_id in (None, m.conversation_id)
        ][:limit]

    async def embedded_page(self, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Message]:
        embedded = sorted(
            (
                m
                for m in self.table.rows.values()
                if m.tenant_id == tenant_id and m.embedding_status == EmbeddingStatus.EMBEDDED
            ),
            key=lambda m: m.id,
        )
        return [m for m in embedded if after is None or m.id > after][:limit]
