"""Versioned SQL migrations, applied under an advisory lock.

A small runner of our own rather than Alembic: the schema is plain SQL files, the
driver is asyncpg, and Alembic would bring SQLAlchemy and a second (sync) driver for
what is a loop over files. Two processes starting at once serialise on the lock; the
second finds the work done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

logger = logging.getLogger(__name__)

MIGRATION_LOCK = 0x6D656D6F  # "memo": the advisory lock every migrating process takes
DIMENSIONS_PLACEHOLDER = "{{dimensions}}"


class SchemaError(Exception):
    """The database cannot serve memorymesh as it is; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("adapters.postgres") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text("utf-8")) for f in files]


async def require_pgvector(conn: asyncpg.Connection) -> None:
    available = await conn.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
    if available is None:
        version = await conn.fetchval("SHOW server_version")
        raise SchemaError(
            f"the PostgreSQL server at MEMORY_DATABASE_URL (version {version}) has no pgvector extension. "
            "Install pgvector on that server (https://github.com/pgvector/pgvector#installation), "
            "or unset MEMORY_DATABASE_URL to use the embedded PostgreSQL that ships with pgvector."
        )


async def applied_versions(conn: asyncpg.Connection) -> list[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [r["version"] for r in rows]


async def upgrade(conn: asyncpg.Connection, dimensions: int) -> list[str]:
    """Apply every migration not yet applied; return the versions applied now."""
    await require_pgvector(conn)
    done: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = set(await applied_versions(conn))
        for migration in available_migrations():
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql.replace(DIMENSIONS_PLACEHOLDER, str(int(dimensions))))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
            logger.info("applied migration", extra={"version": migration.version})
            done.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return done


async def verify(conn: asyncpg.Connection) -> None:
    """Refuse to serve from a schema that is behind. Whether the stored vectors are this
    process's model's is the model record's to say (adapters/postgres/embedding_models.py)."""
    await require_pgvector(conn)
    pending = [m.version for m in available_migrations() if m.version not in set(await applied_versions(conn))]
    if pending:
        raise SchemaError(f"the database schema is behind (missing {', '.join(pending)}): run `memorymesh db upgrade`")
