"""A retention run over 100,000 messages: bounded transactions and bounded memory.

The rows are generated in SQL (no vectors: retention does not read them). Timing is not
asserted here: bench/retention.py measures it.
"""

import tracemalloc
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from adapters.postgres.database import PgTransactions
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageCatalog, PgMessageRepository
from adapters.postgres.retention import PgRetentionCandidates, PgRetentionPolicyStore, PgRetentionRuns
from application.retention import RunRetention, TenantRetention
from domain.message import Role
from domain.retention import RetentionPolicy
from tests.conftest import pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.metrics import InMemoryMetrics

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
MESSAGES = 100_000
BATCH = 1_000
POLICY = RetentionPolicy(
    archive_after_days=30, delete_after_days=90, importance_threshold=0.35, protected_roles=frozenset({Role.SYSTEM})
)

# Ages spread over 0-198 days, importance over 0-0.99, one message in 10 a system message.
GENERATE = """
INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance, embedding_status)
SELECT gen_random_uuid(), 'tenant-' || (n % 4), 'c-' || (n % 500),
       CASE WHEN n % 10 = 0 THEN 'system' ELSE 'user' END,
       'message number ' || n || ' about the trip, the budget and the weather',
       $1::timestamptz - make_interval(days => n % 199, mins => n % 1440),
       (n % 100) / 100.0, 'embedded'
FROM generate_series(1, $2) AS n
"""


class CountingTransactions(PgTransactions):
    """Counts the rows each transaction changes, through the repository it wraps."""

    def __init__(self, database, repository: "CountingRepository") -> None:
        super().__init__(database)
        self.repository = repository
        self.sizes: list[int] = []

    @asynccontextmanager
    async def _counted(self):
        self.repository.changed = 0
        async with super().begin():
            yield
        self.sizes.append(self.repository.changed)

    def begin(self):
        return self._counted()


class CountingRepository(PgMessageRepository):
    changed = 0

    async def delete(self, tenant_id, message_ids):
        self.changed += len(message_ids)
        return await super().delete(tenant_id, message_ids)

    async def archive(self, tenant_id, message_ids, at):
        self.changed += len(message_ids)
        return await super().archive(tenant_id, message_ids, at)


async def test_a_run_over_100k_messages_keeps_transactions_and_memory_bounded(empty_database):
    database = empty_database
    await database.pool.execute(GENERATE, NOW, MESSAGES)
    repository = CountingRepository(database)
    transactions = CountingTransactions(database, repository)
    retention = RunRetention(
        repository,
        PgMessageCatalog(database),
        PgRetentionCandidates(database),
        pg_vector_index(database),
        transactions,
        TenantRetention(PgRetentionPolicyStore(database), POLICY),
        PgRetentionRuns(database),
        PgLocks(database),
        FixedClock(NOW),
        batch_size=BATCH,
        metrics=InMemoryMetrics(),
    )
    planned = await retention.planned()

    tracemalloc.start()
    try:
        report = await retention()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # What should have happened, worked out from how the rows were made: user messages below 0.35, by age.
    ages = [(timedelta(days=n % 199, minutes=n % 1440)) for n in range(1, MESSAGES + 1) if n % 10 and n % 100 < 35]
    expected_deleted = sum(1 for age in ages if age > timedelta(days=90))
    expected_archived = sum(1 for age in ages if timedelta(days=30) < age <= timedelta(days=90))
    assert (report.run.deleted, report.run.archived) == (expected_deleted, expected_archived)
    assert report.run.examined == planned
    left = await database.pool.fetchrow(
        "SELECT count(*) AS rows, count(archived_at) AS archived FROM messages",
    )
    assert left["rows"] == MESSAGES - expected_deleted
    assert left["archived"] == expected_archived > 5_000
    assert max(transactions.sizes) <= BATCH  # no transaction held more than one batch
    assert len(transactions.sizes) >= planned // BATCH
    assert peak < 16 * 1024 * 1024, f"the run held {peak / 2**20:.1f} MiB of Python objects at its peak"
    assert await retention.planned() == 0  # nothing left to do: a second run would find nothing
