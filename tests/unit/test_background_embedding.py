"""Async storing and the embedding worker, over in-memory fakes and a fixed clock."""

import asyncio
from datetime import timedelta

import pytest

from adapters.inprocess.job_queue import InProcessJobQueue
from application.embed_pending import EmbeddingCounters, EmbeddingWorkSettings, EmbedPendingMessages, SweepEmbeddings
from application.errors import IdempotencyConflict
from application.jobs import EMBED_PENDING
from application.ports.embedder import EmbedderUnavailable
from application.ports.embedding_models import EmbeddingModelChanged
from application.queue_status import QueueStatus
from application.store_messages import EmbeddingMode, StoreMessageCommand, StoreMessages, StoreSettings
from domain.access import AccessDenied, Principal
from domain.errors import ValidationFailed
from domain.message import ContentLimits, EmbeddingStatus
from domain.retry import RetryPolicy
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.embedding_queue import InMemoryEmbeddingQueue
from tests.fakes.messages import EmbeddingWork, InMemoryMessageTable
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.transactions import InMemoryTransactions
from tests.support import make

ACME = Principal(key_id="k1", tenants=frozenset({"acme", "acme-labs"}))
ADMIN = Principal(key_id="k0", tenants=frozenset(), admin=True)
LEASE = timedelta(minutes=1)


class FlakyEmbedder(DeterministicEmbedder):
    """Fails its first `failures` calls with `error`, then embeds; refuses any text with 'poison'."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        super().__init__(64)
        self.failures = failures
        self.error = error or RuntimeError("model crashed")
        self.calls: list[int] = []

    async def embed_documents(self, texts):
        self.calls.append(len(texts))
        if self.failures:
            self.failures -= 1
            raise self.error
        if any("poison" in t for t in texts):
            raise ValueError("cannot embed this text")
        return await super().embed_documents(texts)


class CountingQueue(InProcessJobQueue):
    """Counts every submission, including those merged into a waiting run."""

    def __init__(self) -> None:
        super().__init__()
        self.submissions = 0

    def submit(self, job: str) -> None:
        self.submissions += 1
        super().submit(job)


@pytest.fixture
def queue() -> InProcessJobQueue:
    return InProcessJobQueue()


@pytest.fixture
def counters() -> EmbeddingCounters:
    return EmbeddingCounters()


@pytest.fixture
def store(repository, index, embedder, transactions, queue, clock) -> StoreMessages:
    settings = StoreSettings(EmbeddingMode.ASYNC, ContentLimits(max_content_chars=100), max_batch=5)
    return StoreMessages(repository, index, embedder, transactions, queue, clock, settings, InMemoryMetrics())


def worker(embedding_queue, index, embedder, transactions, queue, counters, batch_size=3, max_attempts=3):
    settings = EmbeddingWorkSettings(
        batch_size=batch_size,
        lease=LEASE,
        retry=RetryPolicy(max_attempts, timedelta(seconds=10), timedelta(minutes=1)),
    )
    return EmbedPendingMessages(
        embedding_queue, index, embedder, transactions, queue, settings, counters, InMemoryMetrics()
    )


def command(content: str = "hello", tenant: str = "acme", **fields) -> StoreMessageCommand:
    return StoreMessageCommand(tenant_id=tenant, conversation_id="c1", role="user", content=content, **fields)


async def test_an_async_store_answers_pending_and_wakes_a_worker(store, table, index, queue):
    stored = await store.one(ACME, command("my flight is on 12 May"))

    assert stored.message.embedding_status is EmbeddingStatus.PENDING and not stored.replayed
    assert table.rows[stored.message.id].embedding_status is EmbeddingStatus.PENDING
    assert index.records == {}  # nothing searchable yet
    assert await queue.queued() == 1


async def test_the_worker_embeds_a_batch_in_one_model_call_and_makes_it_searchable(
    store, table, embedding_queue, index, transactions, queue, counters
):
    embedder = FlakyEmbedder(failures=0)
    ids = [(await store.one(ACME, command(f"note {i}"))).message.id for i in range(2)]

    embedded = await worker(embedding_queue, index, embedder, transactions, queue, counters)()

    assert embedded == 2 and embedder.calls == [2]
    assert all(table.rows[i].embedding_status is EmbeddingStatus.EMBEDDED for i in ids)
    assert set(index.records) == set(ids)
    assert counters.embedded == 2 and counters.batches == 1


async def test_a_full_batch_asks_for_another_run_so_idle_workers_join_in(
    store, index, embedder, transactions, counters, embedding_queue
):
    for i in range(4):
        await store.one(ACME, command(f"note {i}"))
    fresh_queue = CountingQueue()
    run = worker(embedding_queue, index, embedder, transactions, fresh_queue, counters, batch_size=3)

    assert await run() == 3
    assert fresh_queue.submissions == 1  # three came back: more may wait
    assert await run() == 1
    assert fresh_queue.submissions == 1  # the second, short batch asked for nothing more


async def test_a_failed_batch_backs_off_then_fails_with_the_reason(
    store, table, embedding_queue, index, transactions, queue, clock
):
    counters = EmbeddingCounters()
    message = (await store.one(ACME, command("hello"))).message
    run = worker(embedding_queue, index, FlakyEmbedder(failures=10), transactions, queue, counters, max_attempts=3)

    assert await run() == 0
    assert await run() == 0  # backing off: nothing claimable
    clock.current += timedelta(seconds=10)
    assert await run() == 0  # second try, fails again; next delay is 20 s
    clock.current += timedelta(seconds=19)
    assert await run() == 0 and table.rows[message.id].embedding_status is EmbeddingStatus.PENDING
    clock.current += timedelta(seconds=1)
    assert await run() == 0  # third and last try

    failed = table.rows[message.id]
    assert failed.embedding_status is EmbeddingStatus.FAILED
    assert failed.embedding_error == "RuntimeError: model crashed"
    assert (counters.retried, counters.failed) == (2, 1)
    assert index.records == {}


async def test_a_retry_that_succeeds_clears_the_error(
    store, table, embedding_queue, index, transactions, queue, clock, counters
):
    message = (await store.one(ACME, command("hello"))).message
    run = worker(embedding_queue, index, FlakyEmbedder(failures=1), transactions, queue, counters)
    await run()
    clock.current += timedelta(seconds=10)

    assert await run() == 1
    assert table.rows[message.id].embedding_status is EmbeddingStatus.EMBEDDED
    assert table.rows[message.id].embedding_error is None


async def test_a_worker_whose_lease_ran_out_does_not_overwrite_the_new_holder(
    store, index, embedder, transactions, queue, clock, counters, embedding_queue
):
    message = (await store.one(ACME, command("hello"))).message
    stale = await embedding_queue.claim_pending(10, LEASE)
    clock.current += LEASE + timedelta(seconds=1)

    assert await worker(embedding_queue, index, embedder, transactions, queue, counters)() == 1
    assert await embedding_queue.complete_embedding(stale.id, [message.id]) == []


async def test_the_sweeper_wakes_a_worker_only_for_work_left_waiting(store, clock, embedding_queue):
    queue = InProcessJobQueue()
    sweep = SweepEmbeddings(embedding_queue, queue, grace=timedelta(seconds=5), max_attempts=3)
    await store.one(ACME, command("hello"))  # its hand-off went to another queue: as if lost

    assert await sweep() == 0 and await queue.queued() == 0
    clock.current += timedelta(seconds=6)
    assert await sweep() == 1 and await queue.queued() == 1


async def test_a_model_that_cannot_work_now_postpones_without_counting_a_try(
    store, table, embedding_queue, index, transactions, queue, clock, counters
):
    message = (await store.one(ACME, command("hello"))).message
    overloaded = FlakyEmbedder(failures=10, error=EmbedderUnavailable("the embedder is overloaded"))
    run = worker(embedding_queue, index, overloaded, transactions, queue, counters, max_attempts=2)

    for _ in range(5):  # far more than max_attempts
        assert await run() == 0
        clock.current += timedelta(seconds=10)

    assert table.rows[message.id].embedding_status is EmbeddingStatus.PENDING  # never failed for good
    assert table.rows[message.id].embedding_error is None
    assert table.work[message.id].attempts == 0
    assert counters.postponed == 5 and counters.failed == 0


async def test_a_worker_whose_model_was_switched_away_hands_its_batch_straight_back(
    store, table, embedding_queue, index, transactions, queue, counters
):
    """After `memorymesh reembed`, a process on the old model cannot write its vectors: its
    claim goes back at once (not after the lease), for a process on the new model."""
    message = (await store.one(ACME, command("hello"))).message

    class SwitchedIndex(type(index)):
        async def upsert(self, records):
            raise EmbeddingModelChanged("the stored vectors are now made by another model")

    run = worker(embedding_queue, SwitchedIndex(), FlakyEmbedder(failures=0), transactions, queue, counters)
    with pytest.raises(EmbeddingModelChanged):
        await run()

    assert table.rows[message.id].embedding_status is EmbeddingStatus.PENDING
    assert table.work[message.id].attempts == 0  # not the message's fault
    assert await worker(embedding_queue, index, FlakyEmbedder(failures=0), transactions, queue, counters)() == 1


async def test_one_bad_message_does_not_sink_its_batch(
    store, table, embedding_queue, index, transactions, queue, counters
):
    good = [(await store.one(ACME, command(f"fine {i}"))).message for i in range(2)]
    bad = (await store.one(ACME, command("poison pill"))).message
    embedder = FlakyEmbedder(failures=0)

    assert await worker(embedding_queue, index, embedder, transactions, queue, counters)() == 2

    assert {m.id for m in good} == set(index.records)
    assert table.rows[bad.id].embedding_status is EmbeddingStatus.PENDING  # its own retry, counted
    assert table.rows[bad.id].embedding_error == "ValueError: cannot embed this text"
    assert table.rows[good[0].id].embedding_error is None
    assert embedder.calls == [3, 1, 1, 1]  # the batch, then each alone


async def test_a_slow_batch_keeps_its_claim(index, transactions, queue, counters):
    live = InMemoryMessageTable()  # on the real clock: leases run out for real
    live_queue = InMemoryEmbeddingQueue(live)
    stored = make_pending(live, "slow")
    release = asyncio.Event()

    class SlowEmbedder(DeterministicEmbedder):
        async def embed_documents(self, texts):
            await release.wait()
            return await super().embed_documents(texts)

    settings = EmbeddingWorkSettings(batch_size=10, lease=timedelta(milliseconds=300))
    run = asyncio.create_task(
        EmbedPendingMessages(
            live_queue,
            index,
            SlowEmbedder(64),
            InMemoryTransactions(live, index),
            queue,
            settings,
            counters,
            InMemoryMetrics(),
        )()
    )
    await asyncio.sleep(0.9)  # three leases' worth: without renewal the claim would have lapsed
    assert await live_queue.claim_pending(10, timedelta(minutes=1)) is None
    release.set()
    assert await run == 1
    assert live.rows[stored.id].embedding_status is EmbeddingStatus.EMBEDDED


def make_pending(table, content: str):
    message = make("acme", content)
    table.rows[message.id] = message
    now = table.clock.now()
    table.work[message.id] = EmbeddingWork(stored_at=now, ready_at=now)
    return message


async def test_a_job_already_waiting_is_not_queued_twice(queue):
    for _ in range(5):
        queue.submit(EMBED_PENDING)
    assert await queue.queued() == 1


async def test_a_batch_keeps_its_order_and_is_one_transaction(store, table, queue):
    stored = await store.batch(ACME, [command(f"note {i}") for i in range(5)])
    assert [s.message.content for s in stored] == [f"note {i}" for i in range(5)]
    assert await queue.queued() == 1  # one hand-off for the batch

    with pytest.raises(ValidationFailed) as refused:
        await store.batch(ACME, [command("fine"), command(""), command("x" * 101)])
    assert [p.field for p in refused.value.problems] == ["messages[1].content", "messages[2].content"]
    assert len(table.rows) == 5


@pytest.mark.parametrize(
    ("commands", "field"),
    [
        ([], "messages"),
        ([command()] * 6, "messages"),
        ([command(), command(tenant="acme-labs")], "messages[1].tenant_id"),
    ],
)
async def test_a_batch_is_one_tenant_and_bounded(store, commands, field):
    with pytest.raises(ValidationFailed) as refused:
        await store.batch(ACME, commands)
    assert [p.field for p in refused.value.problems] == [field]


async def test_a_batch_for_a_tenant_the_key_may_not_touch_stores_nothing(store, table):
    with pytest.raises(AccessDenied):
        await store.batch(ACME, [command(tenant="globex")])
    assert table.rows == {}


async def test_a_client_message_id_stores_the_message_once(store, table):
    first = await store.one(ACME, command("hello", client_message_id="m-1"))
    again = await store.one(ACME, command("hello", client_message_id="m-1"))

    assert again.replayed and not first.replayed
    assert again.message.id == first.message.id
    assert len(table.rows) == 1


async def test_a_client_message_id_reused_for_another_message_is_a_conflict(store, table):
    await store.one(ACME, command("hello", client_message_id="m-1"))

    with pytest.raises(IdempotencyConflict):
        await store.batch(ACME, [command("new one"), command("something else", client_message_id="m-1")])
    assert len(table.rows) == 1  # the whole batch rolled back


async def test_inline_mode_embeds_before_answering(repository, index, embedder, transactions, queue, clock):
    store = StoreMessages(
        repository, index, embedder, transactions, queue, clock, StoreSettings(EmbeddingMode.INLINE), InMemoryMetrics()
    )
    stored = await store.batch(ACME, [command("a"), command("b")])
    assert {s.message.embedding_status for s in stored} == {EmbeddingStatus.EMBEDDED}
    assert set(index.records) == {s.message.id for s in stored}
    assert await queue.queued() == 0


async def test_queue_status_is_for_admins_and_counts_what_waits(store, queue, clock, counters, embedding_queue):
    await store.one(ACME, command("hello"))
    clock.current += timedelta(seconds=30)
    status = QueueStatus(embedding_queue, queue, clock, counters)

    with pytest.raises(AccessDenied):
        await status(ACME)
    report = await status(ADMIN)
    assert (report.messages.pending, report.messages.claimed, report.messages.failed) == (1, 0, 0)
    assert report.oldest_pending_age == timedelta(seconds=30)
    assert report.jobs_queued == 1


async def test_a_worker_stopped_mid_batch_hands_its_claim_back_at_once(
    store, index, transactions, queue, counters, embedding_queue
):
    started = asyncio.Event()

    class SlowEmbedder(DeterministicEmbedder):
        async def embed_documents(self, texts):
            started.set()
            await asyncio.Event().wait()  # never finishes: the worker is stopped first

    message = (await store.one(ACME, command("hello"))).message
    run = asyncio.create_task(worker(embedding_queue, index, SlowEmbedder(64), transactions, queue, counters)())
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    claim = await embedding_queue.claim_pending(10, LEASE)  # claimable now, not after the lease
    assert [(c.message.id, c.attempts) for c in claim.messages] == [(message.id, 1)]


async def test_in_process_workers_run_submitted_jobs_and_survive_a_failing_one(queue):
    ran: list[str] = []
    failed, done = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        ran.append("job")
        if len(ran) == 1:
            failed.set()
            raise RuntimeError("first run fails")
        done.set()

    workers = asyncio.create_task(queue.work({EMBED_PENDING: job}, concurrency=2))
    queue.submit(EMBED_PENDING)
    await asyncio.wait_for(failed.wait(), 5)
    queue.submit(EMBED_PENDING)
    await asyncio.wait_for(done.wait(), 5)
    workers.cancel()
    assert ran == ["job", "job"]
