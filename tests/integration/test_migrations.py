import asyncio
import uuid

import asyncpg
import pytest

from adapters.postgres.migrations import SchemaError, applied_versions, available_migrations, upgrade, verify

SYSTEM_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"  # PostgreSQL 15 without pgvector


@pytest.fixture
async def fresh_dsn(pg_dsn: str):
    """A new, empty database on the embedded server."""
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, query = pg_dsn.partition("?")
    yield f"{base.rsplit('/', 1)[0]}/{name}?{query}"


async def test_processes_starting_together_apply_each_migration_once(fresh_dsn):
    connections = [await asyncpg.connect(fresh_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(upgrade(c, 384) for c in connections))
        every_version = [m.version for m in available_migrations()]
        assert sorted(v for applied in results for v in applied) == every_version
        assert await applied_versions(connections[0]) == every_version
        await verify(connections[0])
        assert await upgrade(connections[0], 384) == []
    finally:
        for c in connections:
            await c.close()


async def test_a_schema_that_is_behind_is_refused(fresh_dsn):
    conn = await asyncpg.connect(fresh_dsn)
    try:
        with pytest.raises(SchemaError, match="memorymesh db upgrade"):
            await verify(conn)
    finally:
        await conn.close()


async def test_a_server_without_pgvector_is_refused_with_the_fix():
    conn = await asyncpg.connect(SYSTEM_POSTGRES)
    try:
        with pytest.raises(SchemaError, match="no pgvector extension") as refused:
            await upgrade(conn, 384)
        assert "unset MEMORY_DATABASE_URL" in str(refused.value)
        assert await conn.fetchval("SELECT to_regclass('schema_migrations')") is None  # nothing was written
    finally:
        await conn.close()
