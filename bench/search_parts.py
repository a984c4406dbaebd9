"""Where one search's time goes: each part measured alone beside the whole, for this build and
(with `--baseline`) another checkout's, alternating in the same run so the noise of a shared
machine falls on both.

Each build stores LoCoMo's turns (--messages of them, one tenant) through its own server and
waits until they are embedded (a data dir per build, kept across rounds), then, per round:

- over HTTP, one client: GET /v1/memory/search for each question (hybrid, top_k=10, no
  query-vector cache), then the same 8 clients at once for searches/s;
- in this process, through the container as the API wires it, the same questions again:
  the whole use case (SearchMemory), and each part alone: the query's encoding, the vector
  search (given the vector), the keyword search, reading the hits' rows, and the neighbours
  (adjacent turns of the fused top, and their rows).

p50 per part in ms; "rest" is the HTTP search's p50 less the sum of the parts' p50s: the
event loop, validation, ranking, JSON and the log line.

    .venv/bin/python bench/search_parts.py [--baseline /work/wt-old/.venv/bin/python] [--rounds 2]

Figures go to bench/results/search_parts.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from harness import (
    MEMORYMESH,
    RESULTS,
    ServerProcess,
    launcher,
    locomo_questions,
    locomo_turns,
    machine,
    percentile,
    post_batches,
    wait_until_drained,
)

KEY = "bench-admin-key-0000000000"
TENANT = "bench"
PARTS = ("encode", "vector", "keyword", "rows", "neighbours")
T = TypeVar("T")
SERVER_ENV = {"MEMORY_ADMIN_API_KEYS": KEY, "MEMORY_QUERY_CACHE_SIZE": "0"}


async def timed(out: list[float], call: Awaitable[T]) -> T:
    """`call`'s value; its time (ms) appended to `out`."""
    started = time.perf_counter()
    value = await call
    out.append((time.perf_counter() - started) * 1000)
    return value


async def over_http(url: str, questions: list[str], clients: int) -> tuple[list[float], float]:
    """Latencies (ms) of one client asking every question; searches/s of `clients` at once."""
    params = {"tenant_id": TENANT, "top_k": 10, "mode": "hybrid"}
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": KEY}, timeout=60) as client:

        async def ask(question: str) -> None:
            (await client.get("/v1/memory/search", params={**params, "query": question})).raise_for_status()

        alone: list[float] = []
        for question in questions:
            await timed(alone, ask(question))
        pending = list(questions) * 2
        started = time.perf_counter()

        async def asker() -> None:
            while pending:
                await ask(pending.pop())

        await asyncio.gather(*(asker() for _ in range(clients)))
        return alone, len(questions) * 2 / (time.perf_counter() - started)


async def neighbours(text: Any, messages: Any, lenders: list[Any]) -> None:
    """What a hybrid search asks about its fused top: the adjacent turns, then their rows."""
    adjacent = await text.adjacent(TENANT, lenders)
    ids = [n for found in adjacent.values() for n in found if isinstance(n, uuid.UUID)]
    if ids:  # a build whose neighbours come as ids, not with their rows
        await messages.get_many(TENANT, ids)


async def in_process(data_dir: Path, questions: list[str]) -> dict[str, list[float]]:
    """Each part alone, and the use case whole, as the API's container wires them."""
    from application.ports.filters import SearchFilters
    from application.search_memory import SearchQuery
    from config.container import Container, resolved, running
    from config.settings import Settings
    from domain.access import Principal

    settings = Settings(_env_file=None, data_dir=data_dir, query_cache_size=0)  # type: ignore[call-arg]
    out: dict[str, list[float]] = {name: [] for name in (*PARTS, "whole")}
    async with running(settings, Container.embedder, Container.database, Container.vector_index) as container:
        embedder, index = await resolved(container.embedder()), await resolved(container.vector_index())
        text, messages = await resolved(container.text_search()), await resolved(container.messages())
        search = await resolved(container.search_memory())
        principal = Principal(key_id="bench", tenants=frozenset(), admin=True)
        k, none = search._settings.candidates, SearchFilters()  # as many as the use case asks for
        for question in questions:
            await embedder.embed_query(question)  # the first of a text may warm caches: not measured
            vector = await timed(out["encode"], embedder.embed_query(question))
            hits = await timed(out["vector"], index.search(TENANT, vector, k, none))
            words = await timed(out["keyword"], text.keyword_search(TENANT, question, k, none))
            ids = list({h.message_id for h in hits} | {h.message_id for h in words})
            await timed(out["rows"], messages.get_many(TENANT, ids))
            await timed(out["neighbours"], neighbours(text, messages, ids[:5]))
            query = SearchQuery(tenant_id=TENANT, query=question, top_k=10, mode="hybrid")
            await timed(out["whole"], search(principal, query))
    return out


def measure(data_dir: Path, executable: Path, questions: list[str], clients: int, messages: int) -> dict[str, Any]:
    """One round of one build (run by that build's interpreter)."""
    fresh = not data_dir.exists()
    server = ServerProcess(data_dir, executable=executable, **SERVER_ENV).start()
    try:
        server.wait_ready()

        async def build() -> None:
            async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120) as client:
                turns = [{"tenant_id": TENANT, **t} for t in locomo_turns()[:messages]]
                await post_batches(client, turns)
                await wait_until_drained(client, 3600)

        if fresh:
            asyncio.run(build())
            # autovacuum's analyse of the new rows: steady state, not the minutes after an import
            time.sleep(70 if messages > 1_000 else 0)
        alone, per_second = asyncio.run(over_http(server.url, questions, clients))
    finally:
        server.stop()
    parts = asyncio.run(in_process(data_dir, questions))
    return {"http": alone, "per_second": per_second, **parts}


def child(args: argparse.Namespace) -> None:
    questions = locomo_questions()[: args.questions]
    result = measure(args.data_dir, Path(args.executable), questions, args.clients, args.messages)
    print("RESULT " + json.dumps(result))


def run_child(python: Path, executable: Path, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [str(python), __file__, "--child", "--data-dir", str(data_dir), "--executable", str(executable)]
    command += ["--questions", str(args.questions), "--clients", str(args.clients), "--messages", str(args.messages)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=Path(python).parents[2])
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{python} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def p50(values: list[float]) -> float:
    return percentile(values, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout's python: measured beside this build")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=5_882, help="LoCoMo turns stored (5,882: all of them)")
    parser.add_argument("--out", type=Path, default=RESULTS / "search_parts.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--executable", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="memorymesh-parts-") as tmp:
        builds = {"this build": (Path(sys.executable), MEMORYMESH, Path(tmp) / "new")}
        if args.baseline:
            builds["baseline"] = (args.baseline, launcher(args.baseline, Path(tmp)), Path(tmp) / "old")
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
        for round_ in range(args.rounds):
            for name, (python, executable, data_dir) in builds.items():
                print(f"round {round_ + 1}: {name}", file=sys.stderr)
                rounds[name].append(run_child(python, executable, data_dir, args))
    report(rounds, args)


def report(rounds: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """Per build, the median over rounds of each part's p50."""
    rows: dict[str, dict[str, float]] = {}
    for name, results in rounds.items():
        row = {key: statistics.median(p50(r[key]) for r in results) for key in (*PARTS, "whole", "http")}
        row["per_second"] = statistics.median(r["per_second"] for r in results)
        row["sum"] = sum(row[part] for part in PARTS)
        rows[name] = row
    names = list(rows)
    lines = [
        "# One hybrid search, part by part",
        "",
        f"`{' '.join(['.venv/bin/python', 'bench/search_parts.py', *sys.argv[1:]])}` on {machine()}, "
        f"{datetime.now(UTC):%Y-%m-%d}: {args.messages:,} LoCoMo turns of one tenant, {args.questions} questions, "
        f"{args.rounds} rounds alternating the builds; p50 in ms (the median over rounds), one client unless said.",
        "",
        "| | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"),
        "|---|" + "---:|" * (len(names) + (len(names) == 2)),
    ]
    labels = {
        "encode": "the query's encoding",
        "vector": "vector search (given the vector)",
        "keyword": "keyword search",
        "rows": "the hits' rows",
        "neighbours": "neighbours (adjacent turns and their rows)",
        "sum": "**sum of the parts**",
        "whole": "the use case, in process",
        "http": "**the search over HTTP**",
        "per_second": f"searches/s, {args.clients} clients over HTTP",
    }
    for key, label in labels.items():
        values = [rows[name][key] for name in names]
        ratio = f" | {values[0] / values[1]:.2f}x" if len(values) == 2 and values[1] else ""
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + ratio + " |")
    lines.append("")
    for name in names:
        row = rows[name]
        lines.append(
            f"- {name}: the HTTP search is {row['http'] / row['sum']:.2f}x the sum of its parts; "
            f"the rest ({row['http'] - row['sum']:.1f} ms) is the event loop, validation, ranking, JSON, the log line."
        )
    lines.append(f"\nPython {platform.python_version()}.")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
