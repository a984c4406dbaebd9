"""`memorymesh worker`: arq's worker over the same container as the API.

Start as many as the model work needs, on any machines that reach the database and
Redis. Each embeds batches (MEMORY_EMBEDDING_WORKERS at a time) and runs the sweeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from application.jobs import EMBED_PENDING
from config.container import Container, start, stop
from config.settings import Settings
from entrypoints.background import embed_pending, retention_if_due, sweep_forever

logger = logging.getLogger(__name__)

REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)  # redis-py wraps the socket errors in these

JOB_TIMEOUT_SECONDS = 600
RETENTION_TIMEOUT_SECONDS = 6 * 3600  # a first run over a large store is long; it resumes if cut short
POLL_SECONDS = 0.05  # how often an idle worker asks Redis for jobs (arq's default is 0.5)
STOP_GRACE_SECONDS = 1.0  # after a signal, how long the arq run has to end before it is cancelled again
REDIS_RETRY_SECONDS = 2.0  # how often a worker whose Redis went away tries it again
# A Redis that accepts a connection but never answers (paused, partitioned) is an error
# after this long, not a hang: arq sets no timeout of its own.
REDIS_SOCKET_TIMEOUT_SECONDS = 10.0


# What a worker runs: the embedding job, the sweeper beside it, scheduled retention.
WORKS_WITH = (Container.embed_pending, Container.sweep_embeddings, Container.run_retention)


async def start_worker_services(container: Container) -> None:
    await start(container, *WORKS_WITH)


async def run_worker(settings: Settings) -> None:
    from arq.connections import ArqRedis
    from arq.cron import cron
    from arq.worker import Worker, func

    container = Container(settings=settings)
    sweeper: asyncio.Task[None] | None = None
    stopped = False

    async def startup(ctx: dict[str, Any]) -> None:
        nonlocal sweeper
        if sweeper is not None:  # a new arq worker after a Redis outage: the services are running
            logger.info("memorymesh worker reconnected to Redis")
            return
        await start_worker_services(container)
        if settings.worker_metrics_port:  # this worker's embedding and retention metrics, for Prometheus
            container.metrics().serve(settings.worker_metrics_port)
        sweeper = asyncio.get_running_loop().create_task(sweep_forever(container))
        logger.info("memorymesh worker ready", extra={"queue": settings.queue_name})

    async def shutdown(ctx: dict[str, Any]) -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        counters = container.embedding_counters()
        logger.info("memorymesh worker stopped", extra={"embedded": counters.embedded, "failed": counters.failed})
        await stop(container)

    async def embed_pending_job(ctx: dict[str, Any], trace_context: dict[str, str] | None = None) -> int:
        await container.job_queue().taken(EMBED_PENDING)
        return await embed_pending(container, trace_context)

    async def retention_job(ctx: dict[str, Any]) -> None:
        await retention_if_due(container)

    # Every minute (and at start) each worker asks whether a run is due; the lock and the
    # record of runs make one of them run it, once per MEMORY_RETENTION_SCHEDULE_SECONDS.
    cron_jobs = (
        [cron(retention_job, name="retention", run_at_startup=True, timeout=RETENTION_TIMEOUT_SECONDS)]
        if settings.retention_schedule_seconds > 0
        else []
    )
    # One connection pool for every arq worker this process runs (a new one after each outage):
    # redis-py reconnects it once Redis answers again.
    redis = ArqRedis.from_url(
        settings.redis_url or "",  # required with MEMORY_QUEUE=arq
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
    )
    stopping = asyncio.Event()

    def new_worker() -> Worker:
        worker = Worker(
            functions=[
                func(
                    embed_pending_job,
                    name=EMBED_PENDING,
                    keep_result=0,
                    max_tries=1,
                    timeout=settings.embedding_lease_seconds,
                )
            ],
            cron_jobs=cron_jobs,
            queue_name=settings.queue_name,
            redis_pool=redis,
            on_startup=startup,
            on_shutdown=shutdown,
            max_jobs=settings.embedding_workers,
            keep_result=0,
            poll_delay=POLL_SECONDS,
            log_results=False,
            handle_signals=True,
        )
        worker.on_stop = lambda _: stopping.set()
        return worker

    worker = None
    try:
        worker = await run_through_redis_outages(new_worker, stopping)
    finally:
        if worker is not None:
            await close_worker(worker)
        await shutdown({})  # when close() gave up before it got there
        await redis.aclose()


async def close_worker(worker: Any) -> None:
    """arq's close(), once every job task has ended. Its own close gathers them without
    return_exceptions: a job whose finish_job (shielded) was under way when SIGTERM cancelled it
    ends in CancelledError, and close() raised that and skipped the rest, so the process exited
    with 1 and a traceback (one CI run in four under tests/e2e/test_arq_workers.py)."""
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    try:
        await worker.close()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # this task is being cancelled, not a job's
            raise
    except REDIS_AWAY:  # its last words to Redis: not needed for the rows
        pass


async def run_until_stopped(worker: Any, stopping: asyncio.Event) -> None:
    """arq's async_run(), ended at a signal even when arq's own cancel of its main task is lost.

    On SIGTERM arq cancels its main task once and calls on_stop (which sets `stopping`). Once in
    CI the cancel was swallowed below the poll loop: the worker ran its retention cron a minute
    after SIGTERM and never exited. So after the signal the run is cancelled again, each second,
    until it ends."""
    run = asyncio.ensure_future(worker.async_run())
    signalled = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({run, signalled}, return_when=asyncio.FIRST_COMPLETED)
        while not run.done():
            await asyncio.wait({run}, timeout=STOP_GRACE_SECONDS)
            run.cancel()
    finally:
        signalled.cancel()
        if not run.done():  # this task itself was cancelled: the run goes with it
            run.cancel()
    run.result()  # its end as it ended: returned, cancelled (the signal) or Redis away


async def run_through_redis_outages(new_worker: Callable[[], Any], stopping: asyncio.Event) -> Any:
    """Run an arq worker until a signal stops it, and a new one after each Redis outage.

    arq's poll loop ends at the first Redis error, and a process that exits then would go
    through a restart (and a model load) per outage, or crash-loop while Redis is away. A
    worker is not reused: arq leaves its job slots counted as taken when Redis fails mid-way.
    The rows are the record of the work, so nothing is lost while the process waits: the
    jobs lost with Redis are handed back by the sweepers once it answers again.
    """
    while True:
        worker = new_worker()
        try:
            await run_until_stopped(worker, stopping)
            return worker
        except asyncio.CancelledError:  # SIGTERM / SIGINT: arq cancelled its main task
            return worker
        except REDIS_AWAY as error:
            logger.warning("Redis does not answer; the worker waits for it", extra={"error": repr(error)})
        # Its running jobs need only PostgreSQL: they finish (or fail at Redis when they end).
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), REDIS_RETRY_SECONDS)
        if stopping.is_set():
            return None
