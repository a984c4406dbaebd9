"""Each contract test runs once per adapter: the in-memory fakes and the real PostgreSQL ones."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from qdrant_client import AsyncQdrantClient

from adapters.postgres.database import Database
from adapters.postgres.directory import PgTenantDirectory
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.messages import PgMessageCatalog, PgMessageRepository
from adapters.postgres.retention import PgRetentionCandidates
from adapters.postgres.text_search import PgTextSearch
from adapters.postgres.users import PgUserMessages
from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection
from application.ports.directory import TenantDirectory
from application.ports.embedding_queue import EmbeddingQueue
from application.ports.messages import MessageCatalog, MessageRepository
from application.ports.retention import RetentionCandidates
from application.ports.text_search import TextSearch
from application.ports.users import UserMessages
from application.ports.vectors import VectorIndex
from tests.conftest import DIMENSIONS, pg_vector_index
from tests.fakes.directory import InMemoryTenantDirectory
from tests.fakes.embedding_queue import InMemoryEmbeddingQueue
from tests.fakes.messages import InMemoryMessageCatalog, InMemoryMessages, InMemoryMessageTable
from tests.fakes.retention import InMemoryRetentionCandidates
from tests.fakes.text_search import InMemoryTextSearch
from tests.fakes.users import InMemoryUserMessages
from tests.fakes.vector_index import InMemoryVectorIndex


@dataclass
class Backend:
    """Every port over one store of messages: one database, or one in-memory table."""

    name: str
    messages: MessageRepository
    catalog: MessageCatalog
    queue: EmbeddingQueue
    retention: RetentionCandidates
    text_search: TextSearch
    index: VectorIndex
    users: UserMessages
    directory: TenantDirectory


def in_memory(name: str = "memory", index: VectorIndex | None = None) -> Backend:
    table = InMemoryMessageTable()
    return Backend(
        name,
        InMemoryMessages(table),
        InMemoryMessageCatalog(table),
        InMemoryEmbeddingQueue(table),
        InMemoryRetentionCandidates(table),
        InMemoryTextSearch(table),
        index if index is not None else InMemoryVectorIndex(),
        InMemoryUserMessages(table),
        InMemoryTenantDirectory(table),
    )


def on_postgres(database: Database) -> Backend:
    return Backend(
        "postgres",
        PgMessageRepository(database),
        PgMessageCatalog(database),
        PgEmbeddingQueue(database),
        PgRetentionCandidates(database),
        PgTextSearch(database),
        pg_vector_index(database),
        PgUserMessages(database),
        PgTenantDirectory(database),
    )


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
        return in_memory("qdrant", request.getfixturevalue("qdrant_index"))
    if request.param == "postgres":
        return on_postgres(request.getfixturevalue("database"))
    return in_memory()


@pytest.fixture(params=["memory", "postgres"])
def queue_backend(request: pytest.FixtureRequest) -> Backend:
    """Like backend, but alone in its database: claims see every tenant's rows."""
    if request.param == "memory":
        return in_memory()
    return on_postgres(request.getfixturevalue("empty_database"))


@pytest.fixture(params=["memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return in_memory()
    return on_postgres(request.getfixturevalue("database"))
