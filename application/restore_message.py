"""Archive a message by hand (what retention does by policy: kept and readable, no longer
searched), or bring an archived one back: searchable again, its retention age counted from now."""

from __future__ import annotations

import uuid

from application.errors import NotFound
from application.ports.clock import Clock
from application.ports.messages import MessageRepository
from application.ports.storage import Transactions
from application.ports.vectors import VectorIndex
from domain.access import Principal
from domain.message import Message, check_id


class _Archiving:
    """The message's archived state set in the index and the row, in one transaction."""

    def __init__(
        self, messages: MessageRepository, index: VectorIndex, transactions: Transactions, clock: Clock
    ) -> None:
        self._messages = messages
        self._index = index
        self._transactions = transactions
        self._clock = clock

    async def _set(self, principal: Principal, tenant_id: str, message_id: uuid.UUID, archived: bool) -> Message:
        check_id("tenant_id", tenant_id)
        principal.require_tenant(tenant_id)
        change = self._messages.archive if archived else self._messages.restore
        async with self._transactions.begin():
            await self._index.set_fields(tenant_id, [message_id], archived=archived)
            await change(tenant_id, [message_id], self._clock.now())
            message = await self._messages.get(tenant_id, message_id)
        if message is None:
            raise NotFound(f"no message {message_id} in tenant '{tenant_id}'")
        return message


class RestoreMessage(_Archiving):
    async def __call__(self, principal: Principal, tenant_id: str, message_id: uuid.UUID) -> Message:
        """Idempotent: restoring a message that is not archived changes nothing."""
        return await self._set(principal, tenant_id, message_id, archived=False)


class ArchiveMessage(_Archiving):
    async def __call__(self, principal: Principal, tenant_id: str, message_id: uuid.UUID) -> Message:
        """Idempotent: archiving an archived message keeps its first archived_at. A pinned
        message is archived too: retention spares it, an operator's explicit call does not."""
        return await self._set(principal, tenant_id, message_id, archived=True)
