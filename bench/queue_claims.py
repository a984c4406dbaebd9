"""What one claim of embedding work costs with 100,000 messages pending: the round-robin claim
(PgEmbeddingQueue.claim_pending) against the oldest-first claim it replaced, in one run.

1. Starts a private embedded PostgreSQL 18 + pgvector, migrated, in a fresh temporary
   directory. For each case, a database of its own holds N pending messages (default
   100,000), and E messages already embedded (default 100,000, spread over the same
   tenants: a tenant's other messages are there too), written by one INSERT ... SELECT
   (short rows: a claim reads the queue's index and the rows it takes, not their
   content), the pending ones each ready at its own time in the past in the order given
   below; then ANALYZEd, as autovacuum would have. The cases:
   - 2 tenants, N / 2 each, their messages interleaved;
   - 2 tenants, one tenant's N - 1 messages, then one of the other (issue 18's case);
   - a backlog: one tenant's N - 999 messages, then 999 tenants of one message each;
   - 1,000 tenants, N / 1,000 each, interleaved;
   - the same, but 9 tenants in 10 have every message waiting out a retry delay (an hour):
     what the walk over the tenants steps past without taking anything.
2. For each case and each claim (before: the old statement, one UPDATE over the oldest ready
   rows, ORDER BY embedding_ready_at, with migration 0006's index messages_embedding_pending
   in place of 0009's; after: claim_pending, two statements; after, 0006's index kept: the
   same with both indexes, which is why 0009 drops the old one), on a fresh copy of the
   case's database: EXPLAIN (ANALYZE, BUFFERS) of the sweeper's two statements and of the queue
   stats (which read the queue's index too), and of a first claim, in a transaction rolled
   back; then CLAIMS claims of BATCH (MEMORY_EMBEDDING_BATCH_SIZE's default) one after the
   other, each timed around the call, and how many tenants the first of them served.

    .venv/bin/python bench/queue_claims.py                                     # about 2 minutes
    .venv/bin/python bench/queue_claims.py --messages 10000 --embedded 10000   # a check

Figures go to bench/results/queue_claims.md (with the plans of the "after" statements);
they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from harness import RESULTS, machine

from adapters.postgres.database import Database, DatabaseOptions, open_database
from adapters.postgres.embedding_queue import (
    CLAIM_SHARES,
    FAIL_EXHAUSTED,
    QUEUE_STATS,
    STALLED_COUNT_LIMIT,
    STALLED_EMBEDDINGS,
    TENANTS_WAITING,
    PgEmbeddingQueue,
)
from adapters.postgres.rows import M_COLUMNS
from domain.fair_claims import round_robin_shares

DIMENSIONS = 384
BATCH = 256
CLAIMS = 20
LEASE = timedelta(minutes=1)
SETUP_TIMEOUT = 600.0

# The claim before round-robin, and its index (migration 0002; 0009 replaced it).
OLDEST_FIRST = f"""
WITH picked AS (
    SELECT id FROM messages
    WHERE embedding_status = 'pending' AND embedding_ready_at <= now()
    ORDER BY embedding_ready_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE messages AS m
SET embedding_claim = $2, embedding_ready_at = now() + $3::interval, embedding_attempts = m.embedding_attempts + 1
FROM picked WHERE m.id = picked.id
RETURNING {M_COLUMNS}, m.embedding_attempts
"""
OLD_INDEX = (
    "CREATE INDEX messages_embedding_pending ON messages (embedding_ready_at) WHERE embedding_status = 'pending'"
)
SCHEMAS = {
    "before": [OLD_INDEX, "DROP INDEX messages_embedding_tenant_ready"],
    "after": [],
    "after, 0006's index kept": [OLD_INDEX],
}

# One row per pending message: its tenant, and whether it waits out a retry delay; ready_at
# is staggered by row number, so the order of the rows is the order they became ready.
LOAD = """
INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance,
                      embedding_status, embedding_ready_at)
SELECT gen_random_uuid(), t.tenant_id, 'c', 'user', 'pending message ' || t.n, now(), 0.5, 'pending',
       CASE WHEN t.delayed THEN now() + interval '1 hour' ELSE now() - interval '1 hour' + t.n * interval '1 ms' END
FROM unnest($1::text[], $2::bool[]) WITH ORDINALITY AS t(tenant_id, delayed, n)
"""
LOAD_EMBEDDED = """
INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance, embedding_status)
SELECT gen_random_uuid(), tenants[1 + n % cardinality(tenants)], 'c', 'user', 'embedded message ' || n, now(), 0.5,
       'embedded'
FROM generate_series(1, $2) AS n, (SELECT $1::text[] AS tenants) AS t
"""


@dataclass(frozen=True)
class Case:
    name: str
    rows: list[tuple[str, bool]]  # (tenant, delayed), in the order they became ready


def cases(messages: int) -> list[Case]:
    per_thousand = messages // 1_000
    interleaved_1000 = [(f"t{i % 1_000:04d}", False) for i in range(per_thousand * 1_000)]
    return [
        Case("2 tenants, interleaved", [(f"t{i % 2}", False) for i in range(messages)]),
        Case("2 tenants: one's backlog, then one of the other", [("a", False)] * (messages - 1) + [("b", False)]),
        Case(
            "a backlog: 1 tenant, then 999 of one message",
            [("backlog", False)] * (messages - 999) + [(f"t{i:04d}", False) for i in range(999)],
        ),
        Case("1,000 tenants, interleaved", interleaved_1000),
        Case(
            "1,000 tenants, 9 in 10 of them waiting out a retry delay",
            [(t, int(t[1:]) % 10 != 0) for t, _ in interleaved_1000],
        ),
    ]


@dataclass
class Figures:
    case: str
    claim: str
    median_ms: float
    max_ms: float
    claimed: int
    tenants_first: int
    explain: list[tuple[str, float, str]]  # (statement, execution ms, buffers)
    plans: list[tuple[str, str]]  # (statement, text plan)
    others: list[tuple[str, float, str]]  # the sweeper's statements and the queue stats


class Server:
    def __init__(self, admin: Database, data_dir: Path) -> None:
        self.admin = admin
        self.data_dir = data_dir

    def database(self, name: str) -> contextlib.AbstractAsyncContextManager[Database]:
        dsn = urlsplit(self.admin.dsn)._replace(path=f"/{name}").geturl()
        options = DatabaseOptions(url=dsn, data_dir=self.data_dir, command_timeout=SETUP_TIMEOUT)
        return contextlib.asynccontextmanager(open_database)(options, DIMENSIONS)


def buffers(node: dict[str, Any]) -> str:
    parts = [f"{node.get(f'Shared {k} Blocks', 0):,} {k.lower()}" for k in ("Hit", "Read", "Dirtied")]
    return ", ".join(p for p in parts if not p.startswith("0 "))


async def explain(conn: asyncpg.Connection, name: str, sql: str, *args: object) -> tuple[tuple[str, float, str], str]:
    """EXPLAIN ANALYZE in a transaction rolled back: (name, ms, buffers), and the text plan."""
    async with contextlib.AsyncExitStack() as stack:
        transaction = conn.transaction()
        await transaction.start()
        stack.push_async_callback(transaction.rollback)
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        text = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}", *args)
    plan = json.loads(raw)[0]
    return (name, float(plan["Execution Time"]), buffers(plan["Plan"])), "\n".join(r[0] for r in text)


async def run_claims(database: Database, claim: str) -> tuple[list[float], int, int]:
    """CLAIMS claims one after the other: their times (ms), messages claimed, tenants in the first."""
    embedding_queue = PgEmbeddingQueue(database)
    times, claimed, first = [], 0, 0
    for i in range(CLAIMS):
        began = time.perf_counter()
        if claim == "before":  # the old statement
            rows = await database.pool.fetch(OLDEST_FIRST, BATCH, uuid.uuid4(), LEASE)
            tenants = {r["tenant_id"] for r in rows}
            count = len(rows)
        else:
            taken = await embedding_queue.claim_pending(BATCH, LEASE)
            tenants = {c.message.tenant_id for c in taken.messages} if taken else set()
            count = len(taken.messages) if taken else 0
        times.append((time.perf_counter() - began) * 1_000)
        claimed += count
        first = len(tenants) if i == 0 else first
    return times, claimed, first


async def explain_others(database: Database) -> tuple[list[tuple[str, float, str]], list[tuple[str, str]]]:
    """The other statements that read the queue's index: the sweeper's two, and the queue stats."""
    async with database.pool.acquire() as conn:
        explained = [
            await explain(conn, "fail_exhausted", FAIL_EXHAUSTED, 5, "bench"),
            await explain(conn, "stalled_embeddings", STALLED_EMBEDDINGS, timedelta(seconds=30), STALLED_COUNT_LIMIT),
            await explain(conn, "queue_stats", QUEUE_STATS),
        ]
    return [figures for figures, _ in explained], [(name, plan) for (name, _, _), plan in explained]


async def explain_claim(database: Database, claim: str) -> tuple[list[tuple[str, float, str]], list[tuple[str, str]]]:
    async with database.pool.acquire() as conn:
        if claim == "before":
            figures, plan = await explain(conn, "UPDATE (oldest first)", OLDEST_FIRST, BATCH, uuid.uuid4(), LEASE)
            return [figures], [("UPDATE (oldest first)", plan)]
        waiting = await conn.fetch(TENANTS_WAITING, "", BATCH)
        shares = round_robin_shares([r["ready"] for r in waiting], BATCH)
        tenants = [r["tenant_id"] for r in waiting]
        first, first_plan = await explain(conn, "TENANTS_WAITING", TENANTS_WAITING, "", BATCH)
        second, second_plan = await explain(
            conn, "CLAIM_SHARES", CLAIM_SHARES, tenants, shares, uuid.uuid4(), LEASE, BATCH
        )
        return [first, second], [("TENANTS_WAITING", first_plan), ("CLAIM_SHARES", second_plan)]


async def bench(args: argparse.Namespace, scratch: Path) -> tuple[list[Figures], dict[str, str]]:
    options = DatabaseOptions(url=None, data_dir=scratch, pool_max_size=2, command_timeout=SETUP_TIMEOUT)
    results: list[Figures] = []
    async with contextlib.asynccontextmanager(open_database)(options, DIMENSIONS) as admin:
        server = Server(admin, scratch)
        versions = {
            "postgres": await admin.pool.fetchval("SHOW server_version"),
            "shared_buffers": await admin.pool.fetchval("SHOW shared_buffers"),
        }
        for n, case in enumerate(cases(args.messages)):
            seed = f"claims_seed_{n}"
            await admin.pool.execute(f"CREATE DATABASE {seed}")
            async with server.database(seed) as database:
                await database.pool.execute(LOAD, [t for t, _ in case.rows], [d for _, d in case.rows])
                await database.pool.execute(LOAD_EMBEDDED, sorted({t for t, _ in case.rows}), args.embedded)
                await database.pool.execute("ANALYZE messages")
            for variant, (claim, schema) in enumerate(SCHEMAS.items()):
                copy = f"claims_{n}_{variant}"
                await admin.pool.execute(f"CREATE DATABASE {copy} TEMPLATE {seed} STRATEGY FILE_COPY")
                async with server.database(copy) as database:
                    for statement in schema:
                        await database.pool.execute(statement)
                    await database.pool.execute("ANALYZE messages")
                    others, other_plans = await explain_others(database)
                    explained, plans = await explain_claim(database, claim)
                    times, claimed, first = await run_claims(database, claim)
                await admin.pool.execute(f"DROP DATABASE {copy}")
                figures = Figures(
                    case.name,
                    claim,
                    statistics.median(times),
                    max(times),
                    claimed,
                    first,
                    explained,
                    plans + other_plans,
                    others,
                )
                print(
                    f"{case.name} / {claim}: median {figures.median_ms:.1f} ms, max {figures.max_ms:.1f} ms, "
                    f"{claimed:,} claimed, first claim served {first} tenants; "
                    + "; ".join(f"{s} {ms:.1f} ms ({b})" for s, ms, b in explained + others),
                    flush=True,
                )
                results.append(figures)
            await admin.pool.execute(f"DROP DATABASE {seed}")
    return results, versions


def report(args: argparse.Namespace, results: list[Figures], versions: dict[str, str]) -> str:
    lines = [
        f"# One claim of embedding work with {args.messages:,} messages pending",
        "",
        f"Command: `.venv/bin/python bench/queue_claims.py --messages {args.messages} --embedded {args.embedded}`",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine()}; "
        f"PostgreSQL {versions['postgres']} (embedded; shared_buffers {versions['shared_buffers']}).",
        "",
        f"Each case: {args.messages:,} pending messages (ready in the order the case names them) and "
        f"{args.embedded:,} embedded ones of the same tenants. Before: the oldest-first claim (one UPDATE, "
        f"ORDER BY embedding_ready_at LIMIT {BATCH}) with migration 0006's index. After: "
        "PgEmbeddingQueue.claim_pending, round-robin over the tenants with messages ready "
        f"(TENANTS_WAITING, then CLAIM_SHARES), with migration 0009's. Each: {CLAIMS} claims of {BATCH}, one "
        "after the other, on a fresh copy of the case's database, timed around the call (round trips "
        "included), after an EXPLAIN (ANALYZE, BUFFERS) of a first claim, rolled back. The machine is "
        "shared (load average 5 to 7 on 2 cores): the timings are noisy, the buffers are not.",
        "",
        "| case | claim (schema) | median ms | max ms | claimed | tenants in the first claim "
        "| EXPLAIN ANALYZE of the first claim: ms (buffers) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for f in results:
        explained = "; ".join(f"{s} {ms:.1f} ({b})" for s, ms, b in f.explain)
        lines.append(
            f"| {f.case} | {f.claim} | {f.median_ms:.1f} | {f.max_ms:.1f} | {f.claimed:,} | {f.tenants_first} | "
            f"{explained} |"
        )
    lines += [
        "",
        "The other statements that read the queue's index, before (0006's index) and after (0009's), "
        "EXPLAIN ANALYZE ms (buffers):",
        "",
        "| case | claim (schema) | " + " | ".join(name for name, _, _ in results[0].others) + " |",
        "|---|---|" + "---|" * len(results[0].others),
    ]
    for f in results:
        lines.append(f"| {f.case} | {f.claim} | " + " | ".join(f"{ms:.1f} ({b})" for _, ms, b in f.others) + " |")
    lines += ["", "## Plans after (migration 0009's schema)", ""]
    for f in results:
        if f.claim != "after":
            continue
        lines += [f"### {f.case}", ""]
        for statement, plan in f.plans:
            lines += [f"{statement}:", "", "```", plan, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="pending messages per case (default 100,000)")
    parser.add_argument("--embedded", type=int, default=100_000, help="embedded messages beside them (default 100,000)")
    parser.add_argument("--out", type=Path, default=RESULTS / "queue_claims.md")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="memorymesh-bench-claims-")).resolve()
    try:
        results, versions = asyncio.run(bench(args, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = report(args, results, versions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
