from __future__ import annotations

import uuid

from adapters.keys import generate_key, hash_key
from application.ports import ApiKeyStore, CreatedApiKey
from domain.access import Principal


class InMemoryApiKeyStore(ApiKeyStore):
    def __init__(self) -> None:
        self.by_hash: dict[bytes, Principal] = {}

    async def resolve(self, presented_key: str) -> Principal | None:
        return self.by_hash.get(hash_key(presented_key))

    async def create(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey:
        key = generate_key()
        principal = Principal(key_id=str(uuid.uuid4()), tenants=tenants, admin=admin)
        self.by_hash[hash_key(key)] = principal
        return CreatedApiKey(id=principal.key_id, key=key, principal=principal)

    async def create_first(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey | None:
        return None if self.by_hash else await self.create(name, tenants, admin)
