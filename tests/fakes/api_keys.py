from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from adapters.keys import generate_key, hash_key
from application.ports.keys import ApiKeyInfo, ApiKeyStore, CreatedApiKey
from domain.access import Principal


class InMemoryApiKeyStore(ApiKeyStore):
    def __init__(self) -> None:
        self.by_hash: dict[bytes, Principal] = {}
        self.infos: dict[str, ApiKeyInfo] = {}

    async def resolve(self, presented_key: str) -> Principal | None:
        principal = self.by_hash.get(hash_key(presented_key))
        if principal is None or self.infos[principal.key_id].revoked_at is not None:
            return None
        return principal

    async def create(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey:
        key = generate_key()
        principal = Principal(key_id=str(uuid.uuid4()), tenants=tenants, admin=admin)
        self.by_hash[hash_key(key)] = principal
        self.infos[principal.key_id] = ApiKeyInfo(principal.key_id, name, tenants, admin, datetime.now(UTC), None)
        return CreatedApiKey(id=principal.key_id, key=key, principal=principal)

    async def create_first(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey | None:
        active = [i for i in self.infos.values() if i.revoked_at is None]
        return None if active else await self.create(name, tenants, admin)

    async def list_keys(self) -> list[ApiKeyInfo]:
        return list(self.infos.values())

    async def revoke(self, key_id: str) -> bool:
        info = self.infos.get(key_id)
        if info is None:
            return False
        if info.revoked_at is None:
            self.infos[key_id] = replace(info, revoked_at=datetime.now(UTC))
        return True
