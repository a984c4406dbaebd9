"""Retention, deletion and erasure on the real PostgreSQL (pgvector) and Qdrant (local mode).

A fixed clock, messages imported with past created_at; what is gone is checked where it
was kept (SQL on the table, the Qdrant collection), not only through the use cases.
"""

import asyncio
import contextvars
import math
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from qdrant_client import AsyncQdrantClient

from adapters.inprocess.job_queue import InProcessJobQueue
from adapters.postgres.database import PgTransactions
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageCatalog, PgMessageRepository
from adapters.postgres.retention import PgRetentionCandidates, PgRetentionPolicyStore, PgRetentionRuns
from adapters.postgres.tenant_limits import PgTenantLimitStore
from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection
from application.delete_messages import DeleteMessage, EraseMessages
from application.ports.filters import SearchFilters
from application.retention import RETENTION_LOCK, RetentionRunning, RunRetention, TenantRetention
from application.store_messages import StoreSettings, vector_record
from application.update_message import MessagePatch, UpdateMessage
from domain.access import Principal
from domain.message import EmbeddingStatus, Role
from domain.rate_limit import RateLimit
from domain.retention import RetentionPolicy
from tests.conftest import DIMENSIONS, pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
POLICY = RetentionPolicy(
    archive_after_days=30, delete_after_days=90, importance_threshold=0.35, protected_roles=frozenset({Role.SYSTEM})
)
ADMIN = Principal("admin", frozenset(), admin=True)


def unit_vector(seed: int) -> list[float]:
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(DIMENSIONS)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


@pytest.fixture(params=["pgvector", "qdrant"])
async def index(request, database, tmp_path):
    if request.param == "pgvector":
        yield pg_vector_index(database)
        return
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await prepare_collection(client, "messages", DIMENSIONS)
    yield QdrantVectorIndex(client, "messages")
    await client.close()


async def imported(database, index, t: str, ages_and_importance: list[tuple[int, float]], **fields) -> list:
    """Messages said `age` days before NOW, embedded, with their vectors in the index."""
    messages = [
        make(
            t,
            f"message {i}",
            created_at=NOW - timedelta(days=age, minutes=i),
            importance=importance,
            embedding_status=EmbeddingStatus.EMBEDDED,
            **fields,
        )
        for i, (age, importance) in enumerate(ages_and_importance)
    ]
    await PgMessageRepository(database).add_many(messages)
    await index.upsert([vector_record(m, unit_vector(i)) for i, m in enumerate(messages)])
    return messages


def run_retention(database, index, batch_size: int = 2, repository=None, candidates=None) -> RunRetention:
    return RunRetention(
        repository or PgMessageRepository(database),
        PgMessageCatalog(database),
        candidates or PgRetentionCandidates(database),
        index,
        PgTransactions(database),
        TenantRetention(PgRetentionPolicyStore(database), POLICY),
        PgRetentionRuns(database),
        PgLocks(database),
        FixedClock(NOW),
        batch_size=batch_size,
        metrics=InMemoryMetrics(),
    )


async def rows(database, ids) -> dict:
    found = await database.pool.fetch(
        "SELECT id, archived_at, embedding IS NOT NULL AS has_vector FROM messages WHERE id = ANY($1::uuid[])",
        [m.id for m in ids],
    )
    return {r["id"]: r for r in found}


async def test_a_run_archives_and_deletes_in_the_table_and_the_index(database, index):
    t = tenant()
    recent = await imported(database, index, t, [(5, 0.1), (200, 0.9)])
    to_archive = await imported(database, index, t, [(45, 0.1), (60, 0.2), (89, 0.3)])
    to_delete = await imported(database, index, t, [(91, 0.1), (365, 0.0), (120, 0.2)])
    protected = await imported(database, index, t, [(400, 0.1)], role=Role.SYSTEM)
    theirs = await imported(database, index, tenant(), [(400, 0.0)])

    report = await run_retention(database, index)(t)

    assert (report.run.examined, report.run.archived, report.run.deleted) == (6, 3, 3)
    left = await rows(database, [*recent, *to_archive, *to_delete, *protected, *theirs])
    assert not any(m.id in left for m in to_delete)
    assert all(left[m.id]["archived_at"] == NOW for m in to_archive)
    assert all(left[m.id]["archived_at"] is None for m in [*recent, *protected, *theirs])
    indexed = await index.ids(t)
    assert not indexed & {m.id for m in to_delete}
    hits = await index.search(t, unit_vector(0), 50, SearchFilters())
    assert {h.message_id for h in hits} == {m.id for m in [*recent, *protected]}
    stored = await database.pool.fetchrow("SELECT * FROM retention_runs WHERE id = $1", report.run.id)
    assert (stored["finished_at"], stored["archived"], stored["deleted"]) == (NOW, 3, 3)

    again = await run_retention(database, index)(t)
    assert (again.run.archived, again.run.deleted) == (0, 0)


async def test_a_tenant_override_is_read_from_the_database(database, index):
    t = tenant()
    messages = await imported(database, index, t, [(45, 0.1)])
    await PgRetentionPolicyStore(database).put(t, {"archive_after_days": None, "delete_after_days": 40})
    report = await run_retention(database, index)(t)
    assert report.run.deleted == 1 and await rows(database, messages) == {}


async def test_only_one_run_at_a_time_across_connections(database):
    index = pg_vector_index(database)
    other_holder = PgLocks(database)
    async with other_holder.try_hold(RETENTION_LOCK) as held:
        assert held
        with pytest.raises(RetentionRunning):
            await run_retention(database, index)(tenant())
        assert await run_retention(database, index).run_if_due(timedelta(days=1)) is None


async def test_a_lock_whose_holder_dies_is_free_again(database, pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    assert await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", RETENTION_LOCK)
    async with PgLocks(database).try_hold(RETENTION_LOCK) as held:
        assert not held
    conn.terminate()  # the holder's connection goes, as with a process killed mid-run
    for _ in range(100):
        async with PgLocks(database).try_hold(RETENTION_LOCK) as held:
            if held:
                break
        await asyncio.sleep(0.02)
    assert held


async def test_two_concurrent_runs_one_runs_one_is_refused(database):
    index = pg_vector_index(database)
    t = tenant()
    await imported(database, index, t, [(45, 0.1)] * 30)
    results = await asyncio.gather(
        run_retention(database, index, 1)(t), run_retention(database, index, 1)(t), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["RetentionReport", "RetentionRunning"]
    (report,) = [r for r in results if not isinstance(r, Exception)]
    assert report.run.archived == 30


def eraser(database, index) -> EraseMessages:
    return EraseMessages(
        PgMessageRepository(database),
        PgMessageCatalog(database),
        index,
        PgTransactions(database),
        PgRetentionPolicyStore(database),
        PgTenantLimitStore(database),
        batch_size=3,
    )


async def test_erasing_a_conversation_and_a_tenant_leaves_nothing_behind(database, index):
    t, other = tenant(), tenant()
    conversation = await imported(database, index, t, [(1, 0.5)] * 4, conversation_id="gone")
    rest = await imported(database, index, t, [(1, 0.5)] * 2, conversation_id="kept")
    theirs = await imported(database, index, other, [(1, 0.5)] * 2, conversation_id="gone")

    receipt = await eraser(database, index).conversation(ADMIN, t, "gone")

    assert (receipt.messages, receipt.vectors) == (4, 4)
    assert set(await rows(database, [*conversation, *rest, *theirs])) == {m.id for m in [*rest, *theirs]}
    assert await index.ids(t) == {m.id for m in rest}

    await PgRetentionPolicyStore(database).put(t, {"delete_after_days": 100})
    await PgTenantLimitStore(database).put(t, RateLimit.parse("5/minute"))
    receipt = await eraser(database, index).tenant(ADMIN, t)

    assert (receipt.messages, receipt.vectors, receipt.tenant_retention, receipt.tenant_limits) == (2, 2, 1, 1)
    assert await database.pool.fetchval("SELECT count(*) FROM messages WHERE tenant_id = $1", t) == 0
    assert await database.pool.fetchval("SELECT count(*) FROM tenant_retention WHERE tenant_id = $1", t) == 0
    assert await database.pool.fetchval("SELECT count(*) FROM tenant_limits WHERE tenant_id = $1", t) == 0
    assert await index.ids(t) == set()
    assert await index.ids(other) == {m.id for m in theirs}


async def test_deleting_one_message_takes_its_vector(database, index):
    t = tenant()
    gone, kept = await imported(database, index, t, [(1, 0.5), (1, 0.5)])
    await DeleteMessage(PgMessageRepository(database), index, PgTransactions(database))(ADMIN, t, gone.id)
    assert set(await rows(database, [gone, kept])) == {kept.id}
    assert await index.ids(t) == {kept.id}


async def test_a_failed_batch_leaves_its_rows(database, monkeypatch):
    """Rows and (pgvector) vectors of one batch commit together or not at all."""
    index = pg_vector_index(database)
    t = tenant()
    messages = await imported(database, index, t, [(100, 0.1)] * 4)
    repository = PgMessageRepository(database)
    calls = 0
    archive = repository.archive

    async def failing(*args, **kwargs):  # after the batch's DELETE ran
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("injected")
        return await archive(*args, **kwargs)

    monkeypatch.setattr(repository, "archive", failing)
    report = await run_retention(database, index, repository=repository)(t)
    assert "RuntimeError" in report.run.failed[t]  # recorded, and the run finished
    left = await rows(database, messages)
    assert len(left) == 2  # the first batch of two went; the second batch's DELETE was rolled back
    assert all(r["has_vector"] for r in left.values())
    assert await index.ids(t) == set(left)


async def blocked_on_a_lock(database) -> None:
    """Poll until some session waits for a row lock (the task under test has reached it)."""
    for _ in range(500):
        if await database.pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing ever waited for the lock")


async def test_a_patch_waits_for_a_concurrent_writer_instead_of_writing_over_it(database, pg_dsn):
    index = pg_vector_index(database)
    t = tenant()
    (message,) = await imported(database, index, t, [(1, 0.5)])
    update = UpdateMessage(
        PgMessageRepository(database),
        index,
        DeterministicEmbedder(DIMENSIONS),
        PgTransactions(database),
        InProcessJobQueue(),
        StoreSettings(),
    )
    other = await asyncpg.connect(pg_dsn)
    try:
        writer = other.transaction()
        await writer.start()
        await other.execute("UPDATE messages SET content = 'changed meanwhile' WHERE id = $1", message.id)
        patched = asyncio.create_task(update(ADMIN, t, message.id, MessagePatch(metadata={"tag": "x"})))
        await blocked_on_a_lock(database)
        await writer.commit()
        result = await patched
    finally:
        await other.close()
    assert (result.content, result.metadata) == ("changed meanwhile", {"tag": "x"})


async def test_a_run_judges_each_message_as_it_is_when_it_acts(database):
    """Pinned after the run read its batch, before the batch's transaction: kept."""
    index = pg_vector_index(database)
    t = tenant()
    pinned_late, deleted = await imported(database, index, t, [(120, 0.1), (120, 0.1)])
    stale = await PgRetentionCandidates(database).retention_candidates(t, POLICY, NOW, None, 10)
    await database.pool.execute("UPDATE messages SET pinned = true WHERE id = $1", pinned_late.id)

    class ReadBeforeThePin(PgRetentionCandidates):
        async def retention_candidates(self, tenant_id, policy, now, after, limit):
            return stale if after is None else []

    report = await run_retention(database, index, batch_size=10, candidates=ReadBeforeThePin(database))(t)

    assert (report.run.examined, report.run.deleted) == (2, 1)
    assert set(await rows(database, [pinned_late, deleted])) == {pinned_late.id}


async def test_a_delete_racing_an_embedding_worker_leaves_no_vector_in_qdrant(database, tmp_path):
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await prepare_collection(client, "messages", DIMENSIONS)
    index = QdrantVectorIndex(client, "messages")
    repository, embedding_queue = PgMessageRepository(database), PgEmbeddingQueue(database)
    t = tenant()
    message = make(t, "being embedded")
    await repository.add(message)
    claim = await embedding_queue.claim_pending(1, timedelta(minutes=1))
    while claim is not None and message.id not in [c.message.id for c in claim.messages]:
        claim = await embedding_queue.claim_pending(1, timedelta(minutes=1))  # other tests' pending rows
    assert claim is not None
    deleting: asyncio.Task | None = None
    try:
        async with database.transaction():  # as EmbedPendingMessages completes a claim
            held = await embedding_queue.complete_embedding(claim.id, [message.id])
            deleting = asyncio.create_task(
                DeleteMessage(PgMessageRepository(database), index, PgTransactions(database))(ADMIN, t, message.id),
                context=contextvars.Context(),  # outside the worker's transaction, as another request is
            )
            await blocked_on_a_lock(database)
            await index.upsert([vector_record(m, unit_vector(1)) for m in held])
        await deleting
        assert await index.ids(t) == set()
        assert await rows(database, [message]) == {}
    finally:
        await client.close()
