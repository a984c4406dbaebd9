"""The arq JobQueue against the real Redis on 127.0.0.1:6379."""

import asyncio
import uuid

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from adapters.arq.job_queue import ArqJobQueue
from application.jobs import EMBED_PENDING
from application.ports.job_queue import QueueUnavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis():
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    yield pool
    await pool.aclose()


@pytest.fixture
async def queue(redis):
    name = f"test:{uuid.uuid4().hex}"
    queue = ArqJobQueue(redis, name)
    yield queue
    await queue.close()
    job_keys = [b"arq:job:" + job_id for job_id in await redis.zrange(name, 0, -1)]
    await redis.delete(name, f"{name}:waiting:{EMBED_PENDING}", *job_keys)


async def queued_soon(queue: ArqJobQueue, at_least: int) -> int:
    for _ in range(100):
        if (count := await queue.queued()) >= at_least:
            return count
        await asyncio.sleep(0.02)
    return await queue.queued()


async def test_a_submission_becomes_a_job_on_redis(queue):
    assert await queue.queued() == 0
    queue.submit(EMBED_PENDING)
    assert await queued_soon(queue, 1) == 1
    await queue.check()


async def test_one_run_waits_however_many_submissions_come_until_a_worker_takes_it(queue, redis):
    other_process = ArqJobQueue(redis, queue._queue_name)
    for _ in range(200):
        queue.submit(EMBED_PENDING)
        other_process.submit(EMBED_PENDING)
    await queue.close()
    await other_process.close()
    assert await queue.queued() == 1

    await queue.taken(EMBED_PENDING)  # a worker starts the run: what comes next needs another
    queue.submit(EMBED_PENDING)
    await queue.close()
    assert await queue.queued() == 2


async def test_submitting_while_redis_is_away_never_fails_the_caller():
    pool = ArqRedis(host="127.0.0.1", port=1)  # nothing listens there; connecting is lazy
    queue = ArqJobQueue(pool, "test:unreachable")
    queue.submit(EMBED_PENDING)  # must not raise
    await queue.close()
    assert queue.dropped == 1
    with pytest.raises(QueueUnavailable):
        await queue.check()
    await pool.aclose()


async def test_a_job_carries_the_trace_of_the_request_that_submitted_it(queue, redis):
    caller = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(caller)))
    try:
        queue.submit(EMBED_PENDING)
    finally:
        context.detach(token)
    await queue.close()
    (job,) = await redis.queued_jobs(queue_name=queue._queue_name)
    assert job.kwargs["trace_context"]["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
