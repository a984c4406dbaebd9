"""An API process SIGKILLed mid-request, with in-process workers mid-batch: once a new process
is up and the clients have retried what got no answer (with the same client_message_id),
every message is stored once, and none is left pending (claimed or not) or failed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx

from tests.e2e.server import ServerProcess

KEY = "e2e-api-kill-acme-key-0001"
CLIENTS = 4
WRITES_BEFORE_KILL = 200
BACKLOG = 300  # a batch the in-process workers are still embedding when the process dies


def message(n: int) -> dict[str, str]:
    return {
        "tenant_id": "acme",
        "conversation_id": f"c{n % CLIENTS}",
        "role": "user",
        "content": f"message {n}: the orchard needs pruning before the frost",
        "client_message_id": f"m{n}",
    }


async def writer(url: str, first: int, sent: list[int], unanswered: list[int], going: asyncio.Event) -> None:
    """Writes one message at a time until the process dies; notes the one that got no answer."""
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": KEY}, timeout=30) as client:
        n = first
        while True:
            sent.append(n)
            if len(sent) >= WRITES_BEFORE_KILL:
                going.set()
            try:
                answer = await client.post("/v1/messages", json=message(n))
                assert answer.status_code == 202, answer.text
            except httpx.TransportError:  # the process died with this request in it
                unanswered.append(n)
                return
            n += CLIENTS


def test_an_api_process_killed_mid_request_strands_and_duplicates_nothing(tmp_path: Path, database_url: str) -> None:
    api = ServerProcess(
        tmp_path / "api",
        MEMORY_DATABASE_URL=database_url,
        MEMORY_API_KEYS=f"{KEY}:acme",
        MEMORY_EMBEDDING_BATCH_SIZE="8",
        MEMORY_EMBEDDING_LEASE_SECONDS="3",
        MEMORY_EMBEDDING_SWEEP_SECONDS="1",
    ).start()
    api.wait_ready()
    backlog = [message(100_000 + i) for i in range(BACKLOG)]
    with api.client(KEY) as client:
        assert client.post("/v1/messages/batch", json={"messages": backlog}).status_code == 202
    sent: list[int] = []
    unanswered: list[int] = []

    async def write_then_kill() -> None:
        going = asyncio.Event()  # well into the writes, with the workers busy on the backlog
        writers = [asyncio.create_task(writer(api.url, i, sent, unanswered, going)) for i in range(CLIENTS)]
        await going.wait()
        assert await claimed(database_url) > 0, "no batch in the workers' hands: the lease path goes untested"
        assert api.process is not None
        api.process.kill()  # SIGKILL: no shutdown, no claim handed back, requests cut mid-way
        await asyncio.gather(*writers)

    asyncio.run(write_then_kill())
    assert unanswered, "no request was cut off: the kill came between requests"

    api.start().wait_ready()  # a new process on the same database and port
    try:
        with api.client(KEY) as client:
            for n in unanswered:  # the client retries what got no answer: stored once either way
                answer = client.post("/v1/messages", json=message(n))
                assert answer.status_code == 202, answer.text
            deadline = time.monotonic() + 120
            while (queue := counts(database_url)).get("pending", 0):  # claimed rows are pending too
                assert time.monotonic() < deadline, f"still waiting after 120 s: {queue}"
                time.sleep(0.2)
    finally:
        assert api.stop() == 0, api.output
    assert "Traceback" not in api.output, api.output

    stored = asyncio.run(client_ids(database_url))
    expected = {f"m{n}" for n in sent} | {m["client_message_id"] for m in backlog}
    assert sorted(stored) == sorted(expected)  # every message, once
    assert counts(database_url) == {"embedded": len(expected)}


async def claimed(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages WHERE embedding_claim IS NOT NULL"))
    finally:
        await conn.close()


async def client_ids(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["client_message_id"] for r in await conn.fetch("SELECT client_message_id FROM messages")]
    finally:
        await conn.close()


def counts(database_url: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        conn = await asyncpg.connect(database_url)
        try:
            found = await conn.fetch("SELECT embedding_status, count(*) AS n FROM messages GROUP BY 1")
        finally:
            await conn.close()
        return {r["embedding_status"]: r["n"] for r in found}

    return asyncio.run(read())
