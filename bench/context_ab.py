"""POST /v1/context and search latency of two builds side by side: this checkout's server and
another checkout's (`--baseline`, e.g. main in a second worktree), in the same run, so the
noise of a shared machine falls on both.

Starts both servers, stores the first LoCoMo conversation in each (as bench/context.py does),
then asks the same questions of each in turn, round after round: a context at 1,000 tokens
and a plain search (top_k=20), with 1 and with 8 concurrent clients. p50 / p95 in ms, and
the ratio of this build's context p50 to the baseline's.

    git worktree add --detach /tmp/mm-base main          # the baseline, with a layered venv:
    python3.11 -m venv /tmp/mm-base/.venv && echo /tmp/mm-base > /tmp/mm-base/.venv/lib/python3.11/site-packages/a.pth
    echo $PWD/.venv/lib/python3.11/site-packages > /tmp/mm-base/.venv/lib/python3.11/site-packages/b.pth
    .venv/bin/python bench/context_ab.py --baseline /tmp/mm-base/.venv/bin/python

Figures go to bench/results/context_ab.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from context import KEY, TENANT, client_for, context, search
from harness import MEMORYMESH, RESULTS, ServerProcess, launcher, machine, percentile, post_batches, wait_until_drained
from quality import ANSWERABLE, Question, load_locomo, message

KINDS = ("context", "search")


async def rounds_at(
    clients: dict[str, httpx.AsyncClient], questions: list[Question], concurrency: int, rounds: int
) -> dict[str, list[float]]:
    """Each build and kind alone at `concurrency`, in turn, `rounds` times: its timings."""
    gate = asyncio.Semaphore(concurrency)
    times: dict[str, list[float]] = {f"{n} {k}": [] for n in clients for k in KINDS}

    async def one(name: str, kind: str, question: Question) -> None:
        async with gate:
            started = time.perf_counter()
            if kind == "context":
                await context(clients[name], question, 1_000)
            else:
                await search(clients[name], question)
            times[f"{name} {kind}"].append((time.perf_counter() - started) * 1000)

    for _ in range(rounds):
        for name in clients:
            for kind in KINDS:
                await asyncio.gather(*(one(name, kind, q) for q in questions))
    return times


async def measure(
    servers: dict[str, ServerProcess], questions: list[Question], rounds: int
) -> dict[int, dict[str, list[float]]]:
    for server in servers.values():
        async with client_for(server, 4) as client:
            await post_batches(client, [message(TENANT, t) for t in load_locomo(1).turns])
            await wait_until_drained(client, give_up_after=600)
    clients = {name: client_for(server, 8) for name, server in servers.items()}
    try:
        return {c: await rounds_at(clients, questions, c, rounds) for c in (1, 8)}
    finally:
        for client in clients.values():
            await client.aclose()


def report(args: argparse.Namespace, questions: int, timings: dict[int, dict[str, list[float]]]) -> str:
    def cell(values: list[float]) -> str:
        return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f}"

    def ratio(t: dict[str, list[float]]) -> float:
        return percentile(t["this context"], 50) / percentile(t["baseline context"], 50)

    rows = "\n".join(
        f"| {c} | {cell(t['this context'])} | {cell(t['this search'])} | {cell(t['baseline context'])} "
        f"| {cell(t['baseline search'])} | {ratio(t):.2f} |"
        for c, t in timings.items()
    )
    return f"""# POST /v1/context latency: this build against a baseline, side by side

{datetime.now(UTC):%Y-%m-%d}, {machine()}, CPython {platform.python_version()}.
Command: `.venv/bin/python bench/context_ab.py --baseline {args.baseline}` ({args.rounds} rounds of
{questions} LoCoMo questions, conversation 1, each build and call alone at its concurrency in turn).

ms, p50 / p95; the ratio is this build's context p50 over the baseline's.

| clients | context (this) | search (this) | context (baseline) | search (baseline) | context ratio |
|---|---|---|---|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the python of the baseline checkout's venv")
    parser.add_argument("--questions", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "context_ab.md")
    args = parser.parse_args()
    questions = [q for q in load_locomo(1).questions if q.category in ANSWERABLE][: args.questions]
    with tempfile.TemporaryDirectory(prefix="bench-context-ab-") as directory:
        base = Path(directory)
        executables = {"this": MEMORYMESH, "baseline": launcher(args.baseline, base)}
        env = {"MEMORY_ADMIN_API_KEYS": KEY, "MEMORY_RETENTION_SCHEDULE_SECONDS": "0", "MEMORY_QUERY_CACHE_SIZE": "0"}
        servers = {n: ServerProcess(base / n, executable=e, **env).start() for n, e in executables.items()}
        try:
            for server in servers.values():
                server.wait_ready()
            timings = asyncio.run(measure(servers, questions, args.rounds))
        finally:
            for server in servers.values():
                server.stop()
    text = report(args, len(questions), timings)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
