"""Delete one message, erase a conversation, erase a tenant: rows and vectors, with a receipt.

Each goes in bounded batches; each batch locks its rows, forgets their vectors and deletes
the rows in one transaction. The lock comes first: an embedding worker that is writing a
vector for one of them (Qdrant) finishes before, and one that comes after finds the row
gone and writes nothing. What arrives while an erasure runs is erased too, up to the
moment it finds nothing left.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.errors import NotFound
from application.ports.limits import TenantLimitStore
from application.ports.messages import MessageCatalog, MessageRepository
from application.ports.retention import RetentionPolicyStore
from application.ports.storage import Transactions
from application.ports.vectors import VectorIndex
from domain.access import Principal
from domain.message import check_id


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """What was deleted, counted where it was kept."""

    tenant_id: str
    conversation_id: str | None
    messages: int  # rows of the messages table
    vectors: int  # vectors the index held for them
    tenant_retention: int = 0  # the tenant's retention overrides (0 or 1)
    tenant_limits: int = 0  # the tenant's rate-limit override (0 or 1)


class DeleteMessage:
    def __init__(self, messages: MessageRepository, index: VectorIndex, transactions: Transactions) -> None:
        self._messages = messages
        self._index = index
        self._transactions = transactions

    async def __call__(self, principal: Principal, tenant_id: str, message_id: uuid.UUID) -> None:
        check_id("tenant_id", tenant_id)
        principal.require_tenant(tenant_id)
        async with self._transactions.begin():
            if not await self._messages.lock(tenant_id, [message_id]):
                raise NotFound(f"no message {message_id} in tenant '{tenant_id}'")
            await self._index.delete(tenant_id, [message_id])
            await self._messages.delete(tenant_id, [message_id])


class EraseMessages:
    """Erase a conversation (any key of the tenant) or a whole tenant (admin keys only)."""

    def __init__(
        self,
        messages: MessageRepository,
        catalog: MessageCatalog,
        index: VectorIndex,
        transactions: Transactions,
        retention: RetentionPolicyStore,
        limits: TenantLimitStore,
        batch_size: int,
    ) -> None:
        self._messages = messages
        self._catalog = catalog
        self._index = index
        self._transactions = transactions
        self._retention = retention
        self._limits = limits
        self._batch_size = batch_size

    async def conversation(self, principal: Principal, tenant_id: str, conversation_id: str) -> ErasureReceipt:
        check_id("tenant_id", tenant_id)
        check_id("conversation_id", conversation_id)
        principal.require_tenant(tenant_id)
        messages, vectors = await self._erase(tenant_id, conversation_id)
        return ErasureReceipt(tenant_id, conversation_id, messages, vectors)

    async def tenant(self, principal: Principal, tenant_id: str) -> ErasureReceipt:
        principal.require_admin()
        check_id("tenant_id", tenant_id)
        messages, vectors = await self._erase(tenant_id, None)
        vectors += await self._index.drop_tenant(tenant_id)  # any vector whose row was already gone
        retention = await self._retention.put(tenant_id, None)
        limits = await self._limits.get(tenant_id)
        await self._limits.put(tenant_id, None)
        return ErasureReceipt(tenant_id, None, messages, vectors, int(retention), int(limits is not None))

    async def _erase(self, tenant_id: str, conversation_id: str | None) -> tuple[int, int]:
        messages = vectors = 0
        while ids := await self._catalog.message_ids(tenant_id, conversation_id, self._batch_size):
            async with self._transactions.begin():
                locked = [m.id for m in await self._messages.lock(tenant_id, ids)]
                vectors += await self._index.delete(tenant_id, locked)
                messages += len(await self._messages.delete(tenant_id, locked))
        return messages, vectors
