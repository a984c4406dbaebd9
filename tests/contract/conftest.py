"""Each contract test runs once per adapter: the in-memory fake and the real PostgreSQL one."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from qdrant_client import AsyncQdrantClient

from adapters.postgres.message_repository import PgMessageRepository
from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection
from application.ports.messages import MessageRepository
from application.ports.vectors import VectorIndex
from tests.conftest import DIMENSIONS, pg_vector_index
from tests.fakes.message_repository import InMemoryMessageRepository
from tests.fakes.vector_index import InMemoryVectorIndex


@dataclass
class Backend:
    name: str
    messages: MessageRepository
    index: VectorIndex


@pytest.fixture
async def qdrant_index(tmp_path) -> AsyncIterator[VectorIndex]:
    """Qdrant in qdrant-client's local mode, on disk under the test's own folder."""
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await prepare_collection(client, "messages", DIMENSIONS)
    yield QdrantVectorIndex(client, "messages")
    await client.close()


@pytest.fixture(params=["memory", "postgres", "qdrant"])
def index_backend(request: pytest.FixtureRequest) -> Backend:
    """Every VectorIndex adapter. With Qdrant the system of record is the in-memory fake: the
    index promises do not depend on it."""
    if request.param == "qdrant":
        return Backend("qdrant", InMemoryMessageRepository(), request.getfixturevalue("qdrant_index"))
    if request.param == "postgres":
        database = request.getfixturevalue("database")
        return Backend("postgres", PgMessageRepository(database), pg_vector_index(database))
    return Backend("memory", InMemoryMessageRepository(), InMemoryVectorIndex())


@pytest.fixture(params=["memory", "postgres"])
def queue_backend(request: pytest.FixtureRequest) -> Backend:
    """Like backend, but alone in its database: claims see every tenant's rows."""
    if request.param == "memory":
        return Backend("memory", InMemoryMessageRepository(), InMemoryVectorIndex())
    database = request.getfixturevalue("empty_database")
    return Backend("postgres", PgMessageRepository(database), pg_vector_index(database))


@pytest.fixture(params=["memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend("memory", InMemoryMessageRepository(), InMemoryVectorIndex())
    database = request.getfixturevalue("database")
    return Backend("postgres", PgMessageRepository(database), pg_vector_index(database))
