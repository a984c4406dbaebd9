"""Load shedding on the real server: past MEMORY_HTTP_MAX_IN_FLIGHT a request is answered 503
overloaded with Retry-After at once, a shed write stores nothing, an accepted one is kept,
and probes and /metrics answer throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess

KEY = "e2e-overload-acme-key-0001"
HEADERS = {"x-api-key": KEY}
IN_FLIGHT = 2
BATCHES = 8
BATCH_SIZE = 100  # embedded inline: each batch holds its slot for a second or so


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("overload") / "data",
        MEMORY_API_KEYS=f"{KEY}:acme",
        MEMORY_EMBEDDING_MODE="inline",
        MEMORY_HTTP_MAX_IN_FLIGHT=str(IN_FLIGHT),
        MEMORY_HTTP_QUEUE_WAIT_SECONDS="0.1",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output
    assert "Traceback" not in process.output, process.output


def batch(n: int) -> dict:
    return {
        "messages": [
            {"tenant_id": "acme", "conversation_id": f"flood-{n}", "role": "user", "content": f"batch {n} line {i}"}
            for i in range(BATCH_SIZE)
        ]
    }


def stored(client: httpx.Client, conversation: str) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, str | int] = {"tenant_id": "acme", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/v1/conversations/{conversation}/messages", params=params)
        assert page.status_code == 200, page.text
        count += len(page.json()["messages"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return count


def metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} not in /metrics"
    return values[0]


async def flood(url: str) -> tuple[list[httpx.Response], list[int], list[float]]:
    """BATCHES writes at once; while they run, probes and scrapes (which must never wait)."""
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as client:
        writes = [asyncio.create_task(client.post("/v1/messages/batch", json=batch(n))) for n in range(BATCHES)]
        probes: list[int] = []
        in_flight: list[float] = []
        while not all(w.done() for w in writes):
            probes.append((await client.get("/v1/admin/health")).status_code)
            probes.append((await client.get("/v1/admin/readiness")).status_code)
            in_flight.append(metric((await client.get("/metrics")).text, "memorymesh_http_requests_in_flight"))
            await asyncio.sleep(0.05)
        return [w.result() for w in writes], probes, in_flight


def test_requests_past_the_bound_are_shed_at_once_and_nothing_accepted_is_lost(server: ServerProcess) -> None:
    answers, probes, in_flight = asyncio.run(flood(server.url))

    statuses = sorted(a.status_code for a in answers)
    shed = [a for a in answers if a.status_code == 503]
    assert set(statuses) == {201, 503}, statuses
    assert len(shed) <= BATCHES - IN_FLIGHT, statuses
    for answer in shed:
        assert answer.headers["retry-after"] == "2"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "overloaded"
    # Refused after the 0.1 s wait, not after a batch's worth of the model.
    fastest_accepted = min(a.elapsed for a in answers if a.status_code == 201)
    assert max(a.elapsed for a in shed) < fastest_accepted, [(a.status_code, a.elapsed) for a in answers]
    assert probes and set(probes) == {200}
    assert max(in_flight) == IN_FLIGHT

    with server.client(KEY) as client:
        for n, answer in enumerate(answers):  # each batch whole (201) or not at all (503)
            assert stored(client, f"flood-{n}") == (BATCH_SIZE if answer.status_code == 201 else 0)
        text = client.get("/metrics").text
        assert metric(text, "memorymesh_http_shed_total") == len(shed)
        assert metric(text, "memorymesh_http_requests_in_flight") == 0
        # Once the flood is over, the process serves as before.
        assert client.post("/v1/messages/batch", json=batch(BATCHES)).status_code == 201
