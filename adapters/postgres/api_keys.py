"""API keys kept in PostgreSQL as SHA-256 hashes; the key itself is never stored."""

from __future__ import annotations

import uuid

from asyncpg.pool import PoolConnectionProxy

from adapters.keys import generate_key, hash_key
from adapters.postgres.database import Database, storage_errors
from application.ports.keys import ApiKeyInfo, ApiKeyStore, CreatedApiKey
from domain.access import Principal

BOOTSTRAP_LOCK = 0x6B657973  # "keys": serialises first-key creation across processes


class PgApiKeyStore(ApiKeyStore):
    def __init__(self, database: Database) -> None:
        self._pool = database.pool

    @storage_errors
    async def resolve(self, presented_key: str) -> Principal | None:
        row = await self._pool.fetchrow(
            "SELECT id, tenants, admin FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_key(presented_key),
        )
        if row is None:
            return None
        return Principal(key_id=str(row["id"]), tenants=frozenset(row["tenants"]), admin=row["admin"])

    @storage_errors
    async def create(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey:
        async with self._pool.acquire() as conn:
            return await self._insert(conn, name, tenants, admin)

    @storage_errors
    async def create_first(self, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey | None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", BOOTSTRAP_LOCK)
            if await conn.fetchval("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"):
                return None
            return await self._insert(conn, name, tenants, admin)

    @storage_errors
    async def list_keys(self) -> list[ApiKeyInfo]:
        rows = await self._pool.fetch(
            "SELECT id, name, tenants, admin, created_at, revoked_at FROM api_keys ORDER BY created_at, id"
        )
        return [
            ApiKeyInfo(
                id=str(r["id"]),
                name=r["name"],
                tenants=frozenset(r["tenants"]),
                admin=r["admin"],
                created_at=r["created_at"],
                revoked_at=r["revoked_at"],
            )
            for r in rows
        ]

    @storage_errors
    async def revoke(self, key_id: str) -> bool:
        try:
            parsed = uuid.UUID(key_id)
        except ValueError:
            return False
        found = await self._pool.fetchval(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING id", parsed
        )
        return found is not None

    @staticmethod
    async def _insert(conn: PoolConnectionProxy, name: str, tenants: frozenset[str], admin: bool) -> CreatedApiKey:
        key = generate_key()
        key_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, tenants, admin) VALUES ($1, $2, $3, $4, $5)",
            key_id,
            name,
            hash_key(key),
            sorted(tenants),
            admin,
        )
        principal = Principal(key_id=str(key_id), tenants=tenants, admin=admin)
        return CreatedApiKey(id=str(key_id), key=key, principal=principal)
