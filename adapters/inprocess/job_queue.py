"""Jobs run by asyncio tasks inside this process: the default, no Redis needed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from application.ports.job_queue import Handler, JobQueue
from application.ports.storage import UNAVAILABLE

logger = logging.getLogger(__name__)


class InProcessJobQueue(JobQueue):
    """A job waits here until one of `work`'s tasks takes it. A job already waiting is not
    queued twice: the run it waits for covers every submission made before it starts."""

    def __init__(self) -> None:
        self._jobs: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: set[str] = set()

    def submit(self, job: str) -> None:
        if job not in self._waiting:
            self._waiting.add(job)
            self._jobs.put_nowait(job)

    async def queued(self) -> int:
        return self._jobs.qsize()

    async def check(self) -> None:
        return None

    async def run_workers(self, handlers: Mapping[str, Handler], workers: int) -> None:
        """This process runs the jobs: `work` until cancelled."""
        await self.work(handlers, workers)

    async def taken(self, job: str) -> None:
        """Nothing to keep: a job leaves the queue as a worker takes it."""

    async def work(self, handlers: Mapping[str, Handler], concurrency: int) -> None:
        """Run jobs with `concurrency` tasks until cancelled; a failing job is logged, not fatal."""
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(self._worker(handlers))

    async def _worker(self, handlers: Mapping[str, Handler]) -> None:
        while True:
            job = await self._jobs.get()
            self._waiting.discard(job)
            try:
                await handlers[job]()
            except UNAVAILABLE as error:  # the database or the model is away: expected, and said once a job
                logger.warning("background job waits for a part", extra={"job": job, "reason": str(error)})
            except Exception:  # the sweeper brings the work back; keep this worker alive
                logger.exception("background job failed", extra={"job": job})
