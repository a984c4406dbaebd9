"""Retention runs over fakes: batches, the schedule, the lock, a run cut short, and a tenant
that fails while the others are done."""

import logging
from datetime import timedelta

import pytest

from application.ports.storage import StorageUnavailable
from application.retention import RETENTION_LOCK, RetentionCounts, RetentionRunning, RunRetention, TenantRetention
from application.store_messages import vector_record
from domain.message import EmbeddingStatus
from domain.retention import RetentionPolicy
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.retention import InMemoryLocks, InMemoryRetentionPolicyStore, InMemoryRetentionRuns
from tests.support import make
from tests.unit.conftest import NOW

DAY = timedelta(days=1)
POLICY = RetentionPolicy(archive_after_days=30, delete_after_days=90, importance_threshold=0.35)


@pytest.fixture
def runs() -> InMemoryRetentionRuns:
    return InMemoryRetentionRuns()


@pytest.fixture
def metrics() -> InMemoryMetrics:
    return InMemoryMetrics()


@pytest.fixture
def retention(repository, catalog, retention_candidates, index, transactions, runs, clock, metrics) -> RunRetention:
    policies = TenantRetention(InMemoryRetentionPolicyStore(), POLICY)
    return RunRetention(
        repository,
        catalog,
        retention_candidates,
        index,
        transactions,
        policies,
        runs,
        InMemoryLocks(),
        clock,
        batch_size=3,
        metrics=metrics,
    )


async def old_messages(repository, index, count: int, age_days: int, tenant: str = "acme") -> list:
    messages = [
        make(
            tenant,
            f"ok {i}",
            importance=0.1,
            created_at=NOW - age_days * DAY - i * timedelta(minutes=1),
            embedding_status=EmbeddingStatus.EMBEDDED,
        )
        for i in range(count)
    ]
    await repository.add_many(messages)
    await index.upsert([vector_record(m, [1.0] * 64) for m in messages])
    return messages


async def test_a_run_goes_in_bounded_batches_and_counts_per_tenant(retention, repository, table, index):
    archived = await old_messages(repository, index, 7, 45)
    deleted = await old_messages(repository, index, 2, 100, tenant="globex")
    await old_messages(repository, index, 4, 5)  # recent: untouched
    batches: list[tuple[str, int]] = []

    report = await retention(progress=lambda tenant, done: batches.append((tenant, done.examined)))

    assert batches == [("acme", 3), ("acme", 3), ("acme", 1), ("globex", 2)]
    assert report.tenants == {"acme": RetentionCounts(7, 7, 0), "globex": RetentionCounts(2, 0, 2)}
    assert (report.run.archived, report.run.deleted, report.run.finished_at) == (7, 2, NOW)
    assert all(table.rows[m.id].archived_at == NOW for m in archived)
    assert index.archived == {m.id for m in archived}
    assert not any(m.id in table.rows or m.id in index.records for m in deleted)


async def test_the_schedule_runs_when_due_and_not_again_until_the_next_time(retention, repository, index, clock):
    await old_messages(repository, index, 2, 45)
    every = timedelta(hours=24)

    first = await retention.run_if_due(every)
    assert first is not None and first.run.archived == 2 and first.run.trigger == "schedule"
    clock.current = NOW + timedelta(hours=23)
    assert await retention.run_if_due(every) is None
    clock.current = NOW + timedelta(hours=24)
    assert await retention.run_if_due(every) is not None


async def test_dry_runs_and_single_tenant_runs_do_not_count_as_the_scheduled_run(retention, repository, index):
    await old_messages(repository, index, 1, 45)
    await retention(dry_run=True)
    await retention("acme")
    assert await retention.run_if_due(timedelta(hours=24)) is not None


async def test_a_run_cut_short_is_taken_up_by_the_next_scheduled_run(
    retention, repository, table, index, runs, monkeypatch
):
    messages = await old_messages(repository, index, 7, 45)
    archive = repository.archive
    calls = 0

    async def failing_second_batch(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StorageUnavailable("the database went away")
        return await archive(*args, **kwargs)

    monkeypatch.setattr(repository, "archive", failing_second_batch)
    with pytest.raises(StorageUnavailable):
        await retention.run_if_due(timedelta(hours=24))
    (cut_short,) = runs.runs.values()
    assert cut_short.finished_at is None
    assert sum(1 for m in messages if table.rows[m.id].archived_at) == 3  # the first batch committed
    assert sum(1 for m in messages if m.id in index.archived) == 3  # the failed batch's flags were rolled back

    taken_up = await retention.run_if_due(timedelta(hours=24))

    assert taken_up is not None and taken_up.run.archived == 4  # the rest, and nothing twice
    assert all(table.rows[m.id].archived_at is not None for m in messages)


def broken_for(tenant: str, method):  # type: ignore[no-untyped-def]
    """The repository's method, failing for one tenant as a row no step can read would make it."""

    async def failing(tenant_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        if tenant_id == tenant:
            raise TypeError("can't compare offset-naive and offset-aware datetimes: 'words of the tenant'")
        return await method(tenant_id, *args, **kwargs)

    return failing


@pytest.mark.parametrize(("port", "step"), [("retention_candidates", "retention_candidates"), ("repository", "lock")])
async def test_a_tenant_that_fails_is_recorded_and_the_run_finishes_the_others(
    retention, repository, table, request, port, index, runs, metrics, monkeypatch, caplog, step
):
    await old_messages(repository, index, 2, 45, tenant="acme")  # the first tenant in a run's order
    after = await old_messages(repository, index, 4, 45, tenant="globex")
    owner = request.getfixturevalue(port)
    monkeypatch.setattr(owner, step, broken_for("acme", getattr(owner, step)))

    with caplog.at_level(logging.ERROR, logger="application.retention"):
        report = await retention.run_if_due(timedelta(hours=24))

    assert report is not None and report.run.finished_at == NOW
    assert set(report.run.failed) == {"acme"}
    reason = report.run.failed["acme"]
    assert "TypeError" in reason and "words of the tenant" not in reason  # why, and none of its data
    assert report.tenants == {"globex": RetentionCounts(4, 4, 0)}
    assert all(table.rows[m.id].archived_at == NOW for m in after)
    assert runs.runs[report.run.id].failed == report.run.failed  # the run's record keeps it
    assert metrics.counts["retention_failed"] == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "retention failed for a tenant"]
    assert logged.tenant == "acme" and step in logged.where  # type: ignore[attr-defined]
    assert "words of the tenant" not in caplog.text
    assert await retention.run_if_due(timedelta(hours=24)) is None  # a finished run: due again tomorrow


async def test_a_dry_run_records_a_failing_tenant_too(retention, repository, retention_candidates, index, monkeypatch):
    await old_messages(repository, index, 2, 45, tenant="acme")
    await old_messages(repository, index, 4, 45, tenant="globex")
    monkeypatch.setattr(
        retention_candidates, "retention_candidates", broken_for("acme", retention_candidates.retention_candidates)
    )

    report = await retention(dry_run=True)

    assert set(report.run.failed) == {"acme"} and report.tenants == {"globex": RetentionCounts(4, 4, 0)}


async def test_one_run_at_a_time(repository, catalog, retention_candidates, index, transactions, runs, clock):
    locks = InMemoryLocks()
    retention = RunRetention(
        repository,
        catalog,
        retention_candidates,
        index,
        transactions,
        TenantRetention(InMemoryRetentionPolicyStore(), POLICY),
        runs,
        locks,
        clock,
        3,
        InMemoryMetrics(),
    )
    async with locks.try_hold(RETENTION_LOCK):
        with pytest.raises(RetentionRunning):
            await retention()
        assert await retention.run_if_due(timedelta(hours=24)) is None
    assert runs.runs == {}


async def test_planned_counts_what_a_run_will_look_at(retention, repository, index):
    await old_messages(repository, index, 5, 45)
    await old_messages(repository, index, 3, 5)
    assert await retention.planned() == 5
    assert await retention.planned("globex") == 0
