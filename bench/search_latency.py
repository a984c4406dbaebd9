"""Search latency through the real HTTP API, with the real model and embedded PostgreSQL.

Starts `memorymesh serve` on a fresh data directory, stores the turns of the first
LoCoMo conversations (each as a user/assistant message of one tenant) and waits until
the background workers have embedded them, then asks the LoCoMo questions as searches:
one client at a time, then several at once. Last, it posts another batch of turns and
searches while the workers embed that backlog: a search must not wait for it.

    .venv/bin/python bench/search_latency.py [--messages 2000] [--searches 300] [--clients 4]

Figures go to bench/results/search_latency.md. They are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from harness import RESULTS, ServerProcess, locomo, percentile

KEY = "bench-admin-key-0000000000"


def load_locomo(limit: int) -> tuple[list[dict[str, str]], list[str]]:
    """The first `limit` turns, and the questions about the conversations they come from."""
    turns: list[dict[str, str]] = []
    questions: list[str] = []
    for conversation in locomo():
        turns += conversation.messages()
        questions += [question.text for question in conversation.questions]
        if len(turns) >= limit:
            break
    return turns[:limit], questions


def summary(latencies_ms: list[float]) -> str:
    return (
        f"p50 {percentile(latencies_ms, 50):.1f} ms, p95 {percentile(latencies_ms, 95):.1f} ms, "
        f"p99 {percentile(latencies_ms, 99):.1f} ms, mean {statistics.mean(latencies_ms):.1f} ms"
    )


async def ingest(client: httpx.AsyncClient, turns: list[dict[str, str]], clients: int) -> float:
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for turn in turns:
        queue.put_nowait(turn)

    async def worker() -> None:
        while not queue.empty():
            turn = queue.get_nowait()
            response = await client.post("/v1/messages", json={"tenant_id": "bench", **turn})
            response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started


async def search(client: httpx.AsyncClient, questions: list[str], clients: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)

    async def worker() -> None:
        while not queue.empty():
            question = queue.get_nowait()
            started = time.perf_counter()
            response = await client.get(
                "/v1/memory/search", params={"tenant_id": "bench", "query": question, "top_k": 10}
            )
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - started


async def drained(client: httpx.AsyncClient) -> bool:
    status = (await client.get("/v1/admin/queue")).raise_for_status().json()
    return status["pending"] + status["claimed"] == 0


async def wait_until_drained(client: httpx.AsyncClient, bound_seconds: float = 600) -> float:
    started = time.perf_counter()
    while not await drained(client):
        if time.perf_counter() - started > bound_seconds:
            raise RuntimeError(f"the backlog did not drain within {bound_seconds}s")
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def search_during_backlog(
    client: httpx.AsyncClient, turns: list[dict[str, str]], questions: list[str]
) -> tuple[list[float], int]:
    """Post the turns in batches, then search one at a time until the workers have caught up."""
    for start in range(0, len(turns), 500):
        batch = [{"tenant_id": "backlog", **turn} for turn in turns[start : start + 500]]
        (await client.post("/v1/messages/batch", json={"messages": batch})).raise_for_status()
    latencies: list[float] = []
    while not await drained(client):
        question = questions[len(latencies) % len(questions)]
        started = time.perf_counter()
        response = await client.get("/v1/memory/search", params={"tenant_id": "bench", "query": question, "top_k": 10})
        response.raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, len(turns)


async def measure(server: ServerProcess, args: argparse.Namespace) -> str:
    turns, questions = load_locomo(args.messages)
    questions = (questions * (args.searches // max(1, len(questions)) + 1))[: args.searches]
    limits = httpx.Limits(max_connections=args.clients * 2)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120, limits=limits) as client:
        ingest_seconds = await ingest(client, turns, args.clients)
        drain_seconds = await wait_until_drained(client)
        await search(client, questions[:20], 1)  # warm-up
        sequential, _ = await search(client, questions, 1)
        concurrent, wall = await search(client, questions, args.clients)
        during_backlog, backlog = await search_during_backlog(client, turns, questions)
    return "\n".join(
        [
            "# Search latency through the HTTP API",
            "",
            f"Command: `.venv/bin/python bench/search_latency.py --messages {args.messages} "
            f"--searches {args.searches} --clients {args.clients}`",
            "",
            f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
            "embedded PostgreSQL 18 + pgvector 0.8.5 (HNSW); all-MiniLM-L6-v2 on the CPU; one Hypercorn process; "
            "default settings (async embedding by in-process workers, claims of 256).",
            f"Data: {len(turns)} LoCoMo turns in one tenant; searches are LoCoMo questions, top_k=10, "
            "each embedding its query (no cache yet).",
            "",
            f"- ingest ({args.clients} clients, single POSTs, async): accepted at "
            f"{len(turns) / ingest_seconds:.1f} messages/s; all embedded {drain_seconds:.1f} s after the last",
            f"- search, 1 client: {summary(sequential)}",
            f"- search, {args.clients} clients: {summary(concurrent)}; {len(concurrent) / wall:.1f} searches/s",
            f"- search, 1 client, while the workers embed a backlog of {backlog} messages posted through the "
            f"batch endpoint: {summary(during_backlog)} ({len(during_backlog)} searches)",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS / "search_latency.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(Path(scratch) / "data", MEMORY_ADMIN_API_KEYS=KEY, MEMORY_QUERY_CACHE_SIZE="0")
        server = server.start().wait_ready()
        try:
            report = asyncio.run(measure(server, args))
        finally:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
