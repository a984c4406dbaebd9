"""Wait, within a bound, until stored messages are no longer pending (`?wait=true`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

from application.ports.messages import MessageRepository
from domain.message import EmbeddingStatus, Message

FIRST_POLL_SECONDS = 0.01
MAX_POLL_SECONDS = 0.2


class WaitForEmbedding:
    """Polls the system of record, so it sees the work of workers in any process."""

    def __init__(self, messages: MessageRepository, timeout_seconds: float) -> None:
        self._messages = messages
        self._timeout = timeout_seconds

    async def __call__(self, stored: Sequence[Message]) -> list[Message]:
        """The messages as they are once none is pending, or when the wait runs out."""
        current = {m.id: m for m in stored}
        deadline = time.monotonic() + self._timeout
        delay = FIRST_POLL_SECONDS
        while True:
            waiting = [i for i, m in current.items() if m.embedding_status == EmbeddingStatus.PENDING]
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                return [current[m.id] for m in stored]
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_SECONDS)
            for tenant_id in {current[i].tenant_id for i in waiting}:
                ids: list[uuid.UUID] = [i for i in waiting if current[i].tenant_id == tenant_id]
                current.update((m.id, m) for m in await self._messages.get_many(tenant_id, ids))
