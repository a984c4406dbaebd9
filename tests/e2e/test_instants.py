"""Times at the edges of the calendar, in the real server on its own PostgreSQL database.

The earliest and latest instants the service accepts, written in several offsets, are stored
and then read by every path: by id, paged through a conversation, found by every search mode
with and without `since` / `until` at the edges, changed, archived by a retention run (dry and
real), restored. Rows that hold PostgreSQL's -infinity / infinity (stored before the range
existed, or by hand) break none of those paths. And a tenant whose retention fails is
recorded in the run, which finishes the other tenants.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-instants-admin-key-001"
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)
# The two ends of the range, each written in UTC and in the offsets furthest from it in use.
WRITTEN = {
    "earliest": ("0001-01-02T00:00:00Z", EARLIEST),
    "earliest+14": ("0001-01-02T14:00:00+14:00", EARLIEST),
    "earliest-12": ("0001-01-01T12:00:00-12:00", EARLIEST),
    "latest": ("9999-12-30T23:59:59.999999Z", LATEST),
    "latest-12": ("9999-12-30T11:59:59.999999-12:00", LATEST),
    "latest+14": ("9999-12-31T13:59:59.999999+14:00", LATEST),
}
MODES = ("semantic", "keyword", "hybrid")


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def sql(dsn: str, *statements: str) -> None:
    asyncio.run(_execute(dsn, *statements))


@pytest.fixture(scope="module")
def database(pg_dsn: str) -> Iterator[str]:
    """A database of this module's own: the tests write rows and triggers into it by hand."""
    name = f"instants_{uuid.uuid4().hex[:12]}"
    sql(pg_dsn, f'CREATE DATABASE "{name}"')
    base, _, query = pg_dsn.partition("?")
    yield f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    sql(pg_dsn, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("instants") / "data",
        MEMORY_DATABASE_URL=database,
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_EMBEDDING_MODE="inline",
        MEMORY_RETENTION_SCHEDULE_SECONDS="0",  # runs only when a test asks for one
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(ADMIN_KEY) as c:
        yield c


def at(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"{text} carries no offset"
    return moment


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def store(client: httpx.Client, tenant: str, conversation: str, content: str, created_at: str) -> dict:
    body = {
        "tenant_id": tenant,
        "conversation_id": conversation,
        "role": "user",
        "content": content,
        "created_at": created_at,
        "importance": 0.1,
    }
    return ok(client.post("/v1/messages", json=body), 201)


def listed(client: httpx.Client, tenant: str, conversation: str, **params: object) -> list[dict]:
    """Every message of the conversation, a page of one at a time through next_cursor."""
    seen: list[dict] = []
    cursor = None
    while True:
        query = {"tenant_id": tenant, "limit": 1, **params} | ({"cursor": cursor} if cursor else {})
        page = ok(client.get(f"/v1/conversations/{conversation}/messages", params=query))
        seen += page["messages"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert len(seen) < 50, "paging does not end"


def found(client: httpx.Client, tenant: str, mode: str, **window: str) -> set[str]:
    """The ids a search finds, asked by GET and by POST (which must agree)."""
    params = {"tenant_id": tenant, "query": "edge", "mode": mode, "top_k": 50, **window}
    by_get = {r["message"]["id"] for r in ok(client.get("/v1/memory/search", params=params))["results"]}
    by_post = {r["message"]["id"] for r in ok(client.post("/v1/memory/search", json=params))["results"]}
    assert by_get == by_post
    return by_get


def test_the_ends_of_the_range_go_through_every_read_path(client: httpx.Client) -> None:
    stored = {name: store(client, "edges", "c", f"edge {name}", text) for name, (text, _) in WRITTEN.items()}
    for name, message in stored.items():  # answered in UTC, whatever offset it was written in
        assert at(message["created_at"]) == WRITTEN[name][1] and at(message["created_at"]).utcoffset() == timedelta(0)
    ids = {name: m["id"] for name, m in stored.items()}
    early = {ids[n] for n in ids if n.startswith("earliest")}
    late = {ids[n] for n in ids if n.startswith("latest")}

    for name, message_id in ids.items():
        got = ok(client.get(f"/v1/messages/{message_id}", params={"tenant_id": "edges"}))
        assert at(got["created_at"]) == WRITTEN[name][1] and at(got["created_at"]).utcoffset() == timedelta(0)

    pages = listed(client, "edges", "c")
    assert [at(m["created_at"]) for m in pages] == [EARLIEST] * 3 + [LATEST] * 3
    assert {m["id"] for m in pages[:3]} == early and {m["id"] for m in pages[3:]} == late

    earliest, latest = "0001-01-02T00:00:00Z", "9999-12-30T23:59:59.999999Z"
    windows: list[tuple[dict[str, str], set[str]]] = [
        ({}, early | late),
        ({"since": earliest}, early | late),
        ({"until": earliest}, early),
        ({"since": latest}, late),
        ({"until": latest}, early | late),
        ({"since": earliest, "until": latest}, early | late),
        ({"since": "0001-01-02T00:00:00.000001Z"}, late),
        ({"until": "9999-12-30T23:59:59.999998Z"}, early),
        ({"since": "0001-01-02T14:00:00+14:00", "until": "0001-01-01T12:00:00-12:00"}, early),
        # Before the earliest means from the start, after the latest to the end (Go's zero time,
        # .NET's DateTime.MaxValue): read as the range's ends.
        ({"since": "0001-01-01T00:00:00Z"}, early | late),
        ({"since": "0001-01-01T00:00:00+01:00"}, early | late),
        ({"until": "9999-12-31T23:59:59.999999Z"}, early | late),
        ({"until": "9999-12-31T23:59:59.999999-01:00"}, early | late),
    ]
    for mode in MODES:
        for window, expected in windows:
            assert found(client, "edges", mode, **window) == expected, (mode, window)

    changed = ok(client.patch(f"/v1/messages/{ids['latest']}", params={"tenant_id": "edges"}, json={"pinned": True}))
    assert at(changed["created_at"]) == LATEST and changed["pinned"] is True
    changed = ok(
        client.patch(f"/v1/messages/{ids['earliest']}", params={"tenant_id": "edges"}, json={"content": "edge again"})
    )
    assert at(changed["created_at"]) == EARLIEST and changed["content"] == "edge again"

    dry = ok(client.post("/v1/admin/retention/run", json={"tenant_id": "edges", "dry_run": True}))
    assert dry["tenants"]["edges"] == {"examined": 3, "archived": 3, "deleted": 0}
    assert dry["finished_at"] is not None and dry.get("failed") == {}
    real = ok(client.post("/v1/admin/retention/run", json={"tenant_id": "edges"}))
    assert real["tenants"]["edges"] == {"examined": 3, "archived": 3, "deleted": 0} and real["failed"] == {}
    for mode in MODES:
        assert found(client, "edges", mode) == late
    assert {m["id"] for m in listed(client, "edges", "c")} == late
    assert {m["id"] for m in listed(client, "edges", "c", include_archived="true")} == early | late

    restored = ok(client.post(f"/v1/messages/{ids['earliest']}/restore", params={"tenant_id": "edges"}))
    assert restored["archived_at"] is None and at(restored["restored_at"]).utcoffset() == timedelta(0)
    assert at(restored["created_at"]) == EARLIEST
    for mode in MODES:
        assert found(client, "edges", mode, until=earliest) == {ids["earliest"]}
    again = ok(client.post("/v1/admin/retention/run", json={"tenant_id": "edges"}))
    assert again["totals"]["archived"] == 0  # the restored one counts its age from the restore


def forged_cursor(moment: str) -> str:
    raw = json.dumps({"at": moment, "id": str(uuid.uuid4())}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/v1/memory/search", {"since": "9999-12-31T00:00:00Z"}, "since"),
        ("/v1/memory/search", {"until": "0001-01-01T23:59:59.999999Z"}, "until"),
        ("/v1/memory/search", {"since": "9999-12-30T12:00:00-12:00"}, "since"),
        ("/v1/conversations/c/messages", {"cursor": forged_cursor("0001-01-01T00:00:00+01:00")}, "cursor"),
        ("/v1/conversations/c/messages", {"cursor": forged_cursor("9999-12-31T23:59:59.999999-01:00")}, "cursor"),
    ],
    ids=["since-after-latest", "until-before-earliest", "since-after-latest-offset", "cursor-year-0", "cursor-10000"],
)
def test_a_time_that_can_match_nothing_is_422_naming_it(
    client: httpx.Client, path: str, params: dict[str, str], named: str
) -> None:
    query = {"tenant_id": "edges", **({"query": "edge"} if path.endswith("search") else {}), **params}
    response = client.get(path, params=query)
    assert response.status_code == 422 and named in response.text, response.text


def test_a_batch_names_the_message_whose_time_is_out_of_range(client: httpx.Client) -> None:
    good = {"tenant_id": "edges", "conversation_id": "b", "role": "user", "content": "x"}
    batch = [
        good,
        {**good, "created_at": "9999-12-31T23:59:59.999999Z"},
        {**good, "created_at": "0001-01-01T00:00:00Z"},
    ]
    response = client.post("/v1/messages/batch", json={"messages": batch})
    assert response.status_code == 422, response.text
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"messages[1].created_at", "messages[2].created_at"}
    assert ok(client.get("/v1/conversations/b/messages", params={"tenant_id": "edges"}))["messages"] == []


def test_rows_stored_as_infinity_break_no_read_and_no_retention_run(client: httpx.Client, database: str) -> None:
    """Rows the service once stored as PostgreSQL's infinities read as Python's first and last
    instants, in UTC, and keep their order against a time just inside them (accepted then)."""
    held = {
        "-infinity": datetime.min.replace(tzinfo=UTC),
        "infinity": datetime.max.replace(tzinfo=UTC),
        "0001-01-01 05:00:00+00": datetime(1, 1, 1, 5, tzinfo=UTC),
        "2020-05-01 00:00:00+00": datetime(2020, 5, 1, tzinfo=UTC),
    }
    ids = {}
    for value in held:
        message = store(client, "legacy", "old", f"edge legacy {value}", "2020-01-01T00:00:00Z")
        sql(database, f"UPDATE messages SET created_at = '{value}' WHERE id = '{message['id']}'")
        ids[value] = message["id"]

    for value, message_id in ids.items():
        got = ok(client.get(f"/v1/messages/{message_id}", params={"tenant_id": "legacy"}))
        assert at(got["created_at"]) == held[value] and at(got["created_at"]).utcoffset() == timedelta(0)
    in_order = [ids[value] for value in sorted(held, key=held.__getitem__)]
    assert [m["id"] for m in listed(client, "legacy", "old")] == in_order
    for mode in MODES:
        assert found(client, "legacy", mode) == set(ids.values())
        assert ids["2020-05-01 00:00:00+00"] in found(client, "legacy", mode, since="2000-01-01T00:00:00Z")
    changed = client.patch(f"/v1/messages/{ids['infinity']}", params={"tenant_id": "legacy"}, json={"pinned": True})
    assert at(ok(changed)["created_at"]) == held["infinity"]

    dry = ok(client.post("/v1/admin/retention/run", json={"tenant_id": "legacy", "dry_run": True}))
    assert dry["failed"] == {} and dry["tenants"]["legacy"]["archived"] == 3
    real = ok(client.post("/v1/admin/retention/run", json={"tenant_id": "legacy"}))
    assert real["failed"] == {} and real["finished_at"] is not None
    assert real["tenants"]["legacy"]["archived"] == 3  # all but the pinned one at infinity
    restored = ok(client.post(f"/v1/messages/{ids['-infinity']}/restore", params={"tenant_id": "legacy"}))
    assert restored["archived_at"] is None and at(restored["created_at"]) == held["-infinity"]
    for mode in MODES:
        assert found(client, "legacy", mode) == {ids["-infinity"], ids["infinity"]}


def test_a_tenant_whose_retention_fails_is_recorded_and_the_run_finishes_the_others(
    client: httpx.Client, server: ServerProcess, database: str
) -> None:
    """A tenant's rows refuse every change (a trigger): the run records it, with a reason that
    holds nothing of the tenant's data, and goes on with the tenants after it."""
    for tenant in ("aaa-poisoned", "zzz-after"):
        store(client, tenant, "c", "edge old news", "2020-01-01T00:00:00Z")
    sql(
        database,
        "CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'secret words of the poisoned tenant'; END $$",
        "CREATE TRIGGER poisoned BEFORE UPDATE OR DELETE ON messages FOR EACH ROW "
        "WHEN (OLD.tenant_id = 'aaa-poisoned') EXECUTE FUNCTION refuse_change()",
    )
    try:
        run = ok(client.post("/v1/admin/retention/run", json={}))
    finally:
        sql(database, "DROP TRIGGER poisoned ON messages", "DROP FUNCTION refuse_change()")

    assert set(run["failed"]) == {"aaa-poisoned"} and "secret" not in run["failed"]["aaa-poisoned"]
    assert run["finished_at"] is not None
    assert run["tenants"]["zzz-after"]["archived"] == 1
    assert found(client, "zzz-after", "keyword") == set()
    assert len(found(client, "aaa-poisoned", "keyword")) == 1  # left as it was
    (recorded,) = [r for r in ok(client.get("/v1/admin/retention/runs"))["runs"] if r["run_id"] == run["run_id"]]
    assert recorded["failed"] == run["failed"] and recorded["finished_at"] is not None
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "memorymesh_retention_tenant_failures_total 1.0" in metrics
    assert "retention failed for a tenant" in server.output
    assert "secret words" not in server.output  # nor in the log


def test_nothing_here_made_a_5xx(server: ServerProcess) -> None:
    metrics = httpx.get(f"{server.url}/metrics").text
    server_errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("memorymesh_http_requests_total") and 'status="5' in line and not line.endswith(" 0.0")
    ]
    assert server_errors == []
