"""POST /v1/context over in-memory adapters: its shape, its errors, its tenant boundary."""

import pytest

from tests.unit.conftest import GLOBEX_KEY, real_tokenizer
from tests.unit.test_http_api import ACME, message, problem_of

GLOBEX = {"x-api-key": GLOBEX_KEY}


async def say(client, content: str, headers=ACME, **fields) -> str:
    response = await client.post("/v1/messages?wait=true", json=message(content=content, **fields), headers=headers)
    assert response.status_code == 201, await response.get_data()
    return (await response.get_json())["id"]


def ask(**fields) -> dict:
    return {"tenant_id": "acme", "conversation_id": "c1", "max_tokens": 500, **fields}


async def test_the_context_holds_recent_turns_memories_a_dated_prompt_and_its_tokens(client):
    at = "2026-05-{:02d}T09:30:00Z".format  # apart: turns said at one instant are ordered by id
    await say(client, "My sister Ana lives in Porto", conversation_id="old", created_at=at(1))
    await say(client, "my sister ana lives in porto!", conversation_id="older", created_at=at(2))
    await say(client, "Hello again", role="assistant", created_at=at(3))
    newest = await say(client, "Where does my sister Ana live?", created_at=at(4))
    response = await client.post("/v1/context", json=ask(scope="tenant"), headers=ACME)
    assert response.status_code == 200, await response.get_data()
    body = await response.get_json()
    assert body["recent"][-1]["message"]["id"] == newest and not body["recent"][-1]["cut"]
    (memory,) = body["memories"]  # the two Porto lines are one memory
    assert memory["message"]["content"].lower().startswith("my sister ana lives in porto")
    assert {"reason", "scores", "explain", "tokens", "cut"} <= set(memory) and body["repeats_dropped"] == 1
    assert body["tokens"]["total"] == real_tokenizer().count(body["prompt"]) <= body["tokens"]["budget"] == 500
    assert "[2026-05-04 09:30, user] Where does" in body["prompt"] and "conversation old" in body["prompt"]


async def test_an_unknown_conversation_is_an_empty_context(client):
    response = await client.post("/v1/context", json=ask(conversation_id="never-spoken"), headers=ACME)
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["recent"], body["memories"], body["prompt"], body["tokens"]["total"]) == ([], [], "", 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"scope": "user"}, "user_id"),  # whose memories: not said
        ({"user_id": "no spaces allowed"}, "user_id"),
        ({"scope": "galaxy"}, "scope"),
        ({"recent": 100_000}, "recent"),
        ({"conversation_id": "no spaces allowed"}, "conversation_id"),
        ({"mode": "telepathy"}, "mode"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client, fields, field):
    await say(client, "hello")
    body = await problem_of(await client.post("/v1/context", json=ask(**fields), headers=ACME), 422)
    assert field in {e["field"] for e in body["errors"]}


async def test_without_max_tokens_is_a_4xx_naming_it(client):
    body = {"tenant_id": "acme", "conversation_id": "c1"}
    response = await client.post("/v1/context", json=body, headers=ACME)
    assert 400 <= response.status_code < 500 and "max_tokens" in await response.get_data(as_text=True)


async def test_a_key_for_another_tenant_gets_403_and_no_byte_of_it(client):
    await say(client, "globex secret: the launch is on Friday", headers=GLOBEX, tenant_id="globex")
    body = await problem_of(await client.post("/v1/context", json=ask(tenant_id="globex"), headers=ACME), 403)
    assert "launch" not in str(body)
    response = await client.post("/v1/context", json=ask(scope="tenant", query="launch Friday secret"), headers=ACME)
    assert response.status_code == 200 and "launch" not in await response.get_data(as_text=True)


async def test_a_query_of_stop_words_is_answered(client):
    await say(client, "the cat sat on the mat")
    response = await client.post("/v1/context", json=ask(query="the and of a"), headers=ACME)
    assert response.status_code == 200
