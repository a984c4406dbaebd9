"""The write routes over in-memory adapters: 202/201, ?wait, idempotency, batches, the queue."""

import uuid
from dataclasses import replace

import pytest

from domain.message import EmbeddingStatus
from tests.unit.conftest import ACME_KEY, ADMIN_KEY
from tests.unit.test_http_api import ACME, message, problem_of

ADMIN = {"x-api-key": ADMIN_KEY}


async def test_async_store_answers_202_pending_and_wait_answers_201_embedded(client):
    accepted = await client.post("/v1/messages", json=message(), headers=ACME)
    assert accepted.status_code == 202
    assert (await accepted.get_json())["embedding_status"] == "pending"

    waited = await client.post("/v1/messages?wait=true", json=message(content="green tea"), headers=ACME)
    assert waited.status_code == 201
    assert (await waited.get_json())["embedding_status"] == "embedded"


async def test_an_idempotency_key_stores_once_and_replays_the_same_status(client, table):
    headers = {**ACME, "Idempotency-Key": "order-42"}
    first = await client.post("/v1/messages", json=message(), headers=headers)
    again = await client.post("/v1/messages", json=message(), headers=headers)

    assert first.status_code == again.status_code == 202
    assert (await first.get_json())["id"] == (await again.get_json())["id"]
    assert (await again.get_json())["client_message_id"] == "order-42"
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(table.rows) == 1


async def test_a_client_message_id_field_works_like_the_header(client, table):
    first = await client.post("/v1/messages", json=message(client_message_id="m-1"), headers=ACME)
    again = await client.post("/v1/messages", json=message(), headers={**ACME, "Idempotency-Key": "m-1"})
    assert (await first.get_json())["id"] == (await again.get_json())["id"]
    assert len(table.rows) == 1


async def test_a_reused_key_for_another_message_is_409(client):
    headers = {**ACME, "Idempotency-Key": "order-42"}
    await client.post("/v1/messages", json=message(), headers=headers)
    body = await problem_of(await client.post("/v1/messages", json=message(content="other"), headers=headers), 409)
    assert body["code"] == "idempotency_conflict" and "order-42" in body["detail"]


@pytest.mark.parametrize(
    ("headers", "fields", "named"),
    [
        ({"Idempotency-Key": "a"}, {"client_message_id": "b"}, "client_message_id"),
        ({"Idempotency-Key": "not a valid key!"}, {}, "client_message_id"),
    ],
)
async def test_a_bad_idempotency_key_is_422_naming_it(client, headers, fields, named):
    body = await problem_of(await client.post("/v1/messages", json=message(**fields), headers={**ACME, **headers}), 422)
    assert named in [e["field"] for e in body["errors"]]


async def test_a_batch_answers_in_order_and_waits_when_asked(client):
    batch = {"messages": [message(content=f"note {i}") for i in range(20)]}
    accepted = await client.post("/v1/messages/batch", json=batch, headers=ACME)
    assert accepted.status_code == 202
    assert [m["content"] for m in (await accepted.get_json())["messages"]] == [f"note {i}" for i in range(20)]

    waited = await client.post("/v1/messages/batch?wait=true", json={"messages": [message(content="x")]}, headers=ACME)
    assert waited.status_code == 201
    assert [m["embedding_status"] for m in (await waited.get_json())["messages"]] == ["embedded"]


@pytest.mark.parametrize(
    ("batch", "named"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [message()] * 501}, "messages"),
        ({"messages": [message(), message(tenant_id="acme-labs")]}, "messages[1].tenant_id"),
        ({"messages": [message(), message(content="")]}, "messages[1].content"),
        ({"messages": [message(), {"tenant_id": "acme"}]}, "messages.1.role"),
        ({"message": [message()]}, "messages"),
    ],
)
async def test_a_bad_batch_is_422_naming_the_message_and_stores_nothing(client, table, batch, named):
    body = await problem_of(await client.post("/v1/messages/batch", json=batch, headers=ACME), 422)
    assert named in [e["field"] for e in body["errors"]], body
    assert table.rows == {}


async def test_a_batch_may_be_larger_than_one_message_may(client, settings):
    # The single-message limit here is 64 KiB; a batch has its own, larger limit.
    batch = {"messages": [message(content="y" * 900) for _ in range(100)]}
    accepted = await client.post("/v1/messages/batch", json=batch, headers=ACME)
    assert accepted.status_code == 202, await accepted.get_data()


async def test_the_queue_route_is_for_admins(client):
    await client.post("/v1/messages", json=message(), headers=ACME)
    await problem_of(await client.get("/v1/admin/queue", headers=ACME), 403)
    await problem_of(await client.get("/v1/admin/queue"), 401)

    report = await client.get("/v1/admin/queue", headers=ADMIN)
    assert report.status_code == 200
    body = await report.get_json()
    assert set(body) == {"pending", "claimed", "failed", "oldest_pending_age_seconds", "jobs_queued", "this_process"}
    assert body["pending"] + body["claimed"] + body["this_process"]["embedded"] >= 1


async def test_the_api_key_of_a_tenant_cannot_batch_into_another(client, table):
    batch = {"messages": [message(tenant_id="globex")]}
    await problem_of(await client.post("/v1/messages/batch", json=batch, headers={"x-api-key": ACME_KEY}), 403)
    assert table.rows == {}


async def test_an_idempotency_key_header_on_a_batch_is_refused_not_ignored(client, table):
    batch = {"messages": [message()]}
    body = await problem_of(
        await client.post("/v1/messages/batch", json=batch, headers={**ACME, "Idempotency-Key": "k"}), 422
    )
    assert "client_message_id" in body["detail"]
    assert table.rows == {}


async def test_admins_put_failed_messages_back_in_the_queue(client, table):
    stored = await (await client.post("/v1/messages?wait=true", json=message(), headers=ACME)).get_json()
    message_id = uuid.UUID(stored["id"])
    # As if every try had failed (the worker in this app would otherwise embed it at once).
    table.rows[message_id] = replace(
        table.rows[message_id], embedding_status=EmbeddingStatus.FAILED, embedding_error="boom"
    )

    await problem_of(await client.post("/v1/admin/queue/retry-failed", json={}, headers=ACME), 403)
    answer = await client.post("/v1/admin/queue/retry-failed", json={"tenant_id": "acme"}, headers=ADMIN)
    assert await answer.get_json() == {"requeued": 1}
    again = await client.get(f"/v1/messages/{message_id}?tenant_id=acme", headers=ACME)
    assert (await again.get_json())["embedding_error"] is None
