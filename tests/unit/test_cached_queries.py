"""The query-vector cache in search: a repeated query of a tenant skips the model; one
tenant's cache never serves another; a cache that cannot answer costs a miss, never the
search."""

import pytest

from adapters.inprocess.query_cache import InProcessQueryCache
from application.ports.query_cache import CacheUnavailable
from tests.fakes.metrics import InMemoryMetrics
from tests.unit.conftest import GLOBEX_KEY
from tests.unit.test_http_api import ACME
from tests.unit.test_observability import scrape, value


class BrokenCache:
    async def get(self, key: str) -> list[float] | None:
        raise CacheUnavailable("connection refused")

    async def put(self, key: str, vector: list[float]) -> None:
        raise CacheUnavailable("connection refused")


@pytest.fixture
def model_runs(embedder, monkeypatch) -> list[str]:
    """The queries the model was asked to embed."""
    runs: list[str] = []
    original = embedder.embed_query

    async def counted(text: str) -> list[float]:
        runs.append(text)
        return await original(text)

    monkeypatch.setattr(embedder, "embed_query", counted)
    return runs


async def search(client, tenant: str, headers: dict, query: str = "green tea") -> None:
    response = await client.get(
        "/v1/memory/search", query_string={"tenant_id": tenant, "query": query, "mode": "semantic"}, headers=headers
    )
    assert response.status_code == 200, await response.get_data()


async def test_a_repeated_query_of_a_tenant_runs_the_model_once_and_the_scrape_says_so(client, model_runs):
    await search(client, "acme", ACME)
    await search(client, "acme", ACME)
    await search(client, "acme", ACME, query="black tea")
    assert model_runs == ["green tea", "black tea"]
    text = await scrape(client)
    assert value(text, "memorymesh_query_cache_lookups_total", result="hit") == 1
    assert value(text, "memorymesh_query_cache_lookups_total", result="miss") == 2


async def test_another_tenant_never_gets_a_tenants_cached_vector(client, model_runs):
    await search(client, "acme", ACME)
    await search(client, "globex", {"x-api-key": GLOBEX_KEY})  # same words: its own miss, not a telling fast hit
    assert model_runs == ["green tea", "green tea"]


async def test_another_model_or_dimension_never_answers_from_old_vectors(
    embedder, repository, text_search, index, clock
):
    from application.search_memory import SearchMemory, SearchSettings
    from domain.ranking import RankingWeights

    cache, metrics = InProcessQueryCache(100), InMemoryMetrics()

    def search_with(model: str, dimensions: int) -> SearchMemory:
        class Other(type(embedder)):  # type: ignore[misc]
            @property
            def model_name(self) -> str:
                return model

        other = Other(dimensions=dimensions)
        return SearchMemory(
            repository, text_search, index, other, clock, SearchSettings(RankingWeights()), metrics, cache
        )

    assert len(await search_with("model-a", 8)._query_vector("acme", "hello")) == 8
    assert len(await search_with("model-b", 8)._query_vector("acme", "hello")) == 8
    assert len(await search_with("model-a", 16)._query_vector("acme", "hello")) == 16
    assert metrics.counts["query_cache:hit"] == 0 and metrics.counts["query_cache:miss"] == 3
    assert len(await search_with("model-a", 16)._query_vector("acme", "hello")) == 16
    assert metrics.counts["query_cache:hit"] == 1


async def test_a_cache_that_cannot_answer_costs_a_miss_not_the_search(
    embedder, repository, text_search, index, clock, caplog
):
    from application.search_memory import SearchMemory, SearchSettings
    from domain.ranking import RankingWeights

    metrics = InMemoryMetrics()
    search_memory = SearchMemory(
        repository, text_search, index, embedder, clock, SearchSettings(RankingWeights()), metrics, BrokenCache()
    )
    for _ in range(3):
        assert len(await search_memory._query_vector("acme", "still works")) == embedder.dimensions
    assert metrics.counts["query_cache:error"] == 3  # each search's get (no put is tried after it)
    assert len([r for r in caplog.records if "cache unavailable" in r.getMessage()]) == 1  # once a minute


def test_the_cache_is_redis_when_redis_is_configured_and_none_at_size_0():
    from config.resources import query_cache_kind
    from config.settings import Settings

    assert query_cache_kind(Settings(_env_file=None)) == "inprocess"
    assert query_cache_kind(Settings(_env_file=None, redis_url="redis://127.0.0.1:6379/0")) == "redis"
    assert query_cache_kind(Settings(_env_file=None, redis_url="redis://x", query_cache_size=0)) == "off"
