"""Each contract test runs once per adapter: the in-memory fake and the real PostgreSQL one."""

from dataclasses import dataclass

import pytest

from adapters.memory.message_repository import InMemoryMessageRepository
from adapters.memory.vector_index import InMemoryVectorIndex
from adapters.postgres.message_repository import PgMessageRepository
from adapters.postgres.vector_index import PgVectorIndex
from application.ports import MessageRepository, VectorIndex


@dataclass
class Backend:
    name: str
    messages: MessageRepository
    index: VectorIndex


@pytest.fixture(params=["memory", "postgres"])
def queue_backend(request: pytest.FixtureRequest) -> Backend:
    """Like backend, but alone in its database: claims see every tenant's rows."""
    if request.param == "memory":
        return Backend("memory", InMemoryMessageRepository(), InMemoryVectorIndex())
    database = request.getfixturevalue("empty_database")
    return Backend("postgres", PgMessageRepository(database), PgVectorIndex(database))


@pytest.fixture(params=["memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend("memory", InMemoryMessageRepository(), InMemoryVectorIndex())
    database = request.getfixturevalue("database")
    return Backend("postgres", PgMessageRepository(database), PgVectorIndex(database))
