"""Search modes over in-memory adapters: semantic, keyword, hybrid; POST with metadata filters."""

import pytest

from domain.fusion import lenders, lent, min_max, weighted_sum, with_neighbours
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
    assert {"semantic", "semantic_rank", "keyword", "keyword_rank", "fused", "neighbour"} <= set(best["explain"])
    for result in results:
        explain = result["explain"]
        assert result["scores"]["similarity"] == pytest.approx((explain["fused"] + 0.3 * explain["neighbour"]) / 1.3)
        scaled = 0.4 * explain.get("semantic_scaled", 0) + 0.6 * explain.get("keyword_scaled", 0)
        assert explain["fused"] == pytest.approx(scaled)  # the fusion can be redone from explain


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


async def test_metadata_numbers_match_by_value_in_every_mode(client):
    """As PostgreSQL's @> does in keyword and hybrid: 100 is 100.0, and true is not 1."""
    amount = await stored(client, "Kettle invoice", metadata={"amount": 100.0, "count": 7, "paid": True})
    for mode in ("semantic", "keyword", "hybrid"):
        for wanted, found in (({"amount": 100}, [amount]), ({"count": 7.0}, [amount]), ({"paid": 1}, [])):
            response = await client.post(
                "/v1/memory/search",
                json={"tenant_id": "acme", "query": "kettle", "mode": mode, "metadata": wanted},
                headers=ACME,
            )
            assert [r["message"]["id"] for r in (await response.get_json())["results"]] == found, (mode, wanted)


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


def test_score_fusion_keeps_ties_tied_rewards_agreement_and_lies_in_0_1():
    assert min_max({"a": 3.0, "b": 1.0, "c": 2.0}) == {"a": 1.0, "b": 0.0, "c": 0.5}
    assert min_max({"a": 0.2, "b": 0.2}) == {"a": 1.0, "b": 1.0}  # one shared word: a tie, whatever the order
    semantic, keyword = min_max({"a": 0.9, "b": 0.5, "c": 0.1}), min_max({"a": 2.0, "c": 2.0, "d": 1.0})
    fused = weighted_sum([(0.4, semantic), (0.6, keyword)])
    assert fused == pytest.approx({"a": 1.0, "b": 0.2, "c": 0.6, "d": 0.0})
    assert weighted_sum([]) == {}


def test_the_best_hits_lend_to_their_neighbours():
    fused = {"a": 1.0, "b": 0.5, "c": 0.1}
    assert lenders(fused, 2) == ["a", "b"]
    borrowed = lent(fused, {"a": ["x", "b"], "b": ["a", "y"]})
    assert borrowed == {"x": 1.0, "b": 1.0, "a": 0.5, "y": 0.5}  # the best lender next to each
    final = with_neighbours(fused, borrowed, 0.3)
    assert final["a"] == pytest.approx((1.0 + 0.3 * 0.5) / 1.3)
    assert final["x"] == pytest.approx(0.3 / 1.3)  # a neighbour that no search found joins the candidates
    assert final["c"] == pytest.approx(0.1 / 1.3)
    assert all(0 <= v <= 1 for v in final.values())
    assert with_neighbours(fused, {}, 0.0) == fused


async def test_hybrid_brings_the_reply_next_to_a_hit_and_filters_it_like_any_other(client):
    at = "2024-03-0{}T10:00:00Z"
    question = await stored(client, "Where did you put the kettle?", created_at=at.format(1))
    reply = await stored(client, "On the top shelf, behind the jars.", role="assistant", created_at=at.format(2))
    other = await stored(client, "Flights to Lisbon leave at nine", conversation_id="c2", created_at=at.format(1))
    results = {r["message"]["id"]: r for r in await search(client, "kettle", "hybrid", top_k=10)}
    assert results[reply]["explain"]["neighbour"] == results[question]["explain"]["fused"]
    assert results[question]["explain"]["neighbour"] == results[reply]["explain"]["fused"]  # both ways
    assert results[other]["explain"]["neighbour"] == 0  # alone in its conversation

    users_only = await search(client, "kettle", "hybrid", top_k=10, role="user")
    assert reply not in {r["message"]["id"] for r in users_only}
    for mode in ("semantic", "keyword"):  # lending is hybrid's: the other modes say what they found
        assert all("neighbour" not in r["explain"] for r in await search(client, "kettle", mode, top_k=10))


async def test_keyword_search_reads_the_date_too(client):
    march = await stored(client, "We moved house", created_at="2024-03-08T23:30:00-02:00")  # 9 March in UTC
    await stored(client, "We painted the fence", created_at="2024-05-20T12:00:00Z")
    (result,) = await search(client, "what happened in March?", "keyword")
    assert result["message"]["id"] == march
    (result,) = await search(client, "on 9 of which month", "keyword")
    assert result["message"]["id"] == march
    assert len(await search(client, "anything in 2024", "keyword")) == 2
