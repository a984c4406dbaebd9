"""The HTTP edge over in-memory adapters: status codes, problem bodies, auth, hostile input."""

import json

import pytest

from adapters.inprocess.job_queue import InProcessJobQueue
from application.ports.job_queue import QueueUnavailable
from tests.unit.conftest import ACME_KEY, ADMIN_KEY, GLOBEX_KEY

ACME = {"x-api-key": ACME_KEY}


def message(**fields):
    return {"tenant_id": "acme", "conversation_id": "c1", "role": "user", "content": "I like green tea", **fields}


async def problem_of(response, status: int) -> dict:
    assert response.status_code == status, await response.get_data()
    assert response.mimetype == "application/problem+json"
    body = await response.get_json()
    assert body["status"] == status
    return body


async def test_store_get_and_search_round_trip(client):
    created = await client.post("/v1/messages?wait=true", json=message(metadata={"k": [1, {"x": None}]}), headers=ACME)
    assert created.status_code == 201
    stored = await created.get_json()
    assert stored["embedding_status"] == "embedded"
    assert stored["metadata"] == {"k": [1, {"x": None}]}
    assert 0 <= stored["importance"] <= 1

    fetched = await client.get(f"/v1/messages/{stored['id']}?tenant_id=acme", headers=ACME)
    assert fetched.status_code == 200
    assert await fetched.get_json() == stored

    found = await client.get("/v1/memory/search?tenant_id=acme&query=green+tea&top_k=3", headers=ACME)
    assert found.status_code == 200
    (result,) = (await found.get_json())["results"]
    assert result["message"]["id"] == stored["id"]
    assert set(result["scores"]) == {"similarity", "importance", "recency", "final"}


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong-key-of-some-length"}, {"x-api-key": "k" * 5000}])
async def test_missing_or_unknown_key_is_401(client, headers):
    body = await problem_of(await client.post("/v1/messages", json=message(), headers=headers), 401)
    assert body["code"] == "unauthorized"
    await problem_of(await client.get("/v1/memory/search?tenant_id=acme&query=x", headers=headers), 401)


async def test_a_key_used_for_another_tenant_is_403_and_nothing_leaks(client, table):
    theirs = await client.post("/v1/messages", json=message(tenant_id="globex"), headers={"x-api-key": GLOBEX_KEY})
    theirs_id = (await theirs.get_json())["id"]

    await problem_of(await client.post("/v1/messages", json=message(tenant_id="globex"), headers=ACME), 403)
    await problem_of(await client.get(f"/v1/messages/{theirs_id}?tenant_id=globex", headers=ACME), 403)
    await problem_of(await client.get("/v1/memory/search?tenant_id=globex&query=tea", headers=ACME), 403)
    await problem_of(await client.get(f"/v1/messages/{theirs_id}?tenant_id=acme", headers=ACME), 404)
    assert len(table.rows) == 1


async def test_admin_key_reaches_every_tenant(client):
    admin = {"x-api-key": ADMIN_KEY}
    for tenant in ("acme", "globex", "initech"):
        assert (await client.post("/v1/messages", json=message(tenant_id=tenant), headers=admin)).status_code == 202


async def test_health_and_readiness_need_no_key(client):
    assert (await (await client.get("/v1/admin/health")).get_json()) == {"status": "ok"}
    ready = await client.get("/v1/admin/readiness")
    assert ready.status_code == 200
    assert (await ready.get_json())["checks"] == {
        "database": "ok",
        "vector_index": "ok",
        "embedder": "ok",
        "queue": "ok",
        "rate_limiter": "ok",
    }


async def test_readiness_names_the_failing_part(client, repository):
    async def down() -> None:
        raise RuntimeError("connection refused")

    repository.check = down
    ready = await client.get("/v1/admin/readiness")
    assert ready.status_code == 503
    body = await ready.get_json()
    assert body["checks"]["database"].startswith("error: connection refused")
    assert body["checks"]["embedder"] == "ok"


async def test_a_job_queue_that_cannot_answer_is_degraded_not_unavailable(client, monkeypatch):
    """Writes still go to the database and searches are answered: readiness stays 200."""

    async def down(self: InProcessJobQueue) -> None:
        raise QueueUnavailable("Redis does not answer: ConnectionError")

    monkeypatch.setattr(InProcessJobQueue, "check", down)
    ready = await client.get("/v1/admin/readiness")
    assert ready.status_code == 200
    body = await ready.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["queue"].startswith("degraded (error: Redis does not answer")
    assert (await client.post("/v1/messages", json=message(), headers=ACME)).status_code == 202


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"content": ""}, "content"),
        ({"content": "x" * 1001}, "content"),
        ({"content": "nul\u0000inside"}, "content"),
        ({"content": "lone \ud800 surrogate"}, "content"),
        ({"role": "robot"}, "role"),
        ({"tenant_id": "acme corp"}, "tenant_id"),
        ({"tenant_id": "ａｃｍｅ"}, "tenant_id"),
        ({"conversation_id": ""}, "conversation_id"),
        ({"tenant_id": 42}, "tenant_id"),
        ({"content": ["a"]}, "content"),
        ({"importance": 1.5}, "importance"),
        ({"importance": "high"}, "importance"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2026-01-01T00:00:00"}, "created_at"),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at"),
        ({"metadata": {"x": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}, "metadata"),
        ({"metadata": "not an object"}, "metadata"),
        ({"metadata": {"k": "nul\u0000"}}, "metadata.k"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(client, fields, named):
    body = await problem_of(await client.post("/v1/messages", json=message(**fields), headers=ACME), 422)
    assert body["code"] == "validation_failed"
    assert named in [e["field"] for e in body["errors"]], body


async def test_missing_fields_are_named(client):
    body = await problem_of(await client.post("/v1/messages", json={}, headers=ACME), 422)
    assert {"tenant_id", "conversation_id", "role", "content"} <= {e["field"] for e in body["errors"]}


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"tenant_id": "acme",', "application/json", 400),
        (b'{"content": "\xff\xfe"}', "application/json", 400),
        (b'{"importance": NaN}', "application/json", 400),
        (b'{"importance": ' + b"1" * 5000 + b"}", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 422),
        (b"null", "application/json", 422),
        (b"tenant_id=acme", "application/x-www-form-urlencoded", 422),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
        (b"[" * 5_000 + b"]" * 5_000, "application/json", 400),
    ],
)
async def test_malformed_bodies_are_4xx_problems(client, raw, content_type, status):
    response = await client.post("/v1/messages", data=raw, headers={**ACME, "content-type": content_type})
    body = await problem_of(response, status)
    assert body["detail"]


async def test_a_body_over_the_limit_is_413(client):
    big = json.dumps(message(content="x" * 70_000)).encode()
    await problem_of(
        await client.post("/v1/messages", data=big, headers={**ACME, "content-type": "application/json"}), 413
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("tenant_id=acme&query=" + "q" * 50_000, "query"),
        ("tenant_id=acme&query=tea&top_k=0", "top_k"),
        ("tenant_id=acme&query=tea&top_k=101", "top_k"),
        ("tenant_id=acme&query=tea&top_k=ten", "top_k"),
        ("tenant_id=acme&query=tea&top_k=99999999999999999999999", "top_k"),
        ("tenant_id=acme&query=tea&min_importance=-1", "min_importance"),
        ("tenant_id=acme&query=tea&since=notadate", "since"),
        ("tenant_id=acme&query=tea&since=9999-12-31T23:59:59-01:00", "since"),  # after the latest time
        ("tenant_id=acme&query=tea&until=0001-01-01T00:00:00%2B01:00", "until"),  # before the earliest
        ("tenant_id=acme&query=tea&role=robot", "role"),
        ("tenant_id=acme", "query"),
        ("query=tea", "tenant_id"),
        ("tenant_id=acme&query=tea&colour=blue", "colour"),
        ("tenant_id=ac%00me&query=tea", "tenant_id"),
    ],
)
async def test_bad_search_parameters_are_422_naming_the_field(client, query, named):
    body = await problem_of(await client.get(f"/v1/memory/search?{query}", headers=ACME), 422)
    assert named in [e["field"] for e in body["errors"]], body


async def test_unknown_route_and_bad_id_are_404_problems(client):
    await problem_of(await client.get("/v1/nothing-here", headers=ACME), 404)
    await problem_of(await client.get("/v1/messages/not-a-uuid?tenant_id=acme", headers=ACME), 404)


async def test_wrong_method_is_405_problem(client):
    await problem_of(await client.delete("/v1/memory/search", headers=ACME), 405)


async def test_openapi_documents_the_routes_and_the_key(client):
    spec = await (await client.get("/openapi.json")).get_json()
    assert {"/v1/messages", "/v1/messages/{message_id}", "/v1/memory/search", "/v1/admin/health"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    docs = await client.get("/docs")
    assert docs.status_code == 200


async def test_an_unexpected_error_is_logged_without_what_the_client_sent(client, text_search, monkeypatch, caplog):
    """A lower layer's message may quote the request (PostgreSQL quotes a bad tsquery): the log
    line names the error's type and where it was raised, never its message."""

    async def broken(*args, **kwargs):
        raise RuntimeError('syntax error in tsquery: "my secret words"')

    monkeypatch.setattr(text_search, "keyword_search", broken)
    with caplog.at_level("ERROR"):
        response = await client.get("/v1/memory/search?tenant_id=acme&query=my+secret+words&mode=keyword", headers=ACME)
    body = await problem_of(response, 500)
    assert "secret" not in json.dumps(body)
    (record,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.error_type == "builtins.RuntimeError"
    assert any("broken" in frame for frame in record.raised_at)
    assert record.exc_info is None and "secret" not in json.dumps(record.__dict__, default=str)
