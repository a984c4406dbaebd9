"""API keys: how they are made and hashed, and the keys that come from settings.

Keys are 256-bit random tokens, so a single SHA-256 is enough to keep them safe at
rest and cheap on the request path (no bcrypt: there is nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from application.ports.keys import ApiKeys
from domain.access import Principal

KEY_PREFIX = "mm_"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class ConfiguredKey:
    key: str
    tenants: frozenset[str]
    admin: bool


class SettingsApiKeys(ApiKeys):
    """Keys named in MEMORY_API_KEYS / MEMORY_ADMIN_API_KEYS; only their hashes are kept."""

    def __init__(self, keys: Iterable[ConfiguredKey]) -> None:
        self._entries = [
            (hash_key(k.key), Principal(key_id=f"env:{hash_key(k.key).hex()[:12]}", tenants=k.tenants, admin=k.admin))
            for k in keys
        ]

    @property
    def empty(self) -> bool:
        return not self._entries

    async def resolve(self, presented_key: str) -> Principal | None:
        digest = hash_key(presented_key)
        found = None
        for stored, principal in self._entries:  # compare with every entry: no early exit
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


class ChainedApiKeys(ApiKeys):
    """Ask each source in turn; the first that knows the key answers."""

    def __init__(self, *sources: ApiKeys) -> None:
        self._sources = sources

    async def resolve(self, presented_key: str) -> Principal | None:
        for source in self._sources:
            principal = await source.resolve(presented_key)
            if principal is not None:
                return principal
        return None
