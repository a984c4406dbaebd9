"""The system of record for messages, and the walks over it that maintenance takes."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.message import Message


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk in time order stopped: the last message seen (a keyset cursor)."""

    created_at: datetime
    message_id: uuid.UUID


class Order(enum.StrEnum):
    """Which way a walk in time order goes. A Position works both ways: the next page starts
    just past it, later in time going OLDEST first, earlier going NEWEST first."""

    OLDEST = "oldest"  # oldest first (ties by id)
    NEWEST = "newest"  # newest first (ties by id, descending)


class MessageRepository(Protocol):
    """The system of record for messages."""

    async def add(self, message: Message) -> None: ...

    async def add_many(self, messages: Sequence[Message]) -> list[Message]:
        """Store each message unless its tenant already holds one with its client_message_id.

        Returns, in order, what is stored under each: the message given, or the one found.
        Safe under concurrent duplicates: exactly one of them is stored.
        """
        ...

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None: ...

    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        """The messages of this tenant among message_ids, in any order; unknown ids are left out."""
        ...

    async def lock(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        """The tenant's messages among message_ids, locked against every other writer until the
        current transaction ends (call it inside Transactions.begin()): what a change decides
        on them cannot be overtaken by a concurrent PATCH, restore, retention run or worker."""
        ...

    async def update(self, message: Message, *, reembed: bool) -> Message | None:
        """Write the message's content, metadata, importance, pinned flag and user (and its embedding
        status); with `reembed`, its embedding starts afresh (any claim on it is void, so a
        worker still embedding the old text cannot complete). None when it is gone."""
        ...

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Delete these messages of the tenant; return the ids that were there."""
        ...

    async def archive(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        """Archive those not archived yet; return their ids."""
        ...

    async def restore(self, tenant_id: str, message_ids: Sequence[uuid.UUID], at: datetime) -> list[uuid.UUID]:
        """Bring archived ones back (restored_at = at); return their ids."""
        ...

    async def conversation_page(
        self,
        tenant_id: str,
        conversation_id: str,
        after: Position | None,
        limit: int,
        include_archived: bool,
        order: Order = Order.OLDEST,
    ) -> list[Message]:
        """Up to `limit` messages of the conversation past `after` in `order`: oldest first (ties
        by id) by default, or newest first (ties by id, descending)."""
        ...

    async def latest_turns(self, tenant_id: str, conversation_id: str, limit: int) -> list[Message]:
        """The conversation's `limit` latest messages not archived, oldest first (ties by id)."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable when the store cannot serve."""
        ...


class MessageCatalog(Protocol):
    """Walks over every stored message, for maintenance: erasure, reindexing, retention."""

    async def tenants(self) -> list[str]:
        """Every tenant that holds a message."""
        ...

    async def message_ids(self, tenant_id: str, conversation_id: str | None, limit: int) -> list[uuid.UUID]:
        """Up to `limit` ids of the tenant's messages (of one conversation, when given), any order."""
        ...

    async def embedded_page(self, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Message]:
        """Up to `limit` embedded messages of the tenant with ids after `after`, in id order."""
        ...
