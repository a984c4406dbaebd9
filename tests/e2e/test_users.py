"""A user's messages over HTTP against the real server process: list, search by user, export,
erase; with pgvector and with Qdrant (local mode)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-admin-key-000000000003"
ACME_KEY = "e2e-acme-key-0000000000003"


@pytest.fixture(scope="module", params=["pgvector", "qdrant"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"users-{request.param}") / "data"
    process = ServerProcess(
        data_dir,
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
        MEMORY_VECTOR_STORE=request.param,
        MEMORY_QDRANT_PATH=str(data_dir.parent / "qdrant"),
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output


def store(client: httpx.Client, content: str, tenant: str = "acme", **fields) -> dict:
    response = client.post(
        "/v1/messages",
        params={"wait": "true"},
        json={"tenant_id": tenant, "conversation_id": "trip", "role": "user", "content": content, **fields},
    )
    assert response.status_code == 201, response.text
    return response.json()


def searched(client: httpx.Client, user_id: str) -> set[str]:
    found = client.get(
        "/v1/memory/search", params={"tenant_id": "acme", "query": "peanut allergy", "top_k": 50, "user_id": user_id}
    )
    assert found.status_code == 200, found.text
    return {r["message"]["id"] for r in found.json()["results"]}


def test_a_users_messages_are_listed_searched_exported_and_erased(server: ServerProcess) -> None:
    with server.client(ACME_KEY) as client:
        alice = [
            store(
                client,
                f"Alice is allergic to peanuts ({i})",
                user_id="alice",
                conversation_id=f"c{i % 2}",
                created_at=f"2026-05-0{i + 1}T09:00:00Z",
            )
            for i in range(5)
        ]
        bob = store(client, "Bob is allergic to peanuts too", user_id="bob")
        plain = store(client, "Nobody's peanut allergy")
        assert plain["user_id"] is None

        pages, cursor = [], None
        while True:
            params = {"tenant_id": "acme", "limit": 2} | ({"cursor": cursor} if cursor else {})
            response = client.get("/v1/users/alice/messages", params=params)
            assert response.status_code == 200, response.text
            pages.append([m["id"] for m in response.json()["messages"]])
            if (cursor := response.json()["next_cursor"]) is None:
                break
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [i for p in pages for i in p] == [m["id"] for m in alice]

        assert searched(client, "alice") == {m["id"] for m in alice}
        assert searched(client, "bob") == {bob["id"]}

        with client.stream("GET", "/v1/users/alice/export", params={"tenant_id": "acme"}) as export:
            assert export.status_code == 200
            assert export.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in export.iter_lines() if line]
        assert lines == [client.get(f"/v1/messages/{m['id']}", params={"tenant_id": "acme"}).json() for m in alice]

        erased = client.delete("/v1/users/alice", params={"tenant_id": "acme"})
        assert erased.status_code == 200, erased.text
        assert erased.json()["deleted"] == {"messages": 5, "vectors": 5, "conversations": 2}
        assert searched(client, "alice") == set()
        everything = client.get(
            "/v1/memory/search", params={"tenant_id": "acme", "query": "peanut allergy", "top_k": 50}
        )
        assert {r["message"]["id"] for r in everything.json()["results"]} == {bob["id"], plain["id"]}
        assert client.get("/v1/users/alice/messages", params={"tenant_id": "acme"}).json()["messages"] == []
        assert client.get("/v1/users/alice/export", params={"tenant_id": "acme"}).content == b""
        again = client.delete("/v1/users/alice", params={"tenant_id": "acme"})
        assert again.json()["deleted"] == {"messages": 0, "vectors": 0, "conversations": 0}


def test_bad_user_ids_are_422_and_other_tenants_403(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        theirs = store(admin, "Globex's Alice", tenant="globex", user_id="alice")
    with server.client(ACME_KEY) as client:
        for method, path in (
            ("GET", "/v1/users/{}/messages"),
            ("DELETE", "/v1/users/{}"),
            ("GET", "/v1/users/{}/export"),
        ):
            bad = client.request(method, path.format("-alice"), params={"tenant_id": "acme"})
            assert bad.status_code == 422, bad.text
            assert [e["field"] for e in bad.json()["errors"]] == ["user_id"]
            denied = client.request(method, path.format("alice"), params={"tenant_id": "globex"})
            assert denied.status_code == 403, denied.text
    with server.client(ADMIN_KEY) as admin:
        assert admin.get(f"/v1/messages/{theirs['id']}", params={"tenant_id": "globex"}).status_code == 200
