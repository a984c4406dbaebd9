"""JSON bodies are taken as written: a bool is a JSON bool, a number a JSON number (an integer
will do for a float), a time an ISO 8601 string with an offset. Anything else is a 422 naming
the field, and nothing is stored or changed. Query strings, which are text, still convert."""

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.conftest import ADMIN_KEY
from tests.unit.test_http_api import ACME, message, problem_of

ADMIN = {"x-api-key": ADMIN_KEY}
EACH_EXAMPLE_ON_ONE_APP = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)


async def refused(response, field: str) -> None:
    body = await problem_of(response, 422)
    assert field in [e["field"] for e in body["errors"]], body


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"pinned": "yes"}, "pinned"),
        ({"pinned": "false"}, "pinned"),
        ({"pinned": 1}, "pinned"),
        ({"importance": True}, "importance"),
        ({"importance": "0.5"}, "importance"),
        ({"created_at": 253402300800}, "created_at"),
        ({"created_at": "253402300800"}, "created_at"),
        ({"created_at": 1.5}, "created_at"),
        ({"created_at": "2026-05-01T09:30:00"}, "created_at"),
        ({"content": 42}, "content"),
    ],
)
async def test_a_message_with_a_loose_value_is_422_naming_it_and_stores_nothing(client, table, fields, field):
    await refused(await client.post("/v1/messages", json=message(**fields), headers=ACME), field)
    batch = {"messages": [message(), message(**fields)]}
    await refused(await client.post("/v1/messages/batch", json=batch, headers=ACME), f"messages.1.{field}")
    assert table.rows == {}


async def test_json_values_of_the_right_kind_are_taken(client):
    response = await client.post(
        "/v1/messages",
        json=message(importance=1, pinned=False, created_at="2026-05-01T11:30:00+02:00"),
        headers=ACME,
    )
    assert response.status_code == 202, await response.get_data()
    stored = await response.get_json()
    assert stored["importance"] == 1.0 and stored["pinned"] is False
    assert datetime.fromisoformat(stored["created_at"]) == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/memory/search", {"tenant_id": "acme", "query": "tea", "top_k": "5"}, "top_k"),
        ("POST", "/v1/memory/search", {"tenant_id": "acme", "query": "tea", "top_k": 5.0}, "top_k"),
        ("POST", "/v1/memory/search", {"tenant_id": "acme", "query": "tea", "min_importance": True}, "min_importance"),
        ("POST", "/v1/memory/search", {"tenant_id": "acme", "query": "tea", "since": 0}, "since"),
        ("POST", "/v1/memory/search", {"tenant_id": "acme", "query": "tea", "until": "1700000000"}, "until"),
        ("POST", "/v1/admin/retention/run", {"dry_run": "yes"}, "dry_run"),
        ("PUT", "/v1/admin/tenants/acme/retention", {"archive_after_days": "30"}, "archive_after_days"),
        ("PUT", "/v1/admin/tenants/acme/retention", {"importance_threshold": False}, "importance_threshold"),
        ("POST", "/v1/admin/api-keys", {"name": "bot", "tenants": ["acme"], "admin": "true"}, "admin"),
        ("PUT", "/v1/admin/tenants/acme/limits", {"rate_limit": 120}, "rate_limit"),
        ("POST", "/v1/admin/queue/retry-failed", {"tenant_id": 7}, "tenant_id"),
    ],
)
async def test_every_json_body_is_strict(client, retention_runs, method, path, body, field):
    await refused(await client.open(path, method=method, json=body, headers=ADMIN), field)
    assert await retention_runs.recent(10) == []  # "dry_run": "yes" ran nothing


async def test_a_patch_with_a_loose_value_changes_nothing(client, table):
    created = await (await client.post("/v1/messages", json=message(pinned=True), headers=ACME)).get_json()
    path = f"/v1/messages/{created['id']}?tenant_id=acme"
    await refused(await client.patch(path, json={"pinned": "no"}, headers=ACME), "pinned")
    await refused(await client.patch(path, json={"importance": False}, headers=ACME), "importance")
    (kept,) = table.rows.values()
    assert kept.pinned and kept.explicit_importance is None


async def test_the_query_string_still_converts(client):
    response = await client.get("/v1/memory/search?tenant_id=acme&query=tea&top_k=5&min_importance=0", headers=ACME)
    assert response.status_code == 200


@EACH_EXAMPLE_ON_ONE_APP
@given(value=ANY_JSON)
async def test_pinned_is_a_json_bool_or_a_422(client, value: Any) -> None:
    response = await client.post("/v1/messages", json=message(pinned=value), headers=ACME)
    if isinstance(value, bool):
        assert response.status_code == 202
    else:
        await refused(response, "pinned")


@EACH_EXAMPLE_ON_ONE_APP
@given(value=ANY_JSON)
async def test_importance_is_a_json_number_or_a_422(client, value: Any) -> None:
    response = await client.post("/v1/messages", json=message(importance=value), headers=ACME)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1):
        assert response.status_code == 202
    else:
        await refused(response, "importance")


@EACH_EXAMPLE_ON_ONE_APP
@given(value=ANY_JSON | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()))
async def test_created_at_is_iso_text_with_an_offset_or_a_422(client, value: Any) -> None:
    response = await client.post("/v1/messages", json=message(created_at=value), headers=ACME)
    if response.status_code == 202:
        assert value is None or (isinstance(value, str) and value[:4].isdigit() and value[10] in "Tt ")
    else:
        await refused(response, "created_at")
