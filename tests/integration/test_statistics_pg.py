"""The planner's statistics on messages are refreshed after large writes, without autovacuum
(adapters/postgres/statistics.py). Each test has a database of its own with autovacuum off on
messages, so whatever refreshes them here is the upkeep."""

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from adapters.inprocess.job_queue import InProcessJobQueue
from adapters.postgres.database import PgTransactions
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.statistics import PgStatisticsUpkeep
from application.store_messages import EmbeddingMode, StoreMessageCommand, StoreMessages, StoreSettings
from domain.access import Principal
from tests.conftest import pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


@pytest.fixture
async def messages_db(empty_database):
    await empty_database.pool.execute("ALTER TABLE messages SET (autovacuum_enabled = false)")
    return empty_database


def store_for(database, upkeep: PgStatisticsUpkeep | None) -> StoreMessages:
    return StoreMessages(
        PgMessageRepository(database, upkeep),
        pg_vector_index(database),
        DeterministicEmbedder(384),
        PgTransactions(database),
        InProcessJobQueue(),
        FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
        StoreSettings(EmbeddingMode.ASYNC),
        InMemoryMetrics(),
    )


async def import_batches(store: StoreMessages, tenant: str, batches: int, size: int = 250) -> None:
    principal = Principal("k", frozenset({tenant}))
    for b in range(batches):
        commands = [
            StoreMessageCommand(tenant, f"c{b}", "user", " ".join(WORDS[(b + i) % 6 :] + WORDS[: (b + i) % 6]))
            for i in range(size)
        ]
        await store.batch(principal, commands)


async def analyzed(database) -> asyncpg.Record:
    row = await database.pool.fetchrow(
        "SELECT c.reltuples, s.analyze_count, s.n_mod_since_analyze FROM pg_class c "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'messages'::regclass"
    )
    assert row is not None
    return row


async def until(condition, bound_seconds: float = 15.0):
    deadline = time.monotonic() + bound_seconds
    while not (result := await condition()):
        assert time.monotonic() < deadline, f"not within {bound_seconds} s"
        await asyncio.sleep(0.05)
    return result


async def test_a_bulk_import_is_analyzed_without_waiting_for_autovacuum(messages_db):
    upkeep = PgStatisticsUpkeep(messages_db, after_rows=1_000)
    try:
        await import_batches(store_for(messages_db, upkeep), "t-import", batches=12)

        async def counted() -> bool:
            return (await analyzed(messages_db))["reltuples"] == 3_000

        await until(counted)
        # The words of the import are known to the planner as what they are: in every message.
        elements = await messages_db.pool.fetchval(
            "SELECT most_common_elems::text::text[] FROM pg_stats WHERE tablename = 'messages' "
            "AND attname = 'content_tsv'"
        )
        assert {"alpha", "bravo", "charli"} <= set(elements)
    finally:
        await upkeep.close()


async def test_without_the_upkeep_the_statistics_stay_as_they_were(messages_db):
    """The control: the same import, the upkeep off (0 rows), leaves the table unanalysed."""
    upkeep = PgStatisticsUpkeep(messages_db, after_rows=0)
    await import_batches(store_for(messages_db, upkeep), "t-import", batches=12)
    await asyncio.sleep(2)  # what the upkeep would have needed (settle 0.5 s, ANALYZE well under 1 s)
    row = await analyzed(messages_db)
    assert row["reltuples"] < 0  # never analysed
    assert row["analyze_count"] == 0


async def test_embedding_completions_refresh_what_the_planner_knows_of_the_queue(messages_db):
    """After the import, every row was pending; once the worker marked them embedded, a
    vector search must not be planned for a table with no embedded rows."""
    upkeep = PgStatisticsUpkeep(messages_db, after_rows=1_000)
    queue = PgEmbeddingQueue(messages_db, upkeep)
    try:
        await import_batches(store_for(messages_db, upkeep), "t-import", batches=8)
        while (claim := await queue.claim_pending(500, timedelta(minutes=1))) is not None:
            await queue.complete_embedding(claim.id, [c.message.id for c in claim.messages])

        async def embedded_is_most_common() -> bool:
            values = await messages_db.pool.fetchval(
                "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'messages' "
                "AND attname = 'embedding_status'"
            )
            return values == "{embedded}"

        await until(embedded_is_most_common)

        # Each completion left dead rows behind (the claim's and its own UPDATE). Once PostgreSQL
        # counts them (a backend reports its counts up to seconds late), the next writes past a
        # fifth of the table make it VACUUM (ANALYZE), the pool's settings put back after.
        async def dead_counted() -> bool:
            dead = await messages_db.pool.fetchval(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'messages'"
            )
            return upkeep.vacuumed >= 1 or dead >= 1_000

        await until(dead_counted)
        upkeep.rows_written(1_000)

        async def vacuumed() -> bool:
            return upkeep.vacuumed >= 1

        await until(vacuumed)
        vacuums = await messages_db.pool.fetchval(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'messages'"
        )
        assert vacuums >= 1
        async with contextlib.AsyncExitStack() as stack:  # every connection the pool holds, at once
            connections = [
                await stack.enter_async_context(messages_db.pool.acquire()) for _ in range(messages_db.pool.get_size())
            ]
            for conn in connections:
                assert await conn.fetchval("SHOW statement_timeout") == "10s"
                assert await conn.fetchval("SHOW lock_timeout") == "0"
    finally:
        await upkeep.close()


async def test_concurrent_imports_of_two_tenants_share_a_few_analyzes(messages_db):
    """Forty batches at once, from two tenants: ANALYZE runs a few times, not once a request,
    and never two at once."""
    upkeep = PgStatisticsUpkeep(messages_db, after_rows=500)
    running = 0
    most = 0
    original = upkeep._analyze

    async def counting(vacuum: bool = False) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await original(vacuum)
        finally:
            running -= 1

    upkeep._analyze = counting  # type: ignore[method-assign]
    store = store_for(messages_db, upkeep)
    try:
        await asyncio.gather(
            *(import_batches(store, tenant, batches=1, size=100) for _ in range(20) for tenant in ("t-a", "t-b"))
        )

        async def caught_up() -> bool:
            return (await analyzed(messages_db))["reltuples"] == 4_000 and upkeep._task is None

        await until(caught_up)
        assert 1 <= upkeep.analyzed <= 4
        assert most == 1
    finally:
        await upkeep.close()


async def test_an_analyze_that_cannot_run_fails_no_write_and_is_tried_again(messages_db, pg_dsn):
    """A lock ANALYZE needs is held elsewhere (a VACUUM would hold it so): the writes go on
    and return at once, ANALYZE gives up after its lock timeout, and runs once the lock is free."""
    upkeep = PgStatisticsUpkeep(messages_db, after_rows=500, retry_seconds=0.5)
    holder = await asyncpg.connect(messages_db.dsn)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE messages IN SHARE UPDATE EXCLUSIVE MODE")
        store = store_for(messages_db, upkeep)
        started = time.monotonic()
        await import_batches(store, f"t-{uuid.uuid4().hex[:6]}", batches=4)
        assert upkeep.failed == 0 and upkeep.analyzed == 0  # the writes did not wait for it
        assert time.monotonic() - started < 5

        async def failed_once() -> bool:
            return upkeep.failed >= 1

        await until(failed_once)
        assert (await analyzed(messages_db))["analyze_count"] == 0
        await transaction.rollback()

        async def analyzed_once() -> bool:
            return upkeep.analyzed == 1

        await until(analyzed_once)
        assert (await analyzed(messages_db))["reltuples"] == 1_000
    finally:
        await holder.close()
        await upkeep.close()


async def test_closing_stops_a_pending_run(messages_db):
    upkeep = PgStatisticsUpkeep(messages_db, after_rows=100)
    await import_batches(store_for(messages_db, upkeep), "t-close", batches=1)
    await upkeep.close()  # while it waits for the writes to settle
    await asyncio.sleep(1)
    assert upkeep.analyzed == 0
    assert (await analyzed(messages_db))["analyze_count"] == 0
