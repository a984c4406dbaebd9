"""The ports the use cases speak to, and the failures an adapter may report.

Adapters subclass these Protocols so that mypy catches any drift.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.access import Principal
from domain.errors import DomainError
from domain.message import Message, Role


class StorageUnavailable(DomainError):
    """The system of record or the vector index cannot be reached right now."""

    code = "storage_unavailable"


class EmbedderUnavailable(DomainError):
    """The embedding model cannot embed right now."""

    code = "embedder_unavailable"


@dataclass(frozen=True, slots=True)
class SearchFilters:
    conversation_id: str | None = None
    role: Role | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None


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


@dataclass(frozen=True, slots=True)
class VectorHit:
    message_id: uuid.UUID
    similarity: float


class Transactions(Protocol):
    """Runs the repository and index calls made inside `begin()` as one unit: when the
    block fails (or is cancelled), none of them stays written."""

    def begin(self) -> AbstractAsyncContextManager[None]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class MessageRepository(Protocol):
    """The system of record for messages."""

    async def add(self, message: Message) -> None: ...

    async def get(self, tenant_id: str, message_id: uuid.UUID) -> Message | None: ...

    async def get_many(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> list[Message]:
        """The messages of this tenant among message_ids, in any order; unknown ids are left out."""
        ...

    async def mark_embedded(self, tenant_id: str, message_ids: Sequence[uuid.UUID]) -> None: ...

    async def check(self) -> None:
        """Raise StorageUnavailable when the store cannot serve."""
        ...


class VectorIndex(Protocol):
    """Nearest-neighbour search over message vectors, always inside one tenant."""

    async def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    async def search(self, tenant_id: str, vector: Sequence[float], k: int, filters: SearchFilters) -> list[VectorHit]:
        """At most k hits of this tenant, most similar first; archived messages never come back."""
        ...


class Embedder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...

    async def check(self) -> None:
        """Raise EmbedderUnavailable when the model cannot embed."""
        ...


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    id: str
    key: str
    principal: Principal


class ApiKeys(Protocol):
    async def resolve(self, presented_key: str) -> Principal | None:
        """The principal holding this key, or None for an unknown or revoked key."""
        ...


class ApiKeyStore(ApiKeys, Protocol):
    """Keys kept by the service itself (hashed), as opposed to keys from settings."""

    async def create(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey: ...

    async def create_first(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey | None:
        """Create the key only when the store holds no active key (atomically across processes)."""
        ...
