import asyncio
import uuid

import asyncpg
import pytest

from adapters.postgres.migrations import (
    SchemaError,
    applied_versions,
    available_migrations,
    statements,
    upgrade,
    verify,
)

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


async def test_a_row_stored_at_infinity_is_found_by_its_words_once_upgraded(fresh_dsn):
    """Before 0008 a created_at of -infinity (what asyncpg stored for datetime.min) had no date
    words, and made the whole content_tsv NULL; upgrading gives such rows their words."""
    conn = await asyncpg.connect(fresh_dsn)
    try:
        assert "0008_date_words_of_infinity" in await upgrade(conn, 384)
        await conn.execute("DELETE FROM schema_migrations WHERE version = '0008_date_words_of_infinity'")
        await conn.execute(  # the function as migration 0005 made it
            "CREATE OR REPLACE FUNCTION memorymesh_date_words(at timestamptz) RETURNS text "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
            "AS $$ SELECT to_char(at AT TIME ZONE 'UTC', 'FMDD FMMonth YYYY') $$"
        )
        await conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance) "
            "VALUES (gen_random_uuid(), 't', 'c', 'user', 'falcon', unnest($1::text[])::timestamptz, 0.5)",
            ["-infinity", "infinity", "2026-05-08T00:00:00Z"],
        )
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE content_tsv IS NULL") == 2

        assert await upgrade(conn, 384) == ["0008_date_words_of_infinity"]

        words = await conn.fetch("SELECT content_tsv::text AS words FROM messages ORDER BY created_at")
        assert [r["words"] for r in words] == ["'falcon':1", "'2026':4 '8':2 'falcon':1 'may':3", "'falcon':1"]
    finally:
        await conn.close()


async def test_a_concurrent_index_build_cut_short_is_built_again_by_the_next_upgrade(fresh_dsn):
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await upgrade(conn, 384)
        # Back to before 0009, with what a failed CREATE INDEX CONCURRENTLY leaves: an invalid index.
        await conn.execute("DELETE FROM schema_migrations WHERE version = '0009_fair_embedding_claims'")
        await conn.execute("DROP INDEX messages_embedding_tenant_ready")
        await conn.execute(
            "CREATE INDEX messages_embedding_pending ON messages (embedding_ready_at) "
            "WHERE embedding_status = 'pending'"
        )
        await conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance) "
            "SELECT gen_random_uuid(), 'acme', 'c', 'user', 'hi', now(), 0.5 FROM generate_series(1, 2)"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY messages_embedding_tenant_ready ON messages (tenant_id) "
                "WHERE embedding_status = 'pending'"
            )
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('messages_embedding_tenant_ready')"
        assert await conn.fetchval(valid) is False

        assert await upgrade(conn, 384) == ["0009_fair_embedding_claims"]

        assert await conn.fetchval(valid) is True
        definition = await conn.fetchval("SELECT pg_get_indexdef('messages_embedding_tenant_ready'::regclass)")
        assert "(tenant_id, embedding_ready_at) WHERE (embedding_status = 'pending'::text)" in definition
        assert await conn.fetchval("SELECT to_regclass('messages_embedding_pending')") is None
        await verify(conn)
    finally:
        await conn.close()


def test_a_migration_outside_a_transaction_runs_statement_by_statement():
    (migration,) = [m for m in available_migrations() if m.version == "0009_fair_embedding_claims"]
    assert not migration.in_transaction
    assert [s.split(" ON ")[0] for s in statements(migration.sql)] == [
        "DROP INDEX CONCURRENTLY IF EXISTS messages_embedding_tenant_ready",
        "CREATE INDEX CONCURRENTLY messages_embedding_tenant_ready",
        "DROP INDEX CONCURRENTLY IF EXISTS messages_embedding_pending",
    ]
    assert all(m.in_transaction for m in available_migrations() if m.version < "0009")


async def test_the_user_scope_adds_a_column_without_rewriting_messages(fresh_dsn):
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await upgrade(conn, 384)
        # Back to before 0010, with messages stored.
        await conn.execute("DELETE FROM schema_migrations WHERE version = '0010_user_scope'")
        await conn.execute("DROP INDEX messages_tenant_user_created")
        await conn.execute("ALTER TABLE messages DROP COLUMN user_id")
        await conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance) "
            "SELECT gen_random_uuid(), 'acme', 'c', 'user', 'hi', now(), 0.5 FROM generate_series(1, 3)"
        )
        file_before = await conn.fetchval("SELECT pg_relation_filenode('messages')")

        assert await upgrade(conn, 384) == ["0010_user_scope"]

        assert await conn.fetchval("SELECT pg_relation_filenode('messages')") == file_before  # not rewritten
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE user_id IS NULL") == 3
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('messages_tenant_user_created')"
        assert await conn.fetchval(valid) is True
        definition = await conn.fetchval("SELECT pg_get_indexdef('messages_tenant_user_created'::regclass)")
        assert "(tenant_id, user_id, created_at, id) WHERE (user_id IS NOT NULL)" in definition
        await verify(conn)
    finally:
        await conn.close()
