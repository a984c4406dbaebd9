"""Search modes over in-memory adapters: semantic, keyword, hybrid; POST with metadata filters."""

import pytest

from domain.fusion import reciprocal_rank_fusion
from tests.unit.test_http_api import ACME, message, problem_of


async def stored(client, content: str, **fields) -> str:
    response = await client.post("/v1/messages?wait=true", json=message(content=content, **fields), headers=ACME)
    assert response.status_code == 201
    return (await response.get_json())["id"]


async def search(client, query: str, mode: str, **params) -> list[dict]:
    response = await client.get(
        "/v1/memory/search", query_string={"tenant_id": "acme", "query": query, "mode": mode, **params}, headers=ACME
    )
    assert response.status_code == 200, await response.get_data()
    return (await response.get_json())["results"]


async def test_keyword_finds_shared_words_and_explains_how(client):
    tea = await stored(client, "The kettle is for green tea")
    await stored(client, "Flights to Lisbon leave at nine")
    (result,) = await search(client, "kettle", "keyword")
    assert result["message"]["id"] == tea
    assert set(result["explain"]) == {"keyword", "keyword_rank"}
    assert result["explain"]["keyword_rank"] == 1 and result["scores"]["similarity"] == 1.0


async def test_hybrid_fuses_both_rankings(client):
    await stored(client, "The kettle is for green tea")
    await stored(client, "Flights to Lisbon leave at nine")
    results = await search(client, "kettle", "hybrid", top_k=5)
    best = results[0]
    assert {"semantic", "semantic_rank", "keyword", "keyword_rank", "fused"} <= set(best["explain"])
    assert best["scores"]["similarity"] == best["explain"]["fused"]
    assert all(set(r["explain"]) >= {"fused"} for r in results)


async def test_hybrid_is_the_default_and_semantic_explains_its_rank(client):
    await stored(client, "The kettle is for green tea")
    response = await client.get("/v1/memory/search?tenant_id=acme&query=kettle", headers=ACME)
    (result,) = (await response.get_json())["results"]
    assert "fused" in result["explain"]
    (result,) = await search(client, "kettle", "semantic")
    assert set(result["explain"]) == {"semantic", "semantic_rank"}


async def test_post_search_filters_on_metadata(client):
    await stored(client, "Kettle notes", metadata={"source": "email", "tags": ["home", "kitchen"]})
    wanted = await stored(client, "Kettle manual", metadata={"source": "chat", "tags": ["kitchen"]})
    for mode in ("semantic", "keyword", "hybrid"):
        response = await client.post(
            "/v1/memory/search",
            json={"tenant_id": "acme", "query": "kettle", "mode": mode, "metadata": {"source": "chat"}},
            headers=ACME,
        )
        assert [r["message"]["id"] for r in (await response.get_json())["results"]] == [wanted], mode
    nested = await client.post(
        "/v1/memory/search",
        json={"tenant_id": "acme", "query": "kettle", "metadata": {"tags": ["kitchen"]}, "top_k": 10},
        headers=ACME,
    )
    assert len((await nested.get_json())["results"]) == 2


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"mode": "fuzzy"}, "mode"),
        ({"metadata": "source=chat"}, "metadata"),
        ({"metadata": {"k": "a\x00b"}}, "metadata.k"),
    ],
)
async def test_bad_search_bodies_are_422_naming_the_field(client, body, named):
    response = await client.post(
        "/v1/memory/search", json={"tenant_id": "acme", "query": "kettle", **body}, headers=ACME
    )
    problem = await problem_of(response, 422)
    assert any(e["field"].startswith(named) for e in problem["errors"]), problem


async def test_full_text_metacharacters_are_just_words(client):
    await stored(client, "Kettle & tea | milk")
    for query in ("kettle & !tea | :* ' \\", "&&&", "the and of"):
        await search(client, query, "keyword")
        await search(client, query, "hybrid")


def test_rank_fusion_rewards_agreement_and_lies_in_0_1():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["a", "c"]])
    assert fused["a"] == 1.0
    assert fused["c"] > fused["b"]  # second in one list and third in the other beats second in one only
    assert all(0 < v <= 1 for v in fused.values())
    assert reciprocal_rank_fusion([]) == {}
