from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from adapters.postgres.database import Database, storage_errors
from application.ports import MessageRepository, StorageUnavailable
from domain.message import EmbeddingStatus, Message, Role

MESSAGE_COLUMNS = (
    "id, tenant_id, conversation_id, role, content, metadata, created_at, importance, "
    "explicit_importance, embedding_status, archived_at"
)


def to_message(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        tenant_id=row["tenant_id"],
        conversation_id=row["conversation_id"],
        role=Role(row["role"]),
        content=row["content"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        importance=row["importance"],
        explicit_importance=row["explicit_importance"],
        embedding_status=EmbeddingStatus(row["embedding_status"]),
        archived_at=row["archived_at"],
    )


class PgMessageRepository(MessageRepository):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def add(self, message: Message) -> None:
        await self._database.executor().execute(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            message.id,
            message.tenant_id,
            message.conversation_id,
            message.role.value,
            message.content,
            message.metadata,
            message.created_at,
            message.importance,
            message.explicit_importance,
            message.embedding_status.value,
            message.archived_at,
        )

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
    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None:
        await self._database.executor().execute(
            "UPDATE messages SET embedding_status = 'embedded' WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            tenant_id,
            list(message_ids),
        )

    async def check(self) -> None:
        try:
            await self._database.pool.fetchval("SELECT 1", timeout=2.0)
        except Exception as error:  # readiness reports any failure, whatever its kind
            raise StorageUnavailable(f"the database does not answer: {type(error).__name__}: {error}") from error
