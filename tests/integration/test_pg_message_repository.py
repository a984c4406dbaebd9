"""PostgreSQL specifics of the repository; the shared promises are in tests/contract/."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.inprocess.job_queue import InProcessJobQueue
from adapters.postgres.database import PgTransactions
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.vector_index import PgVectorIndex
from application.ports.storage import StorageUnavailable
from application.store_messages import EmbeddingMode, StoreMessageCommand, StoreMessages, StoreSettings
from domain.access import Principal
from tests.conftest import TEST_MODEL_ID, pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics
from tests.support import inline_store, make, tenant


async def test_timestamps_keep_their_instant(database):
    repository = PgMessageRepository(database)
    offset = datetime(2026, 3, 1, 9, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    message = make(tenant(), created_at=offset)
    await repository.add(message)
    stored = await repository.get(message.tenant_id, message.id)
    assert stored.created_at == offset


async def test_a_store_that_fails_after_writing_leaves_no_row(database):
    """Row, vector and status are one transaction: a failure midway rolls all of them back."""

    class FailingIndex(PgVectorIndex):
        async def upsert(self, records) -> None:
            await super().upsert(records)
            raise StorageUnavailable("connection lost")

    repository = PgMessageRepository(database)
    store = inline_store(
        repository,
        FailingIndex(database, TEST_MODEL_ID),
        DeterministicEmbedder(384),
        PgTransactions(database),
        FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
    )
    t = tenant()
    with pytest.raises(StorageUnavailable):
        await store(Principal("k", frozenset({t})), StoreMessageCommand(t, "c1", "user", "hello"))
    assert await database.pool.fetchval("SELECT count(*) FROM messages WHERE tenant_id = $1", t) == 0


async def test_concurrent_duplicate_submissions_store_one_message(database):
    """Twenty requests with one Idempotency-Key at once: one row, one first answer, nineteen replays.

    Ten repositories stand in for ten API processes: their inserts race in PostgreSQL
    itself, not only inside one process's group commit."""

    def store() -> StoreMessages:
        return StoreMessages(
            PgMessageRepository(database),
            pg_vector_index(database),
            DeterministicEmbedder(384),
            PgTransactions(database),
            InProcessJobQueue(),
            FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
            StoreSettings(EmbeddingMode.ASYNC),
            InMemoryMetrics(),
        )

    processes = [store() for _ in range(10)]
    t = tenant()
    principal = Principal("k", frozenset({t}))
    command = StoreMessageCommand(t, "c1", "user", "pay the rent", client_message_id="rent-2026-01")

    results = await asyncio.gather(*(processes[i % 10].one(principal, command) for i in range(20)))

    assert len({r.message.id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 19
    assert await database.pool.fetchval("SELECT count(*) FROM messages WHERE tenant_id = $1", t) == 1
