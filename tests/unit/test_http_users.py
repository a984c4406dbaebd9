"""The user routes over in-memory adapters: list, erase, export; bad input, other tenants."""

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.unit.conftest import ACME_KEY, GLOBEX_KEY

ACME = {"x-api-key": ACME_KEY}
GLOBEX = {"x-api-key": GLOBEX_KEY}


def message(**fields):
    return {"tenant_id": "acme", "conversation_id": "c1", "role": "user", "content": "I like green tea", **fields}


async def store(client, headers=ACME, **fields) -> dict:
    response = await client.post("/v1/messages?wait=true", json=message(**fields), headers=headers)
    assert response.status_code == 201, await response.get_data()
    return await response.get_json()


async def test_a_users_messages_are_listed_across_conversations_oldest_first_in_pages(client):
    ids = [
        (await store(client, user_id="alice", conversation_id=f"c{i % 2}", created_at=f"2026-05-0{i + 1}T09:00:00Z"))[
            "id"
        ]
        for i in range(5)
    ]
    await store(client, user_id="bob")
    await store(client)
    await store(client, GLOBEX, tenant_id="globex", user_id="alice")

    seen, cursor = [], None
    while True:
        query = "tenant_id=acme&limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(f"/v1/users/alice/messages?{query}", headers=ACME)
        assert response.status_code == 200, await response.get_data()
        body = await response.get_json()
        seen += [m["id"] for m in body["messages"]]
        assert all(m["user_id"] == "alice" for m in body["messages"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_an_unknown_user_is_an_empty_list_a_zero_receipt_and_an_empty_export(client):
    listed = await client.get("/v1/users/nobody/messages?tenant_id=acme", headers=ACME)
    assert await listed.get_json() == {"messages": [], "next_cursor": None}
    erased = await client.delete("/v1/users/nobody?tenant_id=acme", headers=ACME)
    assert erased.status_code == 200
    assert (await erased.get_json())["deleted"] == {"messages": 0, "vectors": 0, "conversations": 0}
    exported = await client.get("/v1/users/nobody/export?tenant_id=acme", headers=ACME)
    assert exported.status_code == 200
    assert exported.mimetype == "application/x-ndjson"
    assert await exported.get_data() == b""


async def test_erasing_a_user_deletes_their_messages_and_vectors_only_and_once(client, table, index):
    alice = [await store(client, user_id="alice", conversation_id=c) for c in ("c1", "c1", "c2")]
    bob = await store(client, user_id="bob")
    theirs = await store(client, GLOBEX, tenant_id="globex", user_id="alice")

    erased = await client.delete("/v1/users/alice?tenant_id=acme", headers=ACME)
    assert erased.status_code == 200
    assert await erased.get_json() == {
        "tenant_id": "acme",
        "user_id": "alice",
        "deleted": {"messages": 3, "vectors": 3, "conversations": 2},
    }
    assert set(str(i) for i in table.rows) == {bob["id"], theirs["id"]}
    assert not {m["id"] for m in alice} & {str(i) for i in index.records}
    found = await client.get("/v1/memory/search?tenant_id=acme&query=green+tea&user_id=alice", headers=ACME)
    assert (await found.get_json())["results"] == []

    again = await client.delete("/v1/users/alice?tenant_id=acme", headers=ACME)
    assert (await again.get_json())["deleted"] == {"messages": 0, "vectors": 0, "conversations": 0}


async def test_an_export_is_every_message_of_the_user_as_ndjson_archived_included(client, table):
    first = await store(client, user_id="alice", created_at="2026-05-01T09:00:00Z", metadata={"k": [1]})
    second = await store(client, user_id="alice", conversation_id="c2", created_at="2026-05-02T09:00:00Z")
    await store(client, user_id="bob")
    await store(client, GLOBEX, tenant_id="globex", user_id="alice")
    first_id = uuid.UUID(first["id"])  # archived, as retention would
    table.rows[first_id] = replace(table.rows[first_id], archived_at=datetime(2026, 5, 3, tzinfo=UTC))

    response = await client.get("/v1/users/alice/export?tenant_id=acme", headers=ACME)
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = (await response.get_data()).decode().splitlines()
    exported = [json.loads(line) for line in lines]
    assert [m["id"] for m in exported] == [first["id"], second["id"]]
    assert exported[1] == second
    assert exported[0]["archived_at"] is not None
    assert exported[0]["metadata"] == {"k": [1]}
    assert set(exported[0]) == set(first)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/users/{user}/messages?tenant_id=acme"),
        ("delete", "/v1/users/{user}?tenant_id=acme"),
        ("get", "/v1/users/{user}/export?tenant_id=acme"),
    ],
)
@pytest.mark.parametrize("user", ["-alice", "a%20b", "%C3%A4", "x" * 129])
async def test_a_user_id_outside_the_id_rules_is_422_naming_it(client, method, path, user):
    response = await getattr(client, method)(path.format(user=user), headers=ACME)
    assert response.status_code == 422, await response.get_data()
    assert [e["field"] for e in (await response.get_json())["errors"]] == ["user_id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/users/alice/messages?tenant_id=globex"),
        ("delete", "/v1/users/alice?tenant_id=globex"),
        ("get", "/v1/users/alice/export?tenant_id=globex"),
    ],
)
async def test_another_tenants_key_is_403_and_erases_nothing(client, table, method, path):
    await store(client, GLOBEX, tenant_id="globex", user_id="alice")
    response = await getattr(client, method)(path, headers=ACME)
    assert response.status_code == 403
    assert len(table.rows) == 1


@pytest.mark.parametrize(
    "query", ["", "tenant_id=a%20b", "tenant_id=acme&limit=0", "tenant_id=acme&limit=201", "tenant_id=acme&cursor=zz"]
)
async def test_bad_listing_arguments_are_4xx(client, query):
    response = await client.get(f"/v1/users/alice/messages?{query}", headers=ACME)
    assert 400 <= response.status_code < 500


async def test_openapi_documents_the_user_routes_and_the_ndjson_export(client):
    document = await (await client.get("/openapi.json")).get_json()
    assert {"/v1/users/{user_id}/messages", "/v1/users/{user_id}", "/v1/users/{user_id}/export"} <= set(
        document["paths"]
    )
    export = document["paths"]["/v1/users/{user_id}/export"]["get"]["responses"]
    assert list(export["200"]["content"]) == ["application/x-ndjson"]
    assert "204" not in export
