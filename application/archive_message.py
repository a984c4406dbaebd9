"""Archive one message by hand (what retention does by policy): kept and readable, no longer
searched, until restored."""

from __future__ import annotations

import uuid

from application.errors import NotFound
from application.ports.clock import Clock
from application.ports.messages import MessageRepository
from application.ports.storage import Transactions
from application.ports.vectors import VectorIndex
from domain.access import Principal
from domain.message import Message, check_id


class ArchiveMessage:
    def __init__(
        self, messages: MessageRepository, index: VectorIndex, transactions: Transactions, clock: Clock
    ) -> None:
        self._messages = messages
        self._index = index
        self._transactions = transactions
        self._clock = clock

    async def __call__(self, principal: Principal, tenant_id: str, message_id: uuid.UUID) -> Message:
        """Idempotent: archiving an archived message keeps its first archived_at. A pinned
        message is archived too: retention spares it, an operator's explicit call does not."""
        check_id("tenant_id", tenant_id)
        principal.require_tenant(tenant_id)
        async with self._transactions.begin():
            await self._index.set_fields(tenant_id, [message_id], archived=True)
            await self._messages.archive(tenant_id, [message_id], self._clock.now())
            message = await self._messages.get(tenant_id, message_id)
        if message is None:
            raise NotFound(f"no message {message_id} in tenant '{tenant_id}'")
        return message
