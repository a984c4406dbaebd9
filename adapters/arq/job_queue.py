"""Jobs on Redis through arq, run by `memorymesh worker` processes (entrypoints/worker.py).

Submitting never makes a request wait on Redis: it marks the job wanted, and one task
per process sends it, so a burst of writes costs one enqueue per Redis round trip rather
than one per write. If Redis is down the submission is logged and dropped: the rows are
in PostgreSQL, and the sweeper submits again once Redis answers.

At most one run of a job waits in Redis, across every process: a submission first sets
a `<queue>:waiting:<job>` flag (SET NX, with an expiry), and only the one that sets it
enqueues; the run clears the flag as it starts (`taken`), so a submission made during a
run queues the next one. Without this, writes with no worker running (or workers behind)
would pile up thousands of identical jobs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping

from arq.connections import ArqRedis
from opentelemetry import propagate

from application.ports.job_queue import Handler, JobQueue, QueueUnavailable

logger = logging.getLogger(__name__)

# A flag outlives a lost enqueue or a lost job by at most this long: then submitting works again.
WAITING_FLAG_SECONDS = 30


class ArqJobQueue(JobQueue):
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self._redis = redis
        self._queue_name = queue_name
        self._wanted: dict[str, dict[str, str]] = {}  # job: the trace context of the submission that wants it
        self._sender: asyncio.Task[None] | None = None
        self.dropped = 0

    def submit(self, job: str) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the run continues the trace of the request that asked for it
        self._wanted.setdefault(job, carrier)
        if self._sender is None or self._sender.done():
            # A context of its own: not the first submitting request's (its request id, its trace).
            self._sender = asyncio.get_running_loop().create_task(self._send(), context=contextvars.Context())

    def _flag(self, job: str) -> str:
        return f"{self._queue_name}:waiting:{job}"

    async def _send(self) -> None:
        while self._wanted:
            job, carrier = self._wanted.popitem()
            try:
                if await self._redis.set(self._flag(job), "1", nx=True, ex=WAITING_FLAG_SECONDS):
                    await self._redis.enqueue_job(job, trace_context=carrier, _queue_name=self._queue_name)
            except Exception as error:  # Redis down: the sweeper makes up for it
                self.dropped += 1
                logger.warning("could not hand a job to Redis", extra={"job": job, "error": repr(error)})

    async def run_workers(self, handlers: Mapping[str, Handler], workers: int) -> None:
        """Nothing to run here: `memorymesh worker` processes run arq's jobs."""

    async def taken(self, job: str) -> None:
        """A worker starts a run of `job`: submissions from now on queue the next run.

        Without Redis the run goes on: the flag expires by itself (WAITING_FLAG_SECONDS).
        """
        try:
            await self._redis.delete(self._flag(job))
        except Exception as error:
            logger.warning("could not clear a job's waiting flag in Redis", extra={"job": job, "error": repr(error)})

    async def queued(self) -> int:
        try:
            return int(await self._redis.zcard(self._queue_name))
        except Exception as error:
            raise QueueUnavailable(f"Redis does not answer: {type(error).__name__}: {error}") from error

    async def check(self) -> None:
        try:
            await self._redis.ping()
        except Exception as error:  # readiness reports any failure, whatever its kind
            raise QueueUnavailable(f"Redis does not answer: {type(error).__name__}: {error}") from error

    async def close(self) -> None:
        """Send what is still wanted, then stop."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
