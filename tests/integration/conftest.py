"""A real PostgreSQL 18 with pgvector, started once for the session from the pgserver wheel."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.embeddings.sentence_transformers import SentenceTransformerEmbedder, bundled_model_path, load_model
from adapters.postgres.database import Database, DatabaseOptions, EmbeddedPostgres, open_database

DIMENSIONS = 384  # all-MiniLM-L6-v2, so the real model and the deterministic one share a schema


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    dsn = server.start()
    yield dsn
    server.stop()


@pytest.fixture
async def database(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Database]:
    resource = open_database(DatabaseOptions(url=pg_dsn, data_dir=tmp_path), DIMENSIONS)
    yield await anext(resource)
    await resource.aclose()


@pytest.fixture(scope="session")
def model():  # type: ignore[no-untyped-def]
    return load_model(bundled_model_path(), "cpu")


@pytest.fixture
def minilm(model) -> Iterator[SentenceTransformerEmbedder]:  # type: ignore[no-untyped-def]
    embedder = SentenceTransformerEmbedder(model, "all-MiniLM-L6-v2", batch_size=64, max_concurrency=1)
    yield embedder
    embedder.close()
