import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from dependency_injector import providers
from quart.typing import TestClientProtocol

from adapters.tokenizers.bpe_openai import BpeOpenAiTokenizer
from config.container import Container
from config.settings import Settings
from entrypoints.http.app import create_app
from tests.fakes.api_keys import InMemoryApiKeyStore
from tests.fakes.clock import FixedClock
from tests.fakes.directory import InMemoryTenantDirectory
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.embedding_queue import InMemoryEmbeddingQueue
from tests.fakes.messages import InMemoryMessageCatalog, InMemoryMessages, InMemoryMessageTable
from tests.fakes.retention import (
    InMemoryLocks,
    InMemoryRetentionCandidates,
    InMemoryRetentionPolicyStore,
    InMemoryRetentionRuns,
)
from tests.fakes.tenant_limits import InMemoryTenantLimitStore
from tests.fakes.text_search import InMemoryTextSearch
from tests.fakes.transactions import InMemoryTransactions
from tests.fakes.users import InMemoryUserMessages
from tests.fakes.vector_index import InMemoryVectorIndex

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ADMIN_KEY = "admin-key-for-tests-0001"
ACME_KEY = "acme-key-for-tests-0001"
GLOBEX_KEY = "globex-key-for-tests-001"


@functools.cache
def real_tokenizer() -> BpeOpenAiTokenizer:
    """o200k_base, loaded once for the session (about a second), not once per app."""
    return BpeOpenAiTokenizer("o200k_base")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def table(clock: FixedClock) -> InMemoryMessageTable:
    """The one in-memory messages table every fake port of messages below is a view of."""
    return InMemoryMessageTable(clock)


@pytest.fixture
def repository(table: InMemoryMessageTable) -> InMemoryMessages:
    return InMemoryMessages(table)


@pytest.fixture
def catalog(table: InMemoryMessageTable) -> InMemoryMessageCatalog:
    return InMemoryMessageCatalog(table)


@pytest.fixture
def embedding_queue(table: InMemoryMessageTable) -> InMemoryEmbeddingQueue:
    return InMemoryEmbeddingQueue(table)


@pytest.fixture
def retention_candidates(table: InMemoryMessageTable) -> InMemoryRetentionCandidates:
    return InMemoryRetentionCandidates(table)


@pytest.fixture
def text_search(table: InMemoryMessageTable) -> InMemoryTextSearch:
    return InMemoryTextSearch(table)


@pytest.fixture
def index() -> InMemoryVectorIndex:
    return InMemoryVectorIndex()


@pytest.fixture
def embedder() -> DeterministicEmbedder:
    return DeterministicEmbedder(dimensions=64)


@pytest.fixture
def transactions(table: InMemoryMessageTable, index: InMemoryVectorIndex) -> InMemoryTransactions:
    return InMemoryTransactions(table, index)


@pytest.fixture
def tenant_limit_store() -> InMemoryTenantLimitStore:
    return InMemoryTenantLimitStore()


@pytest.fixture
def retention_policies() -> InMemoryRetentionPolicyStore:
    return InMemoryRetentionPolicyStore()


@pytest.fixture
def retention_runs() -> InMemoryRetentionRuns:
    return InMemoryRetentionRuns()


@pytest.fixture
def locks() -> InMemoryLocks:
    return InMemoryLocks()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,
        admin_api_keys=ADMIN_KEY,
        api_keys=f"{ACME_KEY}:acme|acme-labs,{GLOBEX_KEY}:globex",
        max_body_bytes=64 * 1024,
        max_content_chars=1000,
        max_query_chars=200,
        retention_schedule_seconds=0,  # runs by hand only: a scheduled run must not race the tests
    )


@pytest.fixture
async def client(
    settings: Settings,
    repository: InMemoryMessages,
    catalog: InMemoryMessageCatalog,
    embedding_queue: InMemoryEmbeddingQueue,
    retention_candidates: InMemoryRetentionCandidates,
    text_search: InMemoryTextSearch,
    index: InMemoryVectorIndex,
    embedder: DeterministicEmbedder,
    clock: FixedClock,
    transactions: InMemoryTransactions,
    tenant_limit_store: InMemoryTenantLimitStore,
    retention_policies: InMemoryRetentionPolicyStore,
    retention_runs: InMemoryRetentionRuns,
    locks: InMemoryLocks,
) -> AsyncIterator[TestClientProtocol]:
    """The real HTTP app over in-memory adapters: for the HTTP edge, not for storage."""
    container = Container(settings=settings)
    container.embedder.override(providers.Object(embedder))
    container.database.override(providers.Object(None))
    container.messages.override(providers.Object(repository))
    container.message_catalog.override(providers.Object(catalog))
    container.user_messages.override(providers.Singleton(InMemoryUserMessages, repository.table))
    container.tenant_directory.override(providers.Singleton(InMemoryTenantDirectory, repository.table))
    container.embedding_queue.override(providers.Object(embedding_queue))
    container.retention_candidates.override(providers.Object(retention_candidates))
    container.text_search.override(providers.Object(text_search))
    container.vector_index.override(providers.Object(index))
    container.transactions.override(providers.Object(transactions))
    container.key_store.override(providers.Singleton(InMemoryApiKeyStore))
    container.tenant_limit_store.override(providers.Object(tenant_limit_store))
    container.clock.override(providers.Object(clock))
    container.retention_policies.override(providers.Object(retention_policies))
    container.retention_runs.override(providers.Object(retention_runs))
    container.locks.override(providers.Object(locks))
    container.tokenizer.override(providers.Object(real_tokenizer()))
    app = create_app(container)
    async with app.test_app() as test_app:
        yield test_app.test_client()
