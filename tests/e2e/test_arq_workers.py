"""arq end to end: the real API hands work through the real Redis to separate worker processes."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import numpy as np
import pytest
import redis

from tests.e2e.server import ServerProcess, WorkerProcess, mapped_libraries, wait_until

ADMIN_KEY = "e2e-arq-admin-key-0000001"
REDIS_URL = "redis://127.0.0.1:6379/0"
MESSAGES = 600


@pytest.fixture
def arq_env(database_url: str) -> Iterator[dict[str, str]]:
    queue_name = f"e2e:{uuid.uuid4().hex}"  # a queue of its own on the shared Redis
    yield {
        "MEMORY_DATABASE_URL": database_url,
        "MEMORY_QUEUE": "arq",
        "MEMORY_REDIS_URL": REDIS_URL,
        "MEMORY_QUEUE_NAME": queue_name,
        "MEMORY_ADMIN_API_KEYS": ADMIN_KEY,
        "MEMORY_EMBEDDING_BATCH_SIZE": "8",
        "MEMORY_EMBEDDING_LEASE_SECONDS": "3",
        "MEMORY_EMBEDDING_SWEEP_SECONDS": "1",
    }
    with redis.Redis.from_url(REDIS_URL) as client:  # leave nothing behind
        job_keys = [b"arq:job:" + job_id for job_id in client.zrange(queue_name, 0, -1)]
        client.delete(queue_name, *client.keys(f"{queue_name}:*"), *job_keys)


@pytest.fixture
def api(tmp_path: Path, arq_env: dict[str, str]) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "api", **arq_env).start().wait_ready()
    yield server
    assert server.stop() == 0, server.output


def queue_of(client: httpx.Client) -> dict:
    response = client.get("/v1/admin/queue")
    assert response.status_code == 200, response.text
    return response.json()


def sentences(count: int) -> list[str]:
    subjects = ["my sister", "the landlord", "our dentist", "the new manager", "grandpa", "the plumber"]
    actions = ["called about", "forgot", "rescheduled", "asked twice about", "paid for", "complained about"]
    things = ["the boat trip", "a piano lesson", "the roof repair", "jazz tickets", "the vet visit"]
    return [f"{subjects[i % 6]} {actions[i // 6 % 6]} {things[i // 36 % 5]} (note {i})." for i in range(count)]


def test_a_message_posted_with_wait_is_embedded_by_a_worker_process(api, tmp_path, arq_env):
    worker = WorkerProcess(tmp_path / "worker", **arq_env).start().wait_ready()
    try:
        with api.client(ADMIN_KEY) as client:
            body = {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": "I keep bees on the roof."}
            stored = client.post("/v1/messages", params={"wait": "true"}, json=body)
            assert stored.status_code == 201, stored.text
            assert stored.json()["embedding_status"] == "embedded"
            found = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": "beekeeping hobby"})
            assert [r["message"]["id"] for r in found.json()["results"]] == [stored.json()["id"]]
        assert ready_check(api)["queue"] == "ok"
        assert worker.process is not None  # the worker, too, embeds on ONNX Runtime, without torch
        assert not [name for name in mapped_libraries(worker.process.pid) if "torch" in name]
    finally:
        assert worker.stop() == 0, worker.output
    assert "Traceback" not in worker.output, worker.output


def ready_check(server: ServerProcess) -> dict:
    with server.client() as client:
        return client.get("/v1/admin/readiness").json()["checks"]


def test_a_worker_killed_mid_batch_loses_nothing_and_writes_nothing_wrong(api, tmp_path, arq_env, database_url):
    texts = sentences(MESSAGES)
    first = WorkerProcess(tmp_path / "first", **arq_env).start().wait_ready()
    with api.client(ADMIN_KEY) as client:
        for start in range(0, MESSAGES, 300):
            batch = [
                {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": t}
                for t in texts[start : start + 300]
            ]
            assert client.post("/v1/messages/batch", json={"messages": batch}).status_code == 202

        wait_until(lambda: queue_of(client)["claimed"] > 0, 60, "claimed by the first worker")
        first.kill()  # SIGKILL in the middle of a batch: its claim stays held until the lease runs out
        left = queue_of(client)
        assert left["pending"] + left["claimed"] > 0, left  # work remained for the next worker

        second = WorkerProcess(tmp_path / "second", **arq_env).start().wait_ready()
        try:
            done = wait_until(lambda: (q := queue_of(client))["pending"] + q["claimed"] == 0 and q, 180, "all embedded")
        finally:
            assert second.stop() == 0, second.output
    assert done["failed"] == 0, done

    rows = asyncio.run(stored_vectors(database_url))
    assert sorted(r[0] for r in rows) == sorted(texts)  # every message, once
    assert {r[1] for r in rows} == {"embedded"}
    expected = reference_vectors([r[0] for r in rows])
    actual = np.array([r[2] for r in rows])
    similarity = np.sum(expected * actual, axis=1)  # both unit length
    assert similarity.min() > 0.999, "a message holds another text's vector"


async def stored_vectors(database_url: str) -> list[tuple[str, str, list[float]]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT content, embedding_status, embedding::text AS v FROM messages")
    finally:
        await conn.close()
    return [(r["content"], r["embedding_status"], [float(x) for x in r["v"].strip("[]").split(",")]) for r in rows]


def reference_vectors(texts: list[str]) -> np.ndarray:
    from adapters.embeddings.sentence_transformers import bundled_model_path, load_model

    model = load_model(bundled_model_path(), "cpu")
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True))
