"""API keys: resolving them, and the store the service keeps them in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.access import Principal


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    id: str
    key: str
    principal: Principal


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A stored key as admins see it: never the key itself."""

    id: str
    name: str
    tenants: frozenset[str]
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


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

    async def list_keys(self) -> list[ApiKeyInfo]:
        """Every stored key, oldest first, revoked ones included."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke at once (every process asks the store on each request); False for an unknown id."""
        ...
