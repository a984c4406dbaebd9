"""user_id on messages over HTTP (in-memory adapters): stored, returned, patched, searched by."""

import pytest

from tests.unit.conftest import ACME_KEY

ACME = {"x-api-key": ACME_KEY}


def message(**fields):
    return {"tenant_id": "acme", "conversation_id": "c1", "role": "user", "content": "I like green tea", **fields}


async def stored(client, **fields) -> dict:
    response = await client.post("/v1/messages?wait=true", json=message(**fields), headers=ACME)
    assert response.status_code == 201, await response.get_data()
    return await response.get_json()


async def test_user_id_is_stored_and_returned_and_null_without_one(client):
    alice = await stored(client, user_id="alice@example.com", created_at="2026-05-01T09:00:00Z")
    plain = await stored(client, created_at="2026-05-02T09:00:00Z")
    assert alice["user_id"] == "alice@example.com"
    assert plain["user_id"] is None
    fetched = await client.get(f"/v1/messages/{alice['id']}?tenant_id=acme", headers=ACME)
    assert (await fetched.get_json())["user_id"] == "alice@example.com"
    listed = await client.get("/v1/conversations/c1/messages?tenant_id=acme", headers=ACME)
    assert [m["user_id"] for m in (await listed.get_json())["messages"]] == ["alice@example.com", None]


async def test_a_batch_sets_user_id_per_message(client):
    batch = {"messages": [message(user_id="alice"), message(), message(user_id="bob")]}
    response = await client.post("/v1/messages/batch", json=batch, headers=ACME)
    assert [m["user_id"] for m in (await response.get_json())["messages"]] == ["alice", None, "bob"]


@pytest.mark.parametrize("user_id", ["", "-alice", "a b", "ä", "x" * 129, 7])
async def test_a_user_id_outside_the_id_rules_is_422_naming_it(client, user_id):
    response = await client.post("/v1/messages", json=message(user_id=user_id), headers=ACME)
    assert response.status_code == 422
    assert any(e["field"].endswith("user_id") for e in (await response.get_json())["errors"])
    batch = await client.post("/v1/messages/batch", json={"messages": [message(user_id=user_id)]}, headers=ACME)
    assert batch.status_code == 422


async def test_patch_sets_changes_and_clears_user_id_and_search_follows(client):
    message_id = (await stored(client))["id"]

    async def patch(body: dict) -> dict:
        response = await client.patch(f"/v1/messages/{message_id}?tenant_id=acme", json=body, headers=ACME)
        assert response.status_code == 200, await response.get_data()
        return await response.get_json()

    async def found(user_id: str) -> list[str]:
        for path, kwargs in (
            (f"/v1/memory/search?tenant_id=acme&query=green+tea&user_id={user_id}", {}),
            ("/v1/memory/search", {"json": {"tenant_id": "acme", "query": "green tea", "user_id": user_id}}),
        ):
            method = client.post if "json" in kwargs else client.get
            response = await method(path, headers=ACME, **kwargs)
            assert response.status_code == 200, await response.get_data()
            ids = [r["message"]["id"] for r in (await response.get_json())["results"]]
        return ids

    assert await found("alice") == []
    assert (await patch({"user_id": "alice"}))["user_id"] == "alice"
    assert await found("alice") == [message_id]
    assert (await patch({"pinned": True}))["user_id"] == "alice"  # absent: left as it is
    assert (await patch({"user_id": "bob"}))["user_id"] == "bob"
    assert await found("alice") == []
    assert await found("bob") == [message_id]
    assert (await patch({"user_id": None}))["user_id"] is None
    assert await found("bob") == []
    for bad_id in ("a b", "", 7):
        bad = await client.patch(f"/v1/messages/{message_id}?tenant_id=acme", json={"user_id": bad_id}, headers=ACME)
        assert bad.status_code == 422, bad_id
        assert [e["field"] for e in (await bad.get_json())["errors"]] == ["user_id"]


async def test_a_bad_user_filter_is_422_naming_it(client):
    response = await client.get("/v1/memory/search?tenant_id=acme&query=tea&user_id=a+b", headers=ACME)
    assert response.status_code == 422
    assert [e["field"] for e in (await response.get_json())["errors"]] == ["user_id"]


async def test_a_retry_with_another_user_id_is_a_conflict(client):
    await stored(client, client_message_id="m1", user_id="alice")
    again = await client.post("/v1/messages", json=message(client_message_id="m1", user_id="bob"), headers=ACME)
    assert again.status_code == 409
    assert "user_id" in (await again.get_json())["detail"]
