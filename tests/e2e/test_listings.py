"""The console's listings over HTTP against the real server on the real PostgreSQL: tenants,
a tenant's conversations, a conversation newest first; hostile paging arguments get a 4xx
naming the field, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-listings-admin-key-0001"
ACME_KEY = "e2e-listings-acme-key-00001"
ADMIN = {"x-api-key": ADMIN_KEY}
ACME = {"x-api-key": ACME_KEY}
TENANTS = ["acme", "a.b@c:d_e-f", "globex", "Z9"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("listings") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output
    assert "Traceback" not in process.output, process.output


def stored(client: httpx.Client, tenant: str, conversation: str, minute: int) -> None:
    answer = client.post(
        "/v1/messages",
        json={
            "tenant_id": tenant,
            "conversation_id": conversation,
            "role": "user",
            "content": f"{tenant} {conversation} turn {minute}",
            "created_at": f"2026-05-01T09:0{minute}:00Z",
        },
    )
    assert answer.status_code in (201, 202), answer.text  # 202: stored, embedded in the background


@pytest.fixture(scope="module", autouse=True)
def seeded(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        for tenant in TENANTS:
            for conversation in ("c1", "c2", "c.3"):
                for minute in range(2):
                    stored(admin, tenant, conversation, minute)


def walk(client: httpx.Client, path: str, key: str, limit: int) -> list[str]:
    seen: list[str] = []
    after: str | None = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": limit} | ({"after": after} if after else {})
        answer = client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [entry[key] for entry in body[path.rsplit("/", 1)[-1]]]
        if body["next_after"] is None:
            return seen
        after = body["next_after"]
    pytest.fail("the walk did not end")


def test_an_admin_lists_every_tenant_across_pages(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        everyone = walk(admin, "/v1/tenants", "tenant_id", 100)
        assert sorted(everyone) == sorted(TENANTS)
        assert walk(admin, "/v1/tenants", "tenant_id", 1) == everyone


def test_a_tenant_key_sees_only_its_tenant_and_is_refused_anothers_conversations(server: ServerProcess) -> None:
    with server.client(ACME_KEY) as acme:
        assert acme.get("/v1/tenants").json() == {"tenants": [{"tenant_id": "acme"}], "next_after": None}
        assert walk(acme, "/v1/tenants/acme/conversations", "conversation_id", 2) == ["c.3", "c1", "c2"]
        refused = acme.get("/v1/tenants/globex/conversations")
        assert refused.status_code == 403, refused.text
        assert "c.3" not in refused.text
        # The same refusal as globex's messages get.
        assert acme.get("/v1/conversations/c1/messages", params={"tenant_id": "globex"}).status_code == 403


def test_a_key_made_for_two_tenants_lists_those_two(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        made = admin.post("/v1/admin/api-keys", json={"name": "console", "tenants": ["globex", "a.b@c:d_e-f"]})
        assert made.status_code == 201, made.text
    with server.client(made.json()["key"]) as console:
        assert walk(console, "/v1/tenants", "tenant_id", 1) == ["a.b@c:d_e-f", "globex"]
        figures = console.get("/v1/tenants/a.b@c:d_e-f/conversations").json()["conversations"]
        assert [(c["conversation_id"], c["messages"], c["archived"]) for c in figures] == [
            ("c.3", 2, 0),
            ("c1", 2, 0),
            ("c2", 2, 0),
        ]
        assert figures[0]["first_at"].startswith("2026-05-01T09:00:00")
        assert figures[0]["last_at"].startswith("2026-05-01T09:01:00")
        assert console.get("/v1/tenants/acme/conversations").status_code == 403


def test_newest_first_pages_back_through_a_conversation(server: ServerProcess) -> None:
    with server.client(ACME_KEY) as acme:
        for minute in range(2, 7):
            stored(acme, "acme", "long", minute)

        def contents(order: str | None) -> list[str]:
            seen: list[str] = []
            cursor = None
            while True:
                params = {"tenant_id": "acme", "limit": 2} | ({"order": order} if order else {})
                answer = acme.get(
                    "/v1/conversations/long/messages", params=params | ({"cursor": cursor} if cursor else {})
                )
                assert answer.status_code == 200, answer.text
                seen += [m["content"] for m in answer.json()["messages"]]
                cursor = answer.json()["next_cursor"]
                if cursor is None:
                    return seen

        oldest = [f"acme long turn {m}" for m in range(2, 7)]
        assert contents(None) == oldest
        assert contents("oldest") == oldest
        assert contents("newest") == oldest[::-1]


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/v1/tenants", {"limit": 0}, "limit"),
        ("/v1/tenants", {"limit": 1001}, "limit"),
        ("/v1/tenants", {"after": "a\x00b"}, "after"),
        ("/v1/tenants", {"after": "x" * 10_000}, "after"),
        ("/v1/tenants/acme/conversations", {"limit": 0}, "limit"),
        ("/v1/tenants/acme/conversations", {"limit": 1001}, "limit"),
        ("/v1/tenants/acme/conversations", {"after": "a\x00b"}, "after"),
        ("/v1/tenants/acme/conversations", {"after": "x" * 10_000}, "after"),
        ("/v1/conversations/c1/messages", {"tenant_id": "acme", "order": "sideways"}, "order"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_hostile_paging_arguments_are_4xx_naming_the_field(
    server: ServerProcess, path: str, params: dict, named: str
) -> None:
    with server.client(ADMIN_KEY) as admin:
        answer = admin.get(path, params=params)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    assert named in [e["field"] for e in answer.json()["errors"]], answer.text
