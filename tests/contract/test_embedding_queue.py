"""What every EmbeddingQueue promises: claims, leases, retries and fair shares between tenants."""

import asyncio
import time
import uuid
from datetime import timedelta

import pytest

from application.ports.embedding_queue import EmbeddingRetry
from domain.message import EmbeddingStatus
from tests.support import make, tenant

LEASE = timedelta(minutes=5)


async def wait_for_claim(queue, limit: int, bound_seconds: float = 10.0):
    """Poll until a claim succeeds (a lease has run out), within a bound."""
    deadline = time.monotonic() + bound_seconds
    while (claim := await queue.claim_pending(limit, LEASE)) is None:
        assert time.monotonic() < deadline, "nothing became claimable"
        await asyncio.sleep(0.05)
    return claim


async def test_claims_take_pending_messages_oldest_first_and_never_twice(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    t = tenant()
    pending = [make(t, f"m{i}") for i in range(5)]
    for message in pending:  # one by one, so each is ready a little after the one before
        await messages.add(message)
    await messages.add(make(t, "done", embedding_status=EmbeddingStatus.EMBEDDED))
    await messages.add(make(t, "gave up", embedding_status=EmbeddingStatus.FAILED))

    first = await queue.claim_pending(3, LEASE)
    second = await queue.claim_pending(3, LEASE)

    assert [c.message.id for c in first.messages] == [m.id for m in pending[:3]]
    assert sorted(c.message.id for c in second.messages) == sorted(m.id for m in pending[3:])
    assert {c.attempts for c in first.messages + second.messages} == {1}
    assert first.id != second.id
    assert await queue.claim_pending(3, LEASE) is None


async def test_completing_marks_embedded_only_what_the_claim_holds(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    t = tenant()
    held, other = make(t, "held"), make(t, "other")
    await messages.add_many([held, other])
    claim = await queue.claim_pending(1, LEASE)

    assert await queue.complete_embedding(uuid.uuid4(), [held.id]) == []
    assert [m.id for m in await queue.complete_embedding(claim.id, [held.id, other.id])] == [held.id]
    assert (await messages.get(t, held.id)).embedding_status is EmbeddingStatus.EMBEDDED
    assert (await messages.get(t, other.id)).embedding_status is EmbeddingStatus.PENDING


async def test_a_lapsed_lease_hands_the_messages_to_the_next_claim(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    message = make(tenant(), "slow")
    await messages.add(message)
    stale = await queue.claim_pending(10, timedelta(milliseconds=200))

    fresh = await wait_for_claim(queue, 10)

    assert [c.message.id for c in fresh.messages] == [message.id]
    assert fresh.messages[0].attempts == 2
    assert await queue.complete_embedding(stale.id, [message.id]) == []  # the old holder lost it
    assert [m.id for m in await queue.complete_embedding(fresh.id, [message.id])] == [message.id]


async def test_a_retry_waits_its_delay_and_the_last_one_fails_with_the_reason(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    t = tenant()
    now_again, later, give_up = make(t, "a"), make(t, "b"), make(t, "c")
    await messages.add_many([now_again, later, give_up])
    claim = await queue.claim_pending(10, LEASE)

    await queue.retry_embedding(
        claim.id,
        [
            EmbeddingRetry(now_again.id, timedelta(0)),
            EmbeddingRetry(later.id, timedelta(hours=1)),
            EmbeddingRetry(give_up.id, None),
        ],
        "EmbedderUnavailable: model crashed",
    )

    again = await queue.claim_pending(10, LEASE)
    assert [c.message.id for c in again.messages] == [now_again.id]
    assert again.messages[0].attempts == 2
    assert again.messages[0].message.embedding_error == "EmbedderUnavailable: model crashed"
    failed = await messages.get(t, give_up.id)
    assert failed.embedding_status is EmbeddingStatus.FAILED
    assert failed.embedding_error == "EmbedderUnavailable: model crashed"
    assert (await messages.get(t, later.id)).embedding_status is EmbeddingStatus.PENDING
    stats = await queue.queue_stats()
    assert (stats.pending, stats.claimed, stats.failed) == (1, 1, 1)


async def test_a_released_claim_is_claimable_at_once_and_the_try_is_not_counted(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    message = make(tenant())
    await messages.add(message)
    claim = await queue.claim_pending(10, LEASE)

    await queue.release_claim(claim.id, [message.id])

    again = await queue.claim_pending(10, LEASE)
    assert [(c.message.id, c.attempts) for c in again.messages] == [(message.id, 1)]


async def test_stalled_work_and_queue_stats_count_what_waits(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    assert await queue.stalled_embeddings(timedelta(0)) == 0
    empty = await queue.queue_stats()
    assert (empty.pending, empty.claimed, empty.failed, empty.oldest_pending_stored_at) == (0, 0, 0, None)

    await messages.add_many([make(tenant(), f"m{i}") for i in range(3)])
    assert await queue.stalled_embeddings(timedelta(0)) == 3
    assert await queue.stalled_embeddings(timedelta(hours=1)) == 0  # just stored: a worker is on its way

    await queue.claim_pending(2, LEASE)
    assert await queue.stalled_embeddings(timedelta(0)) == 1
    stats = await queue.queue_stats()
    assert (stats.pending, stats.claimed, stats.failed) == (1, 2, 0)
    assert stats.oldest_pending_stored_at is not None


@pytest.mark.parametrize("workers", [8])
async def test_concurrent_claims_share_out_every_message_exactly_once(queue_backend, workers):
    messages, queue = queue_backend.messages, queue_backend.queue
    stored = [make(tenant(), f"m{i}") for i in range(60)]
    await messages.add_many(stored)

    async def drain() -> list[uuid.UUID]:
        taken = []
        while (claim := await queue.claim_pending(7, LEASE)) is not None:
            taken += [c.message.id for c in claim.messages]
        return taken

    shares = await asyncio.gather(*(drain() for _ in range(workers)))
    everything = [i for share in shares for i in share]
    assert sorted(everything) == sorted(m.id for m in stored)  # all of them, none twice


async def test_a_renewed_claim_outlives_its_first_lease(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    await messages.add(make(tenant(), "slow"))
    claim = await queue.claim_pending(10, timedelta(milliseconds=300))

    await queue.extend_claim(claim.id, LEASE)
    await asyncio.sleep(0.4)

    assert await queue.claim_pending(10, LEASE) is None
    assert len(await queue.complete_embedding(claim.id, [c.message.id for c in claim.messages])) == 1


async def test_a_release_with_a_delay_waits_it_out_uncounted(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    message = make(tenant())
    await messages.add(message)
    claim = await queue.claim_pending(10, LEASE)

    await queue.release_claim(claim.id, [message.id], delay=timedelta(hours=1))

    assert await queue.claim_pending(10, LEASE) is None
    assert (await queue.queue_stats()).pending == 1


async def test_messages_whose_workers_kept_dying_end_failed_and_can_be_requeued(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    t = tenant()
    doomed, other = make(t, "kills its worker"), make(tenant(), "other tenant, also failed")
    await messages.add_many([doomed, other])
    for _ in range(3):  # three claims, each lost with its worker (the lease runs out)
        await queue.claim_pending(10, timedelta(milliseconds=50))
        await asyncio.sleep(0.1)
    assert await queue.fail_exhausted(4, "gave up") == 0  # not yet
    await queue.claim_pending(10, timedelta(milliseconds=50))
    await asyncio.sleep(0.1)

    assert await queue.fail_exhausted(4, "gave up") == 2
    failed = await messages.get(t, doomed.id)
    assert failed.embedding_status is EmbeddingStatus.FAILED and failed.embedding_error == "gave up"

    assert await queue.requeue_failed(t) == 1  # only that tenant's
    again = await queue.claim_pending(10, LEASE)
    assert [(c.message.id, c.attempts) for c in again.messages] == [(doomed.id, 1)]
    assert (await messages.get(t, doomed.id)).embedding_error is None
    assert (await queue.queue_stats()).failed == 1


# Fair claims: one tenant's backlog is not a line every other tenant stands in.


def tenants_of(claim) -> list[str]:
    return [c.message.tenant_id for c in claim.messages]


async def test_a_tenant_with_one_message_is_served_in_the_first_batch_behind_a_backlog(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    busy, quiet = tenant(), tenant()
    await messages.add_many([make(busy, f"m{i}") for i in range(200)])
    late = make(quiet, "only one, stored last")
    await messages.add(late)

    claim = await queue.claim_pending(32, LEASE)

    assert late.id in [c.message.id for c in claim.messages]
    assert sorted(tenants_of(claim)) == sorted([busy] * 31 + [quiet])


async def test_tenants_waiting_share_a_batch_evenly(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    waiting = [tenant() for _ in range(3)]
    for t in waiting:
        await messages.add_many([make(t, f"m{i}") for i in range(50)])

    claim = await queue.claim_pending(30, LEASE)

    assert sorted(tenants_of(claim)) == sorted(waiting * 10)


async def test_with_more_tenants_waiting_than_a_batch_holds_each_gets_its_turn(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    waiting = [tenant() for _ in range(10)]
    for t in waiting:
        await messages.add_many([make(t, f"m{i}") for i in range(3)])

    claims = [await queue.claim_pending(4, LEASE) for _ in range(3)]

    for claim in claims:
        assert len(set(tenants_of(claim))) == len(claim.messages)  # one each while others wait
    assert {t for claim in claims for t in tenants_of(claim)} == set(waiting)


async def test_within_a_tenant_the_oldest_ready_go_first(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    a, b = tenant(), tenant()
    stored: dict[str, list] = {a: [], b: []}
    for i in range(4):  # one by one, so each is ready a little after the one before
        for t in (a, b):
            stored[t].append(make(t, f"m{i}"))
            await messages.add(stored[t][-1])
    retried = await queue.claim_pending(1, LEASE)  # one tenant's oldest, tried and put back for later
    (first,) = retried.messages
    await queue.retry_embedding(retried.id, [EmbeddingRetry(first.message.id, timedelta(hours=1))], "failed once")
    put_back, other = (a, b) if first.message.tenant_id == a else (b, a)
    assert first.message.id == stored[put_back][0].id

    claim = await queue.claim_pending(4, LEASE)

    of = {t: [c.message.id for c in claim.messages if c.message.tenant_id == t] for t in (a, b)}
    assert of == {put_back: [m.id for m in stored[put_back][1:3]], other: [m.id for m in stored[other][:2]]}


async def test_concurrent_claims_over_few_tenants_share_out_every_message_exactly_once(queue_backend):
    messages, queue = queue_backend.messages, queue_backend.queue
    stored = [make(t, f"m{i}") for t in (tenant(), tenant(), tenant()) for i in range(40)]
    await messages.add_many(stored)

    async def drain() -> list[uuid.UUID]:
        taken = []
        while (claim := await queue.claim_pending(7, LEASE)) is not None:
            taken += [c.message.id for c in claim.messages]
        return taken

    shares = await asyncio.gather(*(drain() for _ in range(8)))
    assert sorted(i for share in shares for i in share) == sorted(m.id for m in stored)


async def test_mark_embedded_changes_only_that_tenants_rows(backend):
    a, b = tenant(), tenant()
    mine, theirs = make(a), make(b)
    await backend.messages.add(mine)
    await backend.messages.add(theirs)

    await backend.queue.mark_embedded(a, [mine.id, theirs.id])

    assert (await backend.messages.get(a, mine.id)).embedding_status is EmbeddingStatus.EMBEDDED
    assert (await backend.messages.get(b, theirs.id)).embedding_status is EmbeddingStatus.PENDING
