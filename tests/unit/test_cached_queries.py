"""The query-vector cache in front of the embedder: hits skip the model; a cache that cannot
answer costs a miss, never a failed search."""

from adapters.embeddings.cached import CachedQueryEmbedder
from adapters.embeddings.deterministic import DeterministicEmbedder
from adapters.memory.metrics import InMemoryMetrics
from adapters.memory.query_cache import LruQueryCache
from application.ports import CacheUnavailable


class CountingEmbedder(DeterministicEmbedder):
    def __init__(self, name: str = "model-a", dimensions: int = 8) -> None:
        super().__init__(dimensions=dimensions)
        self.name = name
        self.queries: list[str] = []

    @property
    def model_name(self) -> str:
        return self.name

    async def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return await super().embed_query(text)


class BrokenCache:
    async def get(self, key: str) -> list[float] | None:
        raise CacheUnavailable("connection refused")

    async def put(self, key: str, vector: list[float]) -> None:
        raise CacheUnavailable("connection refused")


async def test_a_repeated_query_is_answered_from_the_cache():
    inner, metrics = CountingEmbedder(), InMemoryMetrics()
    embedder = CachedQueryEmbedder(inner, LruQueryCache(100), metrics)
    first = await embedder.embed_query("what do I eat?")
    assert await embedder.embed_query("what do I eat?") == first
    assert await embedder.embed_query("what do I drink?") != first
    assert inner.queries == ["what do I eat?", "what do I drink?"]
    assert metrics.counts["query_cache:hit"] == 1 and metrics.counts["query_cache:miss"] == 2


async def test_another_model_never_answers_from_the_first_models_vectors():
    cache, metrics = LruQueryCache(100), InMemoryMetrics()
    await CachedQueryEmbedder(CountingEmbedder("model-a"), cache, metrics).embed_query("hello")
    other = CountingEmbedder("model-b")
    await CachedQueryEmbedder(other, cache, metrics).embed_query("hello")
    wider = CountingEmbedder("model-a", dimensions=16)  # same name, another dimension
    assert len(await CachedQueryEmbedder(wider, cache, metrics).embed_query("hello")) == 16
    assert other.queries == ["hello"] and wider.queries == ["hello"]
    assert metrics.counts["query_cache:hit"] == 0


async def test_a_cache_that_cannot_answer_costs_a_miss_not_the_search():
    inner, metrics = CountingEmbedder(), InMemoryMetrics()
    embedder = CachedQueryEmbedder(inner, BrokenCache(), metrics)
    assert len(await embedder.embed_query("still works")) == 8
    assert metrics.counts["query_cache:error"] == 1 and inner.queries == ["still works"]


async def test_documents_are_never_cached():
    inner, metrics = CountingEmbedder(), InMemoryMetrics()
    embedder = CachedQueryEmbedder(inner, LruQueryCache(100), metrics)
    assert await embedder.embed_documents(["a", "b"]) == await inner.embed_documents(["a", "b"])
    assert not metrics.counts


async def test_a_search_asked_twice_runs_the_model_once_and_the_scrape_says_so(client, embedder, monkeypatch):
    from tests.unit.test_http_api import ACME
    from tests.unit.test_observability import scrape, value

    queries: list[str] = []
    original = embedder.embed_query

    async def counted(text: str) -> list[float]:
        queries.append(text)
        return await original(text)

    monkeypatch.setattr(embedder, "embed_query", counted)
    for _ in range(2):
        response = await client.get("/v1/memory/search?tenant_id=acme&query=green+tea&mode=semantic", headers=ACME)
        assert response.status_code == 200
    assert queries == ["green tea"]
    text = await scrape(client)
    assert value(text, "memorymesh_query_cache_lookups_total", result="hit") == 1
    assert value(text, "memorymesh_query_cache_lookups_total", result="miss") == 1


def test_the_cache_is_redis_when_redis_is_configured_and_none_at_size_0():
    from config.container import query_cache_kind
    from config.settings import Settings

    assert query_cache_kind(Settings(_env_file=None)) == "memory"
    assert query_cache_kind(Settings(_env_file=None, redis_url="redis://127.0.0.1:6379/0")) == "redis"
    assert query_cache_kind(Settings(_env_file=None, redis_url="redis://x", query_cache_size=0)) == "off"
