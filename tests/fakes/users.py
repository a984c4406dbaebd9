"""The fake of the UserMessages port: a view of the in-memory messages table."""

from __future__ import annotations

import uuid

from application.ports.messages import Position
from application.ports.users import UserMessages
from domain.message import Message
from tests.fakes.messages import InMemoryMessageTable


class InMemoryUserMessages(UserMessages):
    def __init__(self, table: InMemoryMessageTable) -> None:
        self.table = table

    def _of(self, tenant_id: str, user_id: str) -> list[Message]:
        return [m for m in self.table.rows.values() if m.tenant_id == tenant_id and m.user_id == user_id]

    async def page(
        self, tenant_id: str, user_id: str, after: Position | None, limit: int, include_archived: bool
    ) -> list[Message]:
        chosen = sorted(
            (m for m in self._of(tenant_id, user_id) if include_archived or m.archived_at is None),
            key=lambda m: (m.created_at, m.id),
        )
        if after is not None:
            chosen = [m for m in chosen if (m.created_at, m.id) > (after.created_at, after.message_id)]
        return chosen[:limit]

    async def message_ids(self, tenant_id: str, user_id: str, limit: int) -> list[uuid.UUID]:
        return [m.id for m in self._of(tenant_id, user_id)][:limit]
