"""A user's messages in PostgreSQL, read through messages_tenant_user_created (migration 0010)."""

from __future__ import annotations

import uuid

from adapters.postgres.database import Database, storage_errors
from adapters.postgres.rows import MESSAGE_COLUMNS, to_message
from application.ports.messages import Position
from application.ports.users import UserMessages
from domain.message import Message


class PgUserMessages(UserMessages):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def page(
        self, tenant_id: str, user_id: str, after: Position | None, limit: int, include_archived: bool
    ) -> list[Message]:
        archived = "" if include_archived else " AND archived_at IS NULL"
        # user_id IS NOT NULL lets the planner use the partial index whatever the parameter.
        where = f"tenant_id = $1 AND user_id = $2 AND user_id IS NOT NULL{archived}"
        params: list[object] = [tenant_id, user_id, limit]
        if after is not None:
            where += " AND (created_at, id) > ($4, $5)"
            params += [after.created_at, after.message_id]
        rows = await self._database.executor().fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY created_at, id LIMIT $3", *params
        )
        return [to_message(r) for r in rows]

    @storage_errors
    async def message_ids(self, tenant_id: str, user_id: str, limit: int) -> list[uuid.UUID]:
        rows = await self._database.executor().fetch(
            "SELECT id FROM messages WHERE tenant_id = $1 AND user_id = $2 AND user_id IS NOT NULL LIMIT $3",
            tenant_id,
            user_id,
            limit,
        )
        return [r["id"] for r in rows]
