"""Search latency in the first seconds after a bulk import, against steady state: this build
and a baseline (`--baseline`, another checkout's interpreter), in the same run.

For each build in turn (baseline first): starts `memorymesh serve` on a fresh data directory
(embedded PostgreSQL), stores --messages messages in one tenant through POST
/v1/messages/batch (4 clients), and waits until the queue is drained (everything embedded):
that instant is t = 0. Then 8 clients search, keyword and hybrid in turn, without pause, and
each search is counted in the window it started in: 0-10 s, 10-20 s, 20-30 s. Then the bench
itself runs `VACUUM ANALYZE messages` on the server's database (what autovacuum would do
eventually) and measures 10 s more: "steady".

Autovacuum analyses the table by itself once its naptime (a minute by default) comes round:
when the import and its embedding take longer than that (on a loaded machine), it may have done
so before t = 0, and neither build has anything left to show. `--naptime 300` sets
autovacuum_naptime on both servers before the import, so that what is measured is what a search
sees before autovacuum's first look, as on an idle machine where the import and embedding of
10,000 messages take less than a minute (issue 22's figures).

Corpora:
- `common` (default): 12 words each from a 25-word vocabulary, every word in about half of
  the messages; queries of 3 such words.
- `locomo`: LoCoMo's turns cycled to --messages; queries are LoCoMo's questions.

    .venv/bin/python bench/after_import.py --baseline /work/wt-old/.venv/bin/python
    .venv/bin/python bench/after_import.py --baseline /work/wt-old/.venv/bin/python --corpus locomo
    .venv/bin/python bench/after_import.py --baseline /work/wt-old/.venv/bin/python --naptime 300

Figures go to bench/results/after_import.md (a section per corpus); measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
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
TENANT = "bulk"
MODES = ("keyword", "hybrid")
WINDOWS = ((0.0, 10.0), (10.0, 20.0), (20.0, 30.0))
STEADY_SECONDS = 10.0
CLIENTS = 8
IMPORTERS = 4
TOP_K = 10
VOCABULARY = [f"w{i:02d}word" for i in range(25)]  # not English words: no stop word, one lexeme each


def corpus(name: str, count: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    """`count` message bodies and the queries to ask of them."""
    if name == "common":
        contents = [" ".join(rng.choices(VOCABULARY, k=12)) for _ in range(count)]
        queries = [" ".join(rng.sample(VOCABULARY, 3)) for _ in range(200)]
        conversations = [f"c{i // 50}" for i in range(count)]
    else:
        turns = locomo_turns()
        picked = [turns[i % len(turns)] for i in range(count)]
        contents = [t["content"] for t in picked]
        conversations = [f"{t['conversation_id']}-{i // len(turns)}" for i, t in enumerate(picked)]
        queries = locomo_questions()
        rng.shuffle(queries)
    messages = [
        {"tenant_id": TENANT, "conversation_id": c, "role": "user", "content": text}
        for c, text in zip(conversations, contents, strict=True)
    ]
    return messages, queries


def dsn_of(server: ServerProcess) -> str:
    """The embedded PostgreSQL's DSN, from its postmaster.pid (socket directory, port)."""
    lines = (server.data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres:@/postgres?host={lines[4]}&port={lines[3]}"


async def table_state(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT n_live_tup, n_dead_tup, n_mod_since_analyze, analyze_count, autoanalyze_count, "
            "autovacuum_count, vacuum_count FROM pg_stat_user_tables WHERE relname = 'messages'"
        )
        assert row is not None
        return ", ".join(f"{k} {v}" for k, v in row.items())
    finally:
        await conn.close()


async def vacuum_analyze(dsn: str, statement: str = "VACUUM ANALYZE messages") -> float:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(statement)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def searching(
    client: httpx.AsyncClient, queries: list[str], seconds: float, started: float
) -> dict[str, list[tuple[float, float]]]:
    """CLIENTS clients searching for `seconds`: per mode, (start since `started`, ms) of each search."""
    found: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    end = time.perf_counter() + seconds

    async def one_client(n: int) -> None:
        i = n
        while time.perf_counter() < end:
            mode = MODES[i % len(MODES)]
            query = queries[(i // len(MODES)) % len(queries)]
            i += CLIENTS
            at = time.perf_counter()
            response = await client.post(
                "/v1/memory/search", json={"tenant_id": TENANT, "query": query, "mode": mode, "top_k": TOP_K}
            )
            response.raise_for_status()
            found[mode].append((at - started, (time.perf_counter() - at) * 1000))

    await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
    return found


async def measure(
    server: ServerProcess,
    messages: list[dict[str, Any]],
    queries: list[str],
    at_zero: str | None,
    naptime: float | None,
) -> dict[str, Any]:
    if naptime:
        conn = await asyncpg.connect(dsn_of(server))
        try:
            await conn.execute(f"ALTER SYSTEM SET autovacuum_naptime = '{naptime:g}s'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        share = -(-len(messages) // IMPORTERS)
        await asyncio.gather(*(post_batches(client, messages[i : i + share]) for i in range(0, len(messages), share)))
        stored = time.perf_counter() - started
        await wait_until_drained(client, give_up_after=900, poll=0.2)
        t0 = time.perf_counter()
        embedded = t0 - started
        dsn = dsn_of(server)
        state_at_zero = await table_state(dsn)
        if at_zero:  # exploring: what a statement run by hand at t = 0 changes
            await vacuum_analyze(dsn, at_zero)
        windows = await searching(client, queries, WINDOWS[-1][1], t0)
        before_vacuum = await table_state(dsn)
        vacuum_seconds = await vacuum_analyze(dsn)
        steady = await searching(client, queries, STEADY_SECONDS, time.perf_counter())
    figures: dict[str, dict[str, list[float]]] = {}
    for mode in MODES:
        figures[mode] = {f"{a:g}-{b:g} s": [ms for at, ms in windows[mode] if a <= at < b] for a, b in WINDOWS}
        figures[mode]["steady"] = [ms for _, ms in steady[mode]]
    return {
        "stored": stored,
        "embedded": embedded,
        "at_zero": state_at_zero,
        "before_vacuum": before_vacuum,
        "vacuum": vacuum_seconds,
        "figures": figures,
    }


def run_build(
    executable: Path,
    directory: Path,
    name: str,
    messages: list[dict[str, Any]],
    queries: list[str],
    at_zero: str | None,
    naptime: float | None,
) -> Any:
    env = {
        "MEMORY_ADMIN_API_KEYS": KEY,
        "MEMORY_RETENTION_SCHEDULE_SECONDS": "0",
        "MEMORY_QUERY_CACHE_SIZE": "0",
        # The fastest local model (bench/results/embedders.md): the import is what is waited for,
        # not what is measured. One export, shared by both builds.
        "MEMORY_EMBEDDING_RUNTIME": "onnx",
        "MEMORY_EMBEDDING_ONNX_QUANTIZE": "int8",
        "MEMORY_EMBEDDING_ONNX_CACHE_DIR": str(directory / "onnx"),
    }
    server = ServerProcess(directory / name, executable=executable, **env).start()
    try:
        server.wait_ready()
        return asyncio.run(measure(server, messages, queries, at_zero, naptime))
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def summary(name: str, result: dict[str, Any]) -> str:
    """One build's figures, p50 / p95 per mode and window, for the console."""
    lines = [f"{name}: stored {result['stored']:.0f} s, embedded {result['embedded']:.0f} s; t=0 {result['at_zero']}"]
    for mode, windows in result["figures"].items():
        cells = ", ".join(f"{w} {percentile(v, 50):.0f}/{percentile(v, 95):.0f}" for w, v in windows.items())
        lines.append(f"  {mode}: {cells}")
    return "\n".join(lines)


def report(args: argparse.Namespace, results: dict[str, Any]) -> str:
    def cell(values: list[float]) -> str:
        return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f} ({len(values)})"

    lines = []
    for mode in MODES:
        for window in results["this"]["figures"][mode]:
            old = results["baseline"]["figures"][mode][window]
            new = results["this"]["figures"][mode][window]
            ratio = percentile(new, 50) / percentile(old, 50)
            old_steady = percentile(old, 50) / percentile(results["baseline"]["figures"][mode]["steady"], 50)
            new_steady = percentile(new, 50) / percentile(results["this"]["figures"][mode]["steady"], 50)
            lines.append(
                f"| {mode} | {window} | {cell(old)} | {cell(new)} | {ratio:.2f} | {old_steady:.2f} | {new_steady:.2f} |"
            )
    rows = "\n".join(lines)
    notes = "\n".join(
        f"- {name}: stored in {r['stored']:.0f} s, all embedded {r['embedded']:.0f} s after the first batch; "
        f"pg_stat_user_tables at t = 0: {r['at_zero']}; at 30 s: {r['before_vacuum']}; "
        f"VACUUM ANALYZE took {r['vacuum']:.1f} s."
        for name, r in results.items()
    )
    command = " ".join(["bench/after_import.py", *sys.argv[1:]])
    naptime = f"autovacuum_naptime {args.naptime:g} s" if args.naptime else "autovacuum as configured (naptime 1 min)"
    return f"""## Corpus `{args.corpus}`: {args.messages:,} messages, {naptime}

{datetime.now(UTC):%Y-%m-%d}, {machine()}, CPython {platform.python_version()}.
Command: `.venv/bin/python {command}`

ms, p50 / p95 (searches), {CLIENTS} clients alternating keyword and hybrid (top_k {TOP_K}); each
window counts from the moment the queue was drained (every message embedded). "steady": the
{STEADY_SECONDS:g} s after the bench's own `VACUUM ANALYZE messages` (at 30 s). "x steady": the
window's p50 over the same build's steady p50.

| mode | window | baseline | this | this / baseline | baseline x steady | this x steady |
|---|---|---|---|---|---|---|
{rows}

{notes}
"""


def save(path: Path, section: str) -> None:
    """Replace the section of the same title in the results file, keeping the others and the notes."""
    header = "# Search latency right after a bulk import: this build against a baseline\n\n"
    text = path.read_text() if path.exists() else header
    text, _, notes = text.partition("\n## Notes\n")
    found = re.finditer(r"(## Corpus .*?)\n.*?(?=\n## Corpus |\Z)", text, re.DOTALL)
    sections = {m.group(1): m.group(0).rstrip() + "\n" for m in found}
    sections[section.splitlines()[0]] = section.rstrip() + "\n"
    kept = "\n".join(sections[k] for k in sorted(sections))
    path.write_text(header + kept + (f"\n## Notes\n{notes}" if notes else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the python of the baseline checkout's venv")
    parser.add_argument("--corpus", choices=("common", "locomo"), default="common")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--only", choices=("this", "baseline"), help="measure one build (no report file)")
    parser.add_argument(
        "--naptime",
        type=float,
        help="set autovacuum_naptime (seconds) on both servers before the import: as on an idle machine, where "
        "the import and its embedding end before autovacuum's first look at the table",
    )
    parser.add_argument("--at-zero", help="exploring: a statement the bench runs at t = 0 (e.g. 'ANALYZE messages')")
    parser.add_argument("--out", type=Path, default=RESULTS / "after_import.md")
    args = parser.parse_args()
    messages, queries = corpus(args.corpus, args.messages, random.Random(args.seed))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-after-import-") as directory:
        base = Path(directory)
        builds = {"baseline": launcher(args.baseline, base), "this": MEMORYMESH}
        for name, executable in builds.items():
            if args.only in (None, name):
                results[name] = run_build(executable, base, name, messages, queries, args.at_zero, args.naptime)
                print(summary(name, results[name]), flush=True)
    if args.only:
        return
    section = report(args, results)
    save(args.out, section)
    print(section)


if __name__ == "__main__":
    main()
