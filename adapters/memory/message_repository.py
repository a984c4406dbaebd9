from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from application.ports import MessageRepository
from domain.message import EmbeddingStatus, Message


class InMemoryMessageRepository(MessageRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Message] = {}

    async def add(self, message: Message) -> None:
        self.rows[message.id] = message

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None:
        message = self.rows.get(message_id)
        return message if message is not None and message.tenant_id == tenant_id else None

    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        found = (self.rows.get(i) for i in message_ids)
        return [m for m in found if m is not None and m.tenant_id == tenant_id]

    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None:
        for message_id in message_ids:
            message = self.rows.get(message_id)
            if message is not None and message.tenant_id == tenant_id:
                self.rows[message_id] = replace(message, embedding_status=EmbeddingStatus.EMBEDDED)

    async def check(self) -> None:
        return None
