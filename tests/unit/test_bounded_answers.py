"""A message's metadata is bounded, and so is every answer: a page stops short of
MEMORY_MAX_RESPONSE_BYTES and goes on with next_cursor; a search answers its best that fit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from config.settings import Settings
from domain.errors import ValidationFailed
from domain.message import ContentLimits, NewMessage, json_size
from tests.unit.conftest import ACME_KEY

ACME = {"x-api-key": ACME_KEY}
LIMIT = 1_000


def message(**fields):
    return {"tenant_id": "acme", "conversation_id": "c1", "role": "user", "content": "green tea notes", **fields}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with small bounds."""
    return settings.model_copy(
        update={"max_content_chars": 20_000, "max_metadata_bytes": LIMIT, "max_response_bytes": 65_536}
    )


# Text PostgreSQL can store (NUL and lone surrogates are refused before any size is counted).
TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(TEXT),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(TEXT, max_size=10), children, max_size=6),
    max_leaves=60,
)


@examples(max_examples=150, deadline=None)
@given(metadata=st.dictionaries(st.text(TEXT, max_size=10), JSON, max_size=8))
def test_metadata_is_accepted_exactly_up_to_the_limit_in_json_bytes(metadata):
    limits = ContentLimits(max_metadata_bytes=300)
    fields = {"tenant_id": "t", "conversation_id": "c", "role": "user", "content": "x"}
    if "\x00" in json.dumps(metadata) or any(
        0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(metadata, ensure_ascii=False)
    ):
        return  # refused for other reasons (text_problem)
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
    assert json_size(metadata) == size
    if size <= 300:
        assert NewMessage.parse(**fields, metadata=metadata, limits=limits).metadata == metadata
    else:
        with pytest.raises(ValidationFailed) as refused:
            NewMessage.parse(**fields, metadata=metadata, limits=limits)
        assert [p.field for p in refused.value.problems] == ["metadata"]


async def test_metadata_past_the_limit_is_422_naming_it_on_every_write(client):
    big = {"blob": "x" * LIMIT}
    for response, field in [
        (await client.post("/v1/messages", json=message(metadata=big), headers=ACME), "metadata"),
        (
            await client.post(
                "/v1/messages/batch", json={"messages": [message(), message(metadata=big)]}, headers=ACME
            ),
            "messages[1].metadata",
        ),
    ]:
        assert response.status_code == 422
        body = await response.get_json()
        assert [e["field"] for e in body["errors"]] == [field]
        assert f"the limit is {LIMIT}" in body["errors"][0]["message"]
    stored = await (
        await client.post("/v1/messages", json=message(metadata={"ok": "x" * 900}), headers=ACME)
    ).get_json()
    patched = await client.patch(f"/v1/messages/{stored['id']}?tenant_id=acme", json={"metadata": big}, headers=ACME)
    assert patched.status_code == 422
    assert [e["field"] for e in (await patched.get_json())["errors"]] == ["metadata"]


async def test_a_page_stops_short_of_the_response_budget_and_goes_on(client):
    """Each message about 9 KB against a 64 KiB budget: 200 asked, 6 or 7 a page, none lost."""
    batch = [message(content=f"{i} " + "tea " * 2_200, client_message_id=f"m{i}") for i in range(20)]
    assert (await client.post("/v1/messages/batch", json={"messages": batch}, headers=ACME)).status_code == 202
    seen, cursor, pages = [], None, 0
    while True:
        query = "tenant_id=acme&limit=200" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(f"/v1/conversations/c1/messages?{query}", headers=ACME)
        body = await response.get_json()
        assert len(await response.get_data()) <= 65_536
        seen += [m["client_message_id"] for m in body["messages"]]
        pages += 1
        if not (cursor := body["next_cursor"]):
            break
    assert sorted(seen) == sorted(f"m{i}" for i in range(20)) and len(seen) == 20
    assert pages >= 3


async def test_a_search_answers_the_best_results_that_fit(client):
    batch = [message(content=f"{i} " + "tea " * 2_200) for i in range(20)]
    await client.post("/v1/messages/batch?wait=true", json={"messages": batch}, headers=ACME)
    response = await client.get("/v1/memory/search?tenant_id=acme&query=tea&top_k=20&mode=keyword", headers=ACME)
    results = (await response.get_json())["results"]
    assert 1 <= len(results) < 20
    assert len(await response.get_data()) <= 65_536


async def test_one_message_larger_than_the_budget_is_still_answered(client):
    await client.post(
        "/v1/messages?wait=true", json=message(content="tea " * 4_900, conversation_id="big"), headers=ACME
    )
    page = await (await client.get("/v1/conversations/big/messages?tenant_id=acme", headers=ACME)).get_json()
    assert len(page["messages"]) == 1 and page["next_cursor"] is None
