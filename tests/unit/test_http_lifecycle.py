"""The lifecycle routes over in-memory adapters: update, delete, archive, restore, list, erase, retention."""

import asyncio
import base64
import json
import uuid
from datetime import datetime, timedelta

import pytest

from tests.unit.conftest import ADMIN_KEY, NOW
from tests.unit.test_http_api import ACME, message, problem_of

ADMIN = {"x-api-key": ADMIN_KEY}


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


OLD = (NOW - timedelta(days=45)).isoformat()  # past the default 30 days


async def store(client, **fields) -> dict:
    response = await client.post("/v1/messages?wait=true", json=message(**fields), headers=ACME)
    assert response.status_code == 201, await response.get_data()
    return await response.get_json()


async def search_ids(client, query: str) -> list[str]:
    found = await client.get(f"/v1/memory/search?tenant_id=acme&query={query}&top_k=10", headers=ACME)
    return [r["message"]["id"] for r in (await found.get_json())["results"]]


async def patch(client, message_id: str, body: dict):
    return await client.patch(f"/v1/messages/{message_id}?tenant_id=acme", json=body, headers=ACME)


async def test_patch_changes_metadata_importance_and_pinned(client):
    stored = await store(client, metadata={"a": 1})

    changed = await (
        await patch(client, stored["id"], {"metadata": {"b": 2}, "importance": 0.9, "pinned": True})
    ).get_json()
    assert (changed["metadata"], changed["importance"], changed["explicit_importance"], changed["pinned"]) == (
        {"b": 2},
        0.9,
        0.9,
        True,
    )
    assert changed["embedding_status"] == "embedded"  # the text did not change: no re-embedding

    cleared = await (await patch(client, stored["id"], {"importance": None, "metadata": None})).get_json()
    assert (cleared["explicit_importance"], cleared["importance"], cleared["metadata"]) == (
        None,
        stored["importance"],
        {},
    )


async def test_patching_content_re_embeds_and_search_follows_the_new_text(client, index):
    stored = await store(client, content="I like green tea")
    assert await search_ids(client, "green+tea") == [stored["id"]]
    old_vector = index.records[next(iter(index.records))].vector

    changed = await patch(client, stored["id"], {"content": "My flight to Oslo leaves at 9"})
    assert (await changed.get_json())["embedding_status"] == "pending"

    for _ in range(200):  # the in-process worker re-embeds it
        current = await (await client.get(f"/v1/messages/{stored['id']}?tenant_id=acme", headers=ACME)).get_json()
        if current["embedding_status"] == "embedded":
            break
        await asyncio.sleep(0.01)
    assert current["content"] == "My flight to Oslo leaves at 9" and current["embedding_status"] == "embedded"
    assert index.records[next(iter(index.records))].vector != old_vector


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "body"),
        ({"content": ""}, "content"),
        ({"content": None}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"importance": 1.5}, "importance"),
        ({"pinned": None}, "pinned"),
        ({"role": "system"}, "role"),
    ],
)
async def test_a_bad_patch_is_422_naming_the_field(client, body, named):
    stored = await store(client)
    problem = await problem_of(await patch(client, stored["id"], body), 422)
    assert named in [e["field"] for e in problem["errors"]]


async def test_patch_delete_and_restore_of_an_unknown_message_are_404(client):
    unknown = "00000000-0000-0000-0000-000000000000"
    await problem_of(await patch(client, unknown, {"pinned": True}), 404)
    await problem_of(await client.delete(f"/v1/messages/{unknown}?tenant_id=acme", headers=ACME), 404)
    await problem_of(await client.post(f"/v1/messages/{unknown}/restore?tenant_id=acme", headers=ACME), 404)
    await problem_of(await client.post(f"/v1/messages/{unknown}/archive?tenant_id=acme", headers=ACME), 404)


async def test_archive_by_hand_takes_a_message_out_of_search_until_restored(client):
    pinned = await store(client, content="green tea with lemon", pinned=True)
    other = await store(client, content="green tea, no sugar")

    archive = f"/v1/messages/{pinned['id']}/archive?tenant_id=acme"
    archived = await (await client.post(archive, headers=ACME)).get_json()
    assert datetime.fromisoformat(archived["archived_at"]) == NOW
    assert archived["pinned"]  # retention spares a pinned message; an explicit archive does not
    assert await search_ids(client, "green+tea") == [other["id"]]
    again = await (await client.post(archive, headers=ACME)).get_json()
    assert again["archived_at"] == archived["archived_at"]  # idempotent: the first time stays

    restored = await (await client.post(f"/v1/messages/{pinned['id']}/restore?tenant_id=acme", headers=ACME)).get_json()
    assert restored["archived_at"] is None
    assert set(await search_ids(client, "green+tea")) == {pinned["id"], other["id"]}


async def test_delete_removes_the_row_and_the_vector(client, table, index):
    stored = await store(client)
    assert (await client.delete(f"/v1/messages/{stored['id']}?tenant_id=acme", headers=ACME)).status_code == 204
    await problem_of(await client.get(f"/v1/messages/{stored['id']}?tenant_id=acme", headers=ACME), 404)
    assert table.rows == {} and index.records == {}
    assert await search_ids(client, "green+tea") == []


async def test_retention_archives_then_restore_brings_back(client):
    old = await store(client, content="ok", created_at=OLD)  # filler: importance below 0.35
    kept = await store(client, content="ok pinned", created_at=OLD, pinned=True)
    recent = await store(client, content="ok")

    ran = await client.post("/v1/admin/retention/run", json={}, headers=ADMIN)
    assert ran.status_code == 200, await ran.get_data()
    report = await ran.get_json()
    assert report["totals"] == {"examined": 1, "archived": 1, "deleted": 0}
    assert report["tenants"] == {"acme": {"examined": 1, "archived": 1, "deleted": 0}}

    assert set(await search_ids(client, "ok")) == {kept["id"], recent["id"]}
    archived = await (await client.get(f"/v1/messages/{old['id']}?tenant_id=acme", headers=ACME)).get_json()
    assert archived["archived_at"] is not None  # still readable by id
    listed = await (await client.get("/v1/conversations/c1/messages?tenant_id=acme", headers=ACME)).get_json()
    assert old["id"] not in [m["id"] for m in listed["messages"]]
    with_archived = await client.get("/v1/conversations/c1/messages?tenant_id=acme&include_archived=true", headers=ACME)
    assert old["id"] in [m["id"] for m in (await with_archived.get_json())["messages"]]

    again = await (await client.post("/v1/admin/retention/run", json={}, headers=ADMIN)).get_json()
    assert again["totals"]["archived"] == 0  # idempotent

    restored = await (await client.post(f"/v1/messages/{old['id']}/restore?tenant_id=acme", headers=ACME)).get_json()
    assert restored["archived_at"] is None
    assert datetime.fromisoformat(restored["restored_at"]) == NOW
    assert old["id"] in await search_ids(client, "ok")
    after = await (await client.post("/v1/admin/retention/run", json={}, headers=ADMIN)).get_json()
    assert after["totals"]["archived"] == 0  # a restored message counts its age from the restore


async def test_a_dry_run_counts_and_changes_nothing(client, table):
    await store(client, content="ok", created_at=OLD)
    report = await (await client.post("/v1/admin/retention/run", json={"dry_run": True}, headers=ADMIN)).get_json()
    assert report["dry_run"] is True and report["totals"]["archived"] == 1
    assert all(m.archived_at is None for m in table.rows.values())


async def test_retention_runs_are_admin_only_and_one_at_a_time(client, locks):
    await problem_of(await client.post("/v1/admin/retention/run", json={}, headers=ACME), 403)
    await problem_of(await client.get("/v1/admin/retention/runs", headers=ACME), 403)
    async with locks.try_hold("memorymesh:retention") as held:
        assert held
        body = await problem_of(await client.post("/v1/admin/retention/run", json={}, headers=ADMIN), 409)
        assert body["code"] == "retention_running"
    await problem_of(
        await client.post("/v1/admin/retention/run", json={"tenant_id": "bad tenant!"}, headers=ADMIN), 422
    )


async def test_runs_are_recorded(client):
    await client.post("/v1/admin/retention/run", json={"dry_run": True}, headers=ADMIN)
    runs = (await (await client.get("/v1/admin/retention/runs", headers=ADMIN)).get_json())["runs"]
    (admin,) = runs
    assert admin["dry_run"] is True and admin["finished_at"] is not None


async def test_a_tenant_policy_overrides_the_default_field_by_field(client):
    url = "/v1/admin/tenants/acme/retention"
    put = await client.put(url, json={"delete_after_days": 40, "protected_roles": ["tool", "user"]}, headers=ADMIN)
    assert put.status_code == 200, await put.get_data()
    body = await put.get_json()
    assert body["overrides"] == {"delete_after_days": 40, "protected_roles": ["tool", "user"]}
    assert body["policy"] == {
        "archive_after_days": 30.0,
        "delete_after_days": 40.0,
        "importance_threshold": 0.35,
        "protected_roles": ["tool", "user"],
    }
    assert await (await client.get(url, headers=ADMIN)).get_json() == body

    never = await (await client.put(url, json={"archive_after_days": None}, headers=ADMIN)).get_json()
    assert never["policy"]["archive_after_days"] is None and never["policy"]["delete_after_days"] is None
    cleared = await (await client.put(url, json={}, headers=ADMIN)).get_json()
    assert cleared["overrides"] == {} and cleared["policy"]["archive_after_days"] == 30.0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"delete_after_days": 10}, "delete_after_days"),
        ({"archive_after_days": 0}, "archive_after_days"),
        ({"importance_threshold": 2}, "importance_threshold"),
        ({"protected_roles": ["robot"]}, "protected_roles.0"),
        ({"keep_forever": True}, "keep_forever"),
    ],
)
async def test_a_policy_that_makes_no_sense_is_422_naming_the_field(client, body, named):
    problem = await problem_of(await client.put("/v1/admin/tenants/acme/retention", json=body, headers=ADMIN), 422)
    assert named in [e["field"] for e in problem["errors"]]


async def test_a_tenant_policy_decides_that_tenants_run(client):
    await client.put("/v1/admin/tenants/acme/retention", json={"delete_after_days": 40}, headers=ADMIN)
    gone = await store(client, content="ok", created_at=OLD)
    report = await (await client.post("/v1/admin/retention/run", json={"tenant_id": "acme"}, headers=ADMIN)).get_json()
    assert report["totals"] == {"examined": 1, "archived": 0, "deleted": 1}
    await problem_of(await client.get(f"/v1/messages/{gone['id']}?tenant_id=acme", headers=ACME), 404)


async def test_a_conversation_pages_with_a_cursor(client):
    ids = [
        (await store(client, content=f"turn {i}", created_at=(NOW - timedelta(minutes=10 - i)).isoformat()))["id"]
        for i in range(5)
    ]
    await store(client, content="elsewhere", conversation_id="c2")
    seen, cursor = [], None
    while True:
        url = "/v1/conversations/c1/messages?tenant_id=acme&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url, headers=ACME)).get_json()
        seen += [m["id"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=nonsense", "cursor"),
        ("cursor=e30", "cursor"),  # {}
        (f"cursor={cursor_of({'at': '2026-01-01T00:00:00+00:00', 'id': 5})}", "cursor"),
        (f"cursor={cursor_of({'at': '2026-01-01T00:00:00', 'id': str(uuid.uuid4())})}", "cursor"),  # no offset
        (f"cursor={cursor_of({'at': '0001-01-01T00:00:00+14:00', 'id': str(uuid.uuid4())})}", "cursor"),
        ("cursor=" + "W" * 2000, "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b"[" * 1100 + b"]" * 1100).decode(), "cursor"),  # deep JSON
    ],
)
async def test_bad_listing_parameters_are_422_naming_them(client, query, named):
    problem = await problem_of(
        await client.get(f"/v1/conversations/c1/messages?tenant_id=acme&{query}", headers=ACME), 422
    )
    assert named in [e["field"] for e in problem["errors"]]


async def test_erasing_a_conversation_leaves_the_others(client, table, index):
    for i in range(3):
        await store(client, content=f"gone {i}")
    kept = await store(client, content="kept", conversation_id="c2")

    receipt = await (await client.delete("/v1/conversations/c1?tenant_id=acme", headers=ACME)).get_json()

    assert receipt == {"tenant_id": "acme", "conversation_id": "c1", "deleted": {"messages": 3, "vectors": 3}}
    assert [m.id for m in table.rows.values()] == [uuid.UUID(kept["id"])]
    assert set(index.records) == set(table.rows)


async def test_erasing_a_tenant_takes_everything_of_it_and_is_admin_only(client, table, index):
    await store(client)
    await client.post("/v1/messages?wait=true", json=message(tenant_id="globex"), headers=ADMIN)
    await client.put("/v1/admin/tenants/acme/retention", json={"delete_after_days": 40}, headers=ADMIN)
    await client.put("/v1/admin/tenants/acme/limits", json={"rate_limit": "10/minute"}, headers=ADMIN)
    await problem_of(await client.delete("/v1/admin/tenants/acme", headers=ACME), 403)

    receipt = await (await client.delete("/v1/admin/tenants/acme", headers=ADMIN)).get_json()

    assert receipt["deleted"] == {"messages": 1, "vectors": 1, "tenant_retention": 1, "tenant_limits": 1}
    assert {m.tenant_id for m in table.rows.values()} == {"globex"}
    assert {r.tenant_id for r in index.records.values()} == {"globex"}
    policy = await (await client.get("/v1/admin/tenants/acme/retention", headers=ADMIN)).get_json()
    assert policy["overrides"] == {}
    again = await (await client.delete("/v1/admin/tenants/acme", headers=ADMIN)).get_json()
    assert again["deleted"] == {"messages": 0, "vectors": 0, "tenant_retention": 0, "tenant_limits": 0}


async def test_overrides_that_no_longer_fit_the_default_skip_only_that_tenant(client, retention_policies):
    # Set when the default archived after 30 days; an operator has since moved it past 60.
    await retention_policies.put("acme", {"archive_after_days": 100, "delete_after_days": 60})
    await store(client, content="ok", created_at=OLD)
    theirs = message(tenant_id="globex", content="ok", created_at=OLD)
    await client.post("/v1/messages?wait=true", json=theirs, headers=ADMIN)

    report = await (await client.post("/v1/admin/retention/run", json={}, headers=ADMIN)).get_json()

    assert report["tenants"] == {"globex": {"examined": 1, "archived": 1, "deleted": 0}}
    assert "delete_after_days" in report["skipped"]["acme"]
    shown = await (await client.get("/v1/admin/tenants/acme/retention", headers=ADMIN)).get_json()
    assert shown["policy"] is None and "delete_after_days" in shown["problem"]
    assert shown["overrides"] == {"archive_after_days": 100, "delete_after_days": 60}
