"""Search through the HTTP API at 100,000 (and 1,000,000) messages: this checkout's server and a
baseline checkout's (`--baseline PYTHON`, e.g. main before issue 22), on the same corpus, in one run.

For each size a corpus is built once by bench/corpus.py (COPY, not the API: LoCoMo turns embedded
once, a repeat's vector is its turn's plus small gaussian noise, renormalised; see there), then
the two servers take turns on it, round after round (old then new, then new then old, ...), one
running at a time, so that the noise of a shared machine falls on both. In each turn a server
is started, answers 20 warm-up questions per mode, then LoCoMo questions (top_k=10, no
query-vector cache: each search runs the model) in each mode (semantic, keyword, hybrid), by
one client and by 8 concurrent clients, and is stopped. Reported per size, mode and clients:
p50 / p95 latency and searches/s for old and new, and new over old; and the build's steps,
the database's size, the API process's peak RSS (VmHWM; PostgreSQL not counted).

"new" runs with MEMORY_EMBEDDING_RUNTIME=onnx (the coming default); the baseline with its own
defaults. The embedded PostgreSQL runs with this checkout's MEMORY_POSTGRES_* defaults for new,
and with PostgreSQL's own (what the baseline knew) for old: the file holding them
(pg/memorymesh.conf) is removed before the baseline starts. Retention's schedule is off in
both (the corpus's dates are LoCoMo's, 2020-2023: the default 30-day policy would archive it),
and so is the per-tenant gate (MEMORY_TENANT_MAX_IN_FLIGHT=0: one tenant's 8 clients).

    .venv/bin/python bench/search_ab.py --baseline /work/wt-old/.venv/bin/python \\
        [--sizes 100000] [--million] [--rounds 3] [--data-dir DIR]   # DIR keeps the corpora
    .venv/bin/python bench/search_ab.py --check 3000    # a built corpus against one stored by the API

Figures go to bench/results/search.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import corpus
import httpx
import psutil
from harness import MEMORYMESH, RESULTS, ROOT, ServerProcess, launcher, locomo_questions, machine, percentile
from search import grow, peak_rss_mib, searches

MODES = ("semantic", "keyword", "hybrid")
OLD_ONNX = "old+onnx"  # --split: the baseline with the ONNX embedder, PostgreSQL's own settings
SPLIT_COLUMNS = (
    "messages",
    "mode",
    "clients",
    "b p50 / p95",
    "new p50 / p95",
    "new/b p50",
    "b /s",
    "new /s",
    "new/b rate",
)
SPLIT_HEADER = f"| {' | '.join(SPLIT_COLUMNS).replace('b ', OLD_ONNX + ' ').replace('/b', '/' + OLD_ONNX)} |"
COMMON = {
    "MEMORY_ADMIN_API_KEYS": corpus.KEY,
    "MEMORY_QUERY_CACHE_SIZE": "0",
    "MEMORY_RETENTION_SCHEDULE_SECONDS": "0",
    # One tenant's 8 clients: without the per-tenant gate (4 in progress, 4 waiting), a client
    # that asks again before the server has let go of its last search gets 429 tenant_busy.
    "MEMORY_TENANT_MAX_IN_FLIGHT": "0",
}
NEW = {"MEMORY_EMBEDDING_RUNTIME": "onnx"}

BUILD_COLUMNS = (
    "messages",
    "migrate s",
    "embed s",
    "COPY s",
    "HNSW s",
    "other indexes s",
    "VACUUM ANALYZE s",
    "total min",
    "database MiB",
    "table MiB",
    "HNSW MiB",
    "API RSS MiB",
    "shared_buffers MiB",
)
BUILD_HEADER = f"| {' | '.join(BUILD_COLUMNS)} |"

Key = tuple[int, str, str, int]  # size, side, mode, clients


def serve(side: str, data_dir: Path, executables: dict[str, Path]) -> ServerProcess:
    if side != "new":  # PostgreSQL's own memory settings, as the baseline had them
        (data_dir / "pg" / "memorymesh.conf").unlink(missing_ok=True)
    env = {**COMMON, **(NEW if side != "old" else {})}
    return ServerProcess(data_dir, executables[side], **env).start().wait_ready()


def measure(
    size: int, data_dir: Path, executables: dict[str, Path], questions: list[str], rounds: int, clients: int
) -> tuple[dict[Key, list[float]], dict[Key, float], dict[str, float], dict[str, int]]:
    sides = list(executables)
    latencies: dict[Key, list[float]] = defaultdict(list)
    walls: dict[Key, float] = defaultdict(float)
    rss: dict[str, float] = {}
    shared_buffers: dict[str, int] = {}
    for number in range(rounds):
        for side in sides[number % len(sides) :] + sides[: number % len(sides)]:  # each side first in turn
            server = serve(side, data_dir, executables)
            try:
                for mode in MODES:
                    for count in (1, clients):
                        asked = questions[: len(questions) // 4] if count == 1 else questions
                        times, wall = asyncio.run(searches(server, asked, count, mode))
                        latencies[size, side, mode, count] += times
                        walls[size, side, mode, count] += wall
                        print(
                            f"{size:,} round {number} {side} {mode} x{count}: p50 {percentile(times, 50):.1f} ms, "
                            f"{len(times) / wall:.1f}/s",
                            flush=True,
                        )
                rss[side] = max(rss.get(side, 0.0), peak_rss_mib(server))
                shared_buffers[side] = buffers(data_dir)
            finally:
                server.stop()
    return latencies, walls, rss, shared_buffers


def buffers(data_dir: Path) -> int:
    """The running embedded server's shared_buffers, in 8 kB pages."""
    import asyncpg

    async def show() -> int:
        lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
        conn = await asyncpg.connect(host=lines[4], port=int(lines[3]), user="postgres", database="postgres")
        try:
            return int(await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'"))
        finally:
            await conn.close()

    return asyncio.run(show())


def report(
    args: argparse.Namespace,
    sizes: list[int],
    questions: int,
    latencies: dict[Key, list[float]],
    walls: dict[Key, float],
    rss: dict[int, dict[str, float]],
    shared: dict[int, dict[str, int]],
    builds: dict[int, corpus.Built],
) -> str:
    def cell(values: list[float]) -> str:
        return f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f}"

    def table(base: str) -> list[str]:
        rows = []
        for size in sizes:
            for mode in MODES:
                for count in (1, args.clients):
                    old, new = latencies[size, base, mode, count], latencies[size, "new", mode, count]
                    rate_old = len(old) / walls[size, base, mode, count]
                    rate_new = len(new) / walls[size, "new", mode, count]
                    rows.append(
                        f"| {size:,} | {mode} | {count} | {cell(old)} | {cell(new)} | "
                        f"{percentile(new, 50) / percentile(old, 50):.2f} | {rate_old:.1f} | {rate_new:.1f} | "
                        f"{rate_new / rate_old:.2f} |"
                    )
        return rows

    rows = table("old")
    split = ""
    if args.split:
        split = f"""
The same, against the baseline run with MEMORY_EMBEDDING_RUNTIME=onnx ("{OLD_ONNX}", PostgreSQL's own
memory settings), a third server in the same rounds: what is left of the difference is the code and
the embedded PostgreSQL's settings, not the embedder.

{SPLIT_HEADER}
|---:|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(table(OLD_ONNX))}
"""
    build_rows = []
    for size in sizes:
        b = builds[size]
        hnsw = sum(s for name, s in b.index_s.items() if "hnsw" in name)
        others = sum(b.index_s.values()) - hnsw
        build_rows.append(
            f"| {size:,} | {b.migrate_s:.0f} | {b.embed_s:.0f} | {b.copy_s:.0f} | {hnsw:.0f} | {others:.0f} | "
            f"{b.vacuum_analyze_s:.0f} | {b.total_s / 60:.1f} | {b.database_bytes / 2**20:,.0f} | "
            f"{b.table_bytes / 2**20:,.0f} | {b.indexes_bytes.get('messages_embedding_hnsw', 0) / 2**20:,.0f} | "
            f"{rss[size]['old']:.0f} / {rss[size]['new']:.0f} | "
            f"{shared[size]['old'] * 8 // 1024} / {shared[size]['new'] * 8 // 1024} |"
        )
    command = (
        f".venv/bin/python bench/search_ab.py --baseline {args.baseline} --sizes {' '.join(map(str, args.sizes))}"
        f"{' --million' if args.million else ''}{' --split' if args.split else ''} --rounds {args.rounds} "
        f"--clients {args.clients} --searches {args.searches}"
        f"{'' if args.out == RESULTS / 'search.md' else f' --out {args.out.relative_to(ROOT)}'}"
    )
    return f"""# Search at 100,000 and 1,000,000 messages, this build against a baseline, side by side

Command: `{command}`

Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; {platform.python_implementation()}
{platform.python_version()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, shared with
other engineers' servers, benches and test suites while it ran (so figures are noisy; the two builds
alternate, {args.rounds} rounds, so the ratios hold better than the absolute figures).

old: `{args.baseline}` (its defaults: torch embedder, PostgreSQL's own memory settings).
new: this checkout, MEMORY_EMBEDDING_RUNTIME=onnx, MEMORY_POSTGRES_* at their defaults (shares of RAM).

One tenant holds the whole corpus, built by bench/corpus.py: LoCoMo's 5,882 turns, each embedded
once by the service's embedder (ONNX Runtime), written N times over by COPY in the shape the service
writes; a repeat's text gets a suffix " (r)" and its vector is its turn's plus gaussian noise (sigma
0.01 a dimension, about 0.98 cosine), renormalised; each repeat is conversations of its own; created_at
is LoCoMo's session dates, 3 days earlier per repeat. Retention's schedule is off (those dates are past
the default 30 days), and so is the per-tenant gate (MEMORY_TENANT_MAX_IN_FLIGHT=0).

Per round and build: {questions // 4} LoCoMo questions (conversation 1) by 1 client, then {questions}
by {args.clients} concurrent clients (each sends its next search when its last is answered: under load,
latency is queueing plus service), per mode, no query-vector cache (each search runs the model),
top_k=10, after 20 warm-up searches.

ms, p50 / p95; "new/old p50" below 1 is faster; "new/old rate" above 1 is more searches/s.

| messages | mode | clients | old p50 / p95 | new p50 / p95 | new/old p50 | old /s | new /s | new/old rate |
|---:|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
{split}
Building each corpus (seconds; the migration step is a server of this checkout starting on the empty
directory, the embedding is 5,882 turns once, kept for the next size), its size, and the API
process's peak RSS (old / new, MiB) and the embedded server's shared_buffers (old / new, MiB):

{BUILD_HEADER}
|{"---:|" * len(BUILD_COLUMNS)}
{chr(10).join(build_rows)}
"""


def check(size: int, scratch: Path, vectors: Path) -> None:
    """A built corpus and one stored through the API (both this checkout, onnx): the same answers?"""
    env = {**COMMON, **NEW}
    api_dir, built_dir = scratch / "api", scratch / "built"
    server = ServerProcess(api_dir, MEMORYMESH, **env).start().wait_ready()
    try:
        asyncio.run(grow(server, harness_turns(), 0, size))
    finally:
        server.stop()
    # created_at as the API gives it (now, in order), so that the date words and recency match
    corpus.build(built_dir, size, vectors_cache=vectors, stored_now=True, **env)
    answers: dict[str, dict[tuple[str, str], list[str]]] = {}
    relevance: dict[str, dict[tuple[str, str], list[float]]] = {"api": {}, "built": {}}
    for name, directory in (("api", api_dir), ("built", built_dir)):
        server = ServerProcess(directory, MEMORYMESH, **env).start().wait_ready()
        try:
            with server.client(corpus.KEY) as client:
                queue = client.get("/v1/admin/queue").raise_for_status().json()
                print(f"{name}: queue {queue}")
                answers[name] = {}
                for question in locomo_questions(1)[:10]:
                    for mode in MODES:
                        hits = (
                            client.get(
                                "/v1/memory/search",
                                params={"tenant_id": corpus.TENANT, "query": question, "mode": mode, "top_k": 10},
                            )
                            .raise_for_status()
                            .json()["results"]
                        )
                        answers[name][question, mode] = [h["message"]["content"] for h in hits]
                        relevance[name][question, mode] = [round(h["scores"]["similarity"], 4) for h in hits]
                        if hits:
                            first = hits[0]["message"]
                            one = client.get(f"/v1/messages/{first['id']}", params={"tenant_id": corpus.TENANT})
                            assert one.raise_for_status().json() == first, (one.json(), first)
                count = conversation_count(client, "conv-26")
                print(f"{name}: conv-26 holds {count} messages")
            print(f"{name}: migrations at start: {[line for line in server.lines if 'migrat' in line.lower()]}")
        finally:
            server.stop()
    for (question, mode), api in answers["api"].items():
        built = answers["built"][question, mode]
        same = len(set(api) & set(built))
        scores = "same" if relevance["api"][question, mode] == relevance["built"][question, mode] else "differ"
        order = "same" if api == built else "differs"
        print(f"{mode:8} {same:2}/10 same, order {order}, relevance scores {scores}: {question}")


def harness_turns() -> list[dict[str, str]]:
    from harness import locomo_turns

    return locomo_turns()


def conversation_count(client: httpx.Client, conversation: str) -> int:
    count, cursor = 0, None
    while True:
        params = {"tenant_id": corpus.TENANT, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/conversations/{conversation}/messages", params=params).raise_for_status().json()
        count += len(page["messages"])
        cursor = page.get("next_cursor")
        if not cursor:
            return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="the python of the baseline checkout's venv")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--million", action="store_true", help="also at 1,000,000 messages")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--searches", type=int, default=160, help="per round, build and mode, by the clients")
    parser.add_argument("--data-dir", type=Path, help="keep a corpus per size here (built once)")
    parser.add_argument("--split", action="store_true", help=f"a third server: the baseline with onnx ({OLD_ONNX})")
    parser.add_argument("--check", type=int, help="only compare a built corpus of this size with an API-stored one")
    parser.add_argument("--out", type=Path, default=RESULTS / "search.md")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory(prefix="bench-corpus-check-") as scratch:
            kept = (args.data_dir or Path(scratch)).resolve() / corpus.VECTORS
            check(args.check, Path(scratch), kept)
        return
    if args.baseline is None:
        parser.error("--baseline is required")
    sizes = sorted(set(args.sizes + ([1_000_000] if args.million else [])))
    questions = locomo_questions(1)
    questions = (questions * (args.searches // len(questions) + 1))[: args.searches]
    with tempfile.TemporaryDirectory(prefix="bench-search-ab-") as scratch:
        root = (args.data_dir or Path(scratch)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        baseline = launcher(args.baseline, Path(scratch))
        executables = {"old": baseline, "new": MEMORYMESH, **({OLD_ONNX: baseline} if args.split else {})}
        latencies: dict[Key, list[float]] = {}
        walls: dict[Key, float] = {}
        rss: dict[int, dict[str, float]] = {}
        shared: dict[int, dict[str, int]] = {}
        builds: dict[int, corpus.Built] = {}
        for size in sizes:
            data_dir = root / f"corpus-{size}"
            made = corpus.built(data_dir)
            if made is None:
                shutil.rmtree(data_dir, ignore_errors=True)  # a build cut short
                made = corpus.build(data_dir, size, vectors_cache=root / corpus.VECTORS, **COMMON, **NEW)
            builds[size] = made
            print(f"{size:,}: built in {made.total_s / 60:.1f} min: {made}", flush=True)
            times, wall, peak, buffers_ = measure(size, data_dir, executables, questions, args.rounds, args.clients)
            latencies.update(times)
            walls.update(wall)
            rss[size], shared[size] = peak, buffers_
            text = report(
                args, [s for s in sizes if s in builds], len(questions), latencies, walls, rss, shared, builds
            )
            args.out.write_text(text)  # after each size: a million that runs out of time keeps the first
            print(text, flush=True)


if __name__ == "__main__":
    main()
