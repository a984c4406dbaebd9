"""Use cases over in-memory fakes: store (inline), get and search, with tenants kept apart."""

import uuid
from datetime import timedelta

import pytest

from application.errors import NotFound
from application.get_message import GetMessage
from application.ports.embedder import EmbedderUnavailable
from application.ports.storage import StorageUnavailable
from application.search_memory import SearchMemory, SearchQuery, SearchSettings
from application.store_messages import StoreMessageCommand
from domain.access import AccessDenied, Principal
from domain.errors import ValidationFailed
from domain.message import ContentLimits, EmbeddingStatus
from domain.ranking import RankingWeights
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.transactions import InMemoryTransactions
from tests.fakes.vector_index import InMemoryVectorIndex
from tests.support import inline_store

ACME = Principal(key_id="k1", tenants=frozenset({"acme"}))
ADMIN = Principal(key_id="k0", tenants=frozenset(), admin=True)


@pytest.fixture
def store(repository, index, embedder, transactions, clock):
    return inline_store(repository, index, embedder, transactions, clock, ContentLimits(max_content_chars=100))


@pytest.fixture
def search(repository, text_search, index, embedder, clock) -> SearchMemory:
    return SearchMemory(
        repository,
        text_search,
        index,
        embedder,
        clock,
        SearchSettings(weights=RankingWeights(), candidates=50),
        InMemoryMetrics(),
    )


def command(content: str, tenant: str = "acme", **fields) -> StoreMessageCommand:
    return StoreMessageCommand(
        tenant_id=tenant,
        conversation_id=fields.pop("conversation_id", "c1"),
        role=fields.pop("role", "user"),
        content=content,
        **fields,
    )


async def test_a_stored_message_is_embedded_scored_and_readable(store, repository, table, index, clock):
    stored = await store(ACME, command("Remember: my flight is on 12 May", metadata={"source": "chat"}))

    assert stored.embedding_status is EmbeddingStatus.EMBEDDED
    assert stored.created_at == clock.now()
    assert stored.importance == pytest.approx(0.75)  # user 0.5 + memory cue 0.2 + digits 0.05
    assert table.rows[stored.id].embedding_status is EmbeddingStatus.EMBEDDED
    assert index.records[stored.id].tenant_id == "acme"
    assert await GetMessage(repository)(ACME, "acme", stored.id) == table.rows[stored.id]


async def test_explicit_importance_and_created_at_are_kept(store, clock):
    when = clock.now() - timedelta(days=3)
    stored = await store(ACME, command("ok", importance=0.95, created_at=when))
    assert stored.importance == 0.95
    assert stored.explicit_importance == 0.95
    assert stored.created_at == when


async def test_a_key_cannot_write_or_read_another_tenant(store, repository, table):
    with pytest.raises(AccessDenied):
        await store(ACME, command("hello", tenant="globex"))
    assert table.rows == {}

    theirs = await store(ADMIN, command("globex secret", tenant="globex"))
    with pytest.raises(AccessDenied):
        await GetMessage(repository)(ACME, "globex", theirs.id)
    # Asking for another tenant's id under your own tenant finds nothing.
    with pytest.raises(NotFound):
        await GetMessage(repository)(ACME, "acme", theirs.id)


async def test_invalid_message_is_refused_before_anything_is_stored(store, table, index):
    with pytest.raises(ValidationFailed) as refused:
        await store(ACME, command("x" * 101))
    assert [p.field for p in refused.value.problems] == ["content"]
    assert table.rows == {} and index.records == {}


async def test_search_finds_the_relevant_message_best_first(store, search):
    await store(ACME, command("the quarterly report is due on friday"))
    target = await store(ACME, command("my cat is called Pixel and she likes tuna"))
    await store(ACME, command("we should book the train tickets"))

    results = await search(ACME, SearchQuery(tenant_id="acme", query="what does my cat like", top_k=2))

    assert results[0].message.id == target.id
    assert len(results) == 2
    best = results[0].scores
    assert best.final == pytest.approx(0.7 * best.similarity + 0.2 * best.importance + 0.1 * best.recency)
    assert results[0].scores.final >= results[1].scores.final


async def test_search_never_returns_another_tenants_messages(store, search):
    await store(ADMIN, command("cat food preferences of globex", tenant="globex"))
    ours = await store(ACME, command("acme notes about dogs"))

    results = await search(ACME, SearchQuery(tenant_id="acme", query="cat food preferences of globex", top_k=10))

    assert [r.message.id for r in results] == [ours.id]


async def test_search_filters_by_conversation_role_time_and_importance(store, search, clock):
    old = clock.now() - timedelta(days=10)
    a = await store(ACME, command("tea is nice", conversation_id="c1", role="user", importance=0.9, created_at=old))
    b = await store(ACME, command("tea is nice", conversation_id="c2", role="assistant", importance=0.2))

    async def ids(**filters):
        found = await search(ACME, SearchQuery(tenant_id="acme", query="tea", top_k=10, **filters))
        return {r.message.id for r in found}

    assert await ids() == {a.id, b.id}
    assert await ids(conversation_id="c2") == {b.id}
    assert await ids(role="user") == {a.id}
    assert await ids(min_importance=0.5) == {a.id}
    assert await ids(since=clock.now() - timedelta(days=1)) == {b.id}
    assert await ids(until=clock.now() - timedelta(days=1)) == {a.id}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"query": "  "}, "query"),
        ({"query": "q" * 4001}, "query"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 101}, "top_k"),
        ({"role": "robot"}, "role"),
        ({"conversation_id": "bad id"}, "conversation_id"),
        ({"min_importance": 1.5}, "min_importance"),
    ],
)
async def test_bad_search_queries_name_the_field(search, fields, named):
    query = SearchQuery(**{"tenant_id": "acme", "query": "tea", **fields})
    with pytest.raises(ValidationFailed) as refused:
        await search(ACME, query)
    assert named in [p.field for p in refused.value.problems]


async def test_search_of_an_empty_tenant_is_empty(search):
    assert await search(ACME, SearchQuery(tenant_id="acme", query="anything")) == []


async def test_get_of_unknown_id_is_not_found(repository):
    with pytest.raises(NotFound):
        await GetMessage(repository)(ACME, "acme", uuid.uuid4())


async def test_importance_breaks_a_tie_in_similarity(store, search):
    low = await store(ACME, command("coffee order", importance=0.1))
    high = await store(ACME, command("coffee order", importance=0.9))
    results = await search(ACME, SearchQuery(tenant_id="acme", query="coffee order", top_k=2))
    assert [r.message.id for r in results] == [high.id, low.id]


class BrokenIndex(InMemoryVectorIndex):
    async def upsert(self, records) -> None:
        await super().upsert(records)
        raise StorageUnavailable("the index went away")


async def test_a_store_that_fails_midway_leaves_nothing_behind(repository, table, embedder, clock):
    index = BrokenIndex()
    store = inline_store(repository, index, embedder, InMemoryTransactions(table, index), clock)
    with pytest.raises(StorageUnavailable):
        await store(ACME, command("hello"))
    assert table.rows == {} and index.records == {}


async def test_an_embedder_failure_stores_nothing(repository, table, index, transactions, clock):
    class DownEmbedder(DeterministicEmbedder):
        async def embed_documents(self, texts):
            raise EmbedderUnavailable("model crashed")

    store = inline_store(repository, index, DownEmbedder(64), transactions, clock)
    with pytest.raises(EmbedderUnavailable):
        await store(ACME, command("hello"))
    assert table.rows == {}
