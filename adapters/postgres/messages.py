"""Messages in PostgreSQL: the system of record, and the walks over it that maintenance takes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from adapters.postgres.coalesce import InsertCoalescer
from adapters.postgres.database import Database, storage_errors
from adapters.postgres.rows import MESSAGE_COLUMNS, to_message
from adapters.postgres.statistics import PgStatisticsUpkeep
from application.ports.messages import MessageCatalog, MessageRepository, Order, Position
from application.ports.storage import StorageUnavailable
from domain.message import Message

# One row per message, sent as one array per column: a batch is one statement.
INSERT_MESSAGES = f"""
INSERT INTO messages ({MESSAGE_COLUMNS})
SELECT id, tenant_id, conversation_id, role, content, metadata::jsonb, created_at, importance,
       explicit_importance, embedding_status, archived_at, client_message_id, NULL, pinned, NULL, user_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
            $8::float8[], $9::float8[], $10::text[], $11::timestamptz[], $12::text[], $13::bool[], $14::text[])
     AS t(id, tenant_id, conversation_id, role, content, metadata, created_at, importance,
          explicit_importance, embedding_status, archived_at, client_message_id, pinned, user_id)
ON CONFLICT (tenant_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING
RETURNING id
"""

UPDATE_MESSAGE = f"""
UPDATE messages SET
    content = $3, metadata = $4, importance = $5, explicit_importance = $6, pinned = $7,
    embedding_status = $8, user_id = $10, updated_at = now(),
    embedding_claim = CASE WHEN $9 THEN NULL ELSE embedding_claim END,
    embedding_attempts = CASE WHEN $9 THEN 0 ELSE embedding_attempts END,
    embedding_ready_at = CASE WHEN $9 THEN now() ELSE embedding_ready_at END,
    embedding_error = CASE WHEN $9 THEN NULL ELSE embedding_error END
WHERE tenant_id = $1 AND id = $2
RETURNING {MESSAGE_COLUMNS}
"""

INSERT_ATTEMPTS = 3  # a duplicate whose collided row vanishes is inserted afresh on the next try


class PgMessageRepository(MessageRepository):
    def __init__(self, database: Database, statistics: PgStatisticsUpkeep | None = None) -> None:
        self._database = database
        self._statistics = statistics  # told how many rows each insert wrote
        self._coalescer = InsertCoalescer(self._insert)

    async def add(self, message: Message) -> None:
        await self.add_many([message])

    async def add_many(self, messages: Sequence[Message]) -> list[Message]:
        if self._database.in_transaction():  # the caller's transaction decides what commits with it
            return await self._insert(messages)
        return await self._coalescer.add(messages)

    @storage_errors
    async def _insert(self, messages: Sequence[Message]) -> list[Message]:
        """Insert and look up the duplicates in one transaction: a failure leaves nothing
        behind, so a caller told to retry has not been stored (nor any caller grouped with it)."""
        stored: dict[uuid.UUID, Message] = {}
        async with self._database.transaction():
            pending = list(messages)
            for _ in range(INSERT_ATTEMPTS):
                stored.update(await self._insert_or_find(pending))
                pending = [m for m in pending if m.id not in stored]
                if not pending:
                    if self._statistics is not None:
                        self._statistics.rows_written(sum(1 for m in messages if stored[m.id].id == m.id))
                    return [stored[m.id] for m in messages]
        # Each try, the row a duplicate collided with was deleted before it could be read.
        raise StorageUnavailable("concurrent writes kept changing this message; retry the request")

    async def _insert_or_find(self, messages: Sequence[Message]) -> dict[uuid.UUID, Message]:
        """What is now stored under each message's id: itself, or the row its client_message_id
        collided with; a message whose collided row is gone meanwhile is left out."""
        executor = self._database.executor()
        inserted = {
            row["id"]
            for row in await executor.fetch(
                INSERT_MESSAGES,
                [m.id for m in messages],
                [m.tenant_id for m in messages],
                [m.conversation_id for m in messages],
                [m.role.value for m in messages],
                [m.content for m in messages],
                [json.dumps(m.metadata) for m in messages],
                [m.created_at for m in messages],
                [m.importance for m in messages],
                [m.explicit_importance for m in messages],
                [m.embedding_status.value for m in messages],
                [m.archived_at for m in messages],
                [m.client_message_id for m in messages],
                [m.pinned for m in messages],
                [m.user_id for m in messages],
            )
        }
        outcome = {m.id: m for m in messages if m.id in inserted}
        duplicates = [m for m in messages if m.id not in inserted]
        if duplicates:
            rows = await executor.fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages "
                "WHERE (tenant_id, client_message_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                [m.tenant_id for m in duplicates],
                [m.client_message_id for m in duplicates],
            )
            found = {(r["tenant_id"], r["client_message_id"]): to_message(r) for r in rows}
            for message in duplicates:
                if (existing := found.get((message.tenant_id, message.client_message_id))) is not None:
                    outcome[message.id] = existing
        return outcome

    @storage_errors
    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None:
        row = await self._database.executor().fetchrow(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2", tenant_id, message_id
        )
        return to_message(row) if row is not None else None

    @storage_errors
    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            tenant_id,
            list(message_ids),
        )
        return [to_message(r) for r in rows]

    @storage_errors
    async def lock(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        if not message_ids:
            return []
        # In id order, so that two lockers of overlapping sets cannot deadlock.
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
            "ORDER BY id FOR UPDATE",
            tenant_id,
            list(message_ids),
        )
        return [to_message(r) for r in rows]

    @storage_errors
    async def update(self, message: Message, *, reembed: bool) -> Message | None:
        row = await self._database.executor().fetchrow(
            UPDATE_MESSAGE,
            message.tenant_id,
            message.id,
            message.content,
            message.metadata,
            message.importance,
            message.explicit_importance,
            message.pinned,
            message.embedding_status.value,
            reembed,
            message.user_id,
        )
        return None if row is None else to_message(row)

    @storage_errors
    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        if not message_ids:
            return []
        rows = await self._database.executor().fetch(
            "DELETE FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING id",
            tenant_id,
            list(message_ids),
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def archive(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        if not message_ids:
            return []
        rows = await self._database.executor().fetch(
            "UPDATE messages SET archived_at = $3 "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND archived_at IS NULL RETURNING id",
            tenant_id,
            list(message_ids),
            at,
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def restore(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "UPDATE messages SET archived_at = NULL, restored_at = $3 "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND archived_at IS NOT NULL RETURNING id",
            tenant_id,
            list(message_ids),
            at,
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def conversation_page(
        self,
        tenant_id: str,
        conversation_id: str,
        after: Position | None,
        limit: int,
        include_archived: bool,
        order: Order = Order.OLDEST,
    ) -> list[Message]:
        archived = "" if include_archived else " AND archived_at IS NULL"
        where = f"tenant_id = $1 AND conversation_id = $2{archived}"
        params: list[object] = [tenant_id, conversation_id, limit]
        # Either way one range of messages_tenant_conversation_created, read forwards or backwards.
        past, direction = (">", "") if order is Order.OLDEST else ("<", " DESC")
        if after is not None:
            where += f" AND (created_at, id) {past} ($4, $5)"
            params += [after.created_at, after.message_id]
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} "
            f"ORDER BY created_at{direction}, id{direction} LIMIT $3",
            *params,
        )
        return [to_message(r) for r in rows]

    async def latest_turns(self, tenant_id: str, conversation_id: str, limit: int) -> list[Message]:
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2 "
            "AND archived_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $3",
            tenant_id,
            conversation_id,
            limit,
        )
        return [to_message(r) for r in reversed(rows)]

    async def check(self) -> None:
        try:
            await self._database.pool.fetchval("SELECT 1", timeout=2.0)
        except Exception as error:  # readiness reports any failure, whatever its kind
            raise StorageUnavailable(f"the database does not answer: {type(error).__name__}: {error}") from error


class PgMessageCatalog(MessageCatalog):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def tenants(self) -> list[str]:
        rows = await self._database.executor().fetch("SELECT DISTINCT tenant_id FROM messages ORDER BY tenant_id")
        return [r["tenant_id"] for r in rows]

    @storage_errors
    async def message_ids(self, tenant_id: str, conversation_id: str | None, limit: int) -> list[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "SELECT id FROM messages WHERE tenant_id = $1 AND ($2::text IS NULL OR conversation_id = $2) LIMIT $3",
            tenant_id,
            conversation_id,
            limit,
        )
        return [r["id"] for r in rows]

    @storage_errors
    async def embedded_page(self, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Message]:
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND embedding_status = 'embedded' "
            "AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            tenant_id,
            after,
            limit,
        )
        return [to_message(r) for r in rows]
