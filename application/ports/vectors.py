"""Nearest-neighbour search over message vectors."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from application.ports.filters import SearchFilters
from domain.message import Role


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """A message's vector with the fields a vector index filters on."""

    message_id: uuid.UUID
    tenant_id: str
    conversation_id: str
    role: Role
    created_at: datetime
    importance: float
    vector: Sequence[float]
    archived: bool = False  # archived messages keep their vector but are never searched
    user_id: str | None = None


class Keep(enum.Enum):
    """A field set_fields leaves as it is (None would clear a user_id)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class VectorHit:
    message_id: uuid.UUID
    similarity: float


class VectorIndex(Protocol):
    """Nearest-neighbour search over message vectors, always inside one tenant."""

    async def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        """At most k hits of this tenant, most similar first; archived messages never come back."""
        ...

    async def delete(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> int:
        """Forget these messages' vectors as the messages are deleted: call it in the transaction
        that deletes them from the repository (ids of other tenants are left alone). Returns how
        many of them had a vector."""
        ...

    async def drop_tenant(self, tenant_id: str) -> int:
        """Forget every vector of the tenant as its messages are erased; return how many were left."""
        ...

    async def set_fields(
        self,
        tenant_id: str,
        message_ids: Sequence[uuid.UUID],
        *,
        archived: bool | None = None,
        importance: float | None = None,
        user_id: str | Keep | None = KEEP,
    ) -> None:
        """Change the filter fields kept beside these vectors (archived ones are never searched);
        user_id=None clears the user."""
        ...

    async def ids(self, tenant_id: str) -> set[uuid.UUID]:
        """The ids of the tenant's messages the index holds a vector for (to check for drift)."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable when the index cannot serve."""
        ...
