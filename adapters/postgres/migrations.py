"""Versioned SQL migrations, applied under an advisory lock.

A small runner of our own rather than Alembic: the schema is plain SQL files, the
driver is asyncpg, and Alembic would bring SQLAlchemy and a second (sync) driver for
what is a loop over files. Two processes starting at once serialise on the lock; the
second finds the work done.

Each migration runs in a transaction, but one whose first line is OUTSIDE_TRANSACTION:
CREATE INDEX CONCURRENTLY (which lets writes go on while an index is built on a live
table) cannot run inside one. Its statements run one at a time, each ending with ';' at
the end of a line, and must be safe to run again: a failure part way leaves the version
unrecorded, and the next upgrade runs them all again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from application.ports.schema import SchemaMissing, SchemaNotReady

logger = logging.getLogger(__name__)

MIGRATION_LOCK = 0x6D656D6F  # "memo": the advisory lock every migrating process takes
DIMENSIONS_PLACEHOLDER = "{{dimensions}}"
OUTSIDE_TRANSACTION = "-- memorymesh: outside a transaction"
LOCK_POLL_SECONDS = 0.1
STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


class SchemaError(SchemaNotReady):
    """The database cannot serve memorymesh as it is; the message says what to do."""


class NoSchemaError(SchemaError, SchemaMissing):
    """Nothing was ever migrated (the message is the same as for a schema behind)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    sql: str

    @property
    def in_transaction(self) -> bool:
        return not self.sql.startswith(OUTSIDE_TRANSACTION)


def statements(sql: str) -> list[str]:
    """The statements of a migration that runs outside a transaction, to run one by one, without
    the comment lines between them."""
    found = []
    for chunk in STATEMENT_END.split(sql):
        statement = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if statement:
            found.append(statement)
    return found


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


async def take_migration_lock(conn: asyncpg.Connection) -> None:
    """Wait for the migration lock by asking again, not in a blocked statement: a statement
    waiting holds a snapshot, and CREATE INDEX CONCURRENTLY in the process that holds the
    lock waits for every older snapshot to go, so the two would wait for each other."""
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK):
            return
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def pending_versions(conn: asyncpg.Connection) -> list[str]:
    applied = set(await applied_versions(conn))
    return [m.version for m in available_migrations() if m.version not in applied]


async def upgrade(conn: asyncpg.Connection, dimensions: int) -> list[str]:
    """Apply every migration not yet applied; return the versions applied now."""
    await require_pgvector(conn)
    done: list[str] = []
    await take_migration_lock(conn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = set(await applied_versions(conn))
        for migration in available_migrations():
            if migration.version in applied:
                continue
            sql = migration.sql.replace(DIMENSIONS_PLACEHOLDER, str(int(dimensions)))
            if migration.in_transaction:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
            else:
                for statement in statements(sql):
                    await conn.execute(statement)
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
    applied = set(await applied_versions(conn))
    pending = [m.version for m in available_migrations() if m.version not in applied]
    if pending:
        refusal = SchemaError if applied else NoSchemaError
        raise refusal(f"the database schema is behind (missing {', '.join(pending)}): run `memorymesh db upgrade`")
