"""One tenant does its worst within its rate limit; another tenant's searches still complete.

The real server with the README's example limit (120/minute). Tenant `loud` sends, at once,
40 keyword searches of 600 words that each match most of its 1,000 messages and 4 batches
of 500 messages, and tries to store metadata of almost a megabyte. Meanwhile tenant `quiet`
searches one query after another. Asserted on completion and status, not on time (the
figures are in bench/results/noisy_neighbour.md).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess, wait_until

pytestmark = pytest.mark.slow

ADMIN_KEY = "e2e-noisy-admin-key-000001"
QUIET_KEY = "e2e-noisy-quiet-key-000001"
LOUD_KEY = "e2e-noisy-loud-key-0000001"
VOCABULARY = [f"v{i:03d}q" for i in range(600)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("noisy") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{QUIET_KEY}:quiet,{LOUD_KEY}:loud",
        MEMORY_TENANT_RATE_LIMIT="120/minute",
        MEMORY_RETENTION_SCHEDULE_SECONDS="0",
    ).start()
    process.wait_ready()
    yield process
    # Stopping while a worker writes a batch's vectors can hang the pool's close (asyncpg#431):
    # erase the backlog and let the workers go idle first.
    with process.client(ADMIN_KEY) as admin:
        assert admin.delete("/v1/admin/tenants/loud").status_code == 200

        def idle() -> bool:
            queue = admin.get("/v1/admin/queue").json()
            return queue["pending"] == 0 and queue["claimed"] == 0

        wait_until(idle, 120, "the workers idle")
    assert process.stop() == 0, process.output
    assert "Traceback" not in process.output, process.output


def message(tenant: str, content: str, **fields: object) -> dict[str, object]:
    return {"tenant_id": tenant, "conversation_id": "c1", "role": "user", "content": content, **fields}


async def seeded(server: ServerProcess) -> None:
    rng = random.Random(3)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": ADMIN_KEY}, timeout=300) as admin:
        for _ in range(2):
            batch = [message("loud", " ".join(rng.sample(VOCABULARY, 40))) for _ in range(500)]
            assert (await admin.post("/v1/messages/batch", json={"messages": batch})).status_code == 202
        quiet = [message("quiet", f"note {i}: the quiet tenant's own words, {VOCABULARY[i]}") for i in range(20)]
        answer = await admin.post("/v1/messages/batch?wait=true", json={"messages": quiet})
        assert answer.status_code in (201, 202)


async def attack(server: ServerProcess) -> Counter[str]:
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"x-api-key": LOUD_KEY}, timeout=120, limits=limits
    ) as loud:
        query = {"tenant_id": "loud", "query": " ".join(VOCABULARY), "mode": "keyword", "top_k": 100}
        searches = [loud.get("/v1/memory/search", params=query) for _ in range(40)]
        text = "lorem ipsum dolor " * 400
        batches = [
            loud.post("/v1/messages/batch", json={"messages": [message("loud", f"{n} {i} {text}") for i in range(500)]})
            for n in range(4)
        ]
        heavy = [loud.post("/v1/messages", json=message("loud", "heavy", metadata={"blob": "x" * 940_000}))]
        for answer in await asyncio.gather(*searches, *batches, *heavy, return_exceptions=True):
            if isinstance(answer, BaseException):
                statuses[type(answer).__name__] += 1
            else:
                statuses[f"{answer.status_code} {answer.json().get('code', '')}".strip()] += 1
    return statuses


async def quiet_searches(server: ServerProcess, started: asyncio.Event) -> list[int]:
    answers = []
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": QUIET_KEY}, timeout=120) as quiet:
        await started.wait()
        for i in range(10):
            found = await quiet.get("/v1/memory/search", params={"tenant_id": "quiet", "query": f"note {i} words"})
            answers.append(found.status_code)
            if found.status_code == 200:
                assert all(r["message"]["tenant_id"] == "quiet" for r in found.json()["results"])
    return answers


async def test_a_tenant_at_its_worst_does_not_stop_another(server: ServerProcess) -> None:
    await seeded(server)
    started = asyncio.Event()

    async def loud() -> Counter[str]:
        started.set()
        return await attack(server)

    loud_statuses, quiet_statuses = await asyncio.gather(loud(), quiet_searches(server, started))

    assert quiet_statuses == [200] * 10  # every search of the other tenant answered
    assert loud_statuses["422 validation_failed"] == 1  # the metadata is refused, not stored
    assert loud_statuses["429 tenant_busy"] >= 1  # the burst met its share
    assert set(loud_statuses) <= {"200", "202", "422 validation_failed", "429 tenant_busy"}, loud_statuses
