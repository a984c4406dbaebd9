"""What the embedding queue holds right now (`GET /v1/admin/queue`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from application.embed_pending import EmbeddingCounters
from application.jobs import EMBED_PENDING
from application.ports.clock import Clock
from application.ports.embedding_queue import EmbeddingQueue, QueueStats
from application.ports.job_queue import JobQueue
from domain.access import Principal
from domain.message import check_id


@dataclass(frozen=True, slots=True)
class QueueReport:
    messages: QueueStats
    oldest_pending_age: timedelta | None
    jobs_queued: int
    this_process: EmbeddingCounters


class QueueStatus:
    def __init__(
        self, embedding_queue: EmbeddingQueue, queue: JobQueue, clock: Clock, counters: EmbeddingCounters
    ) -> None:
        self._embedding_queue = embedding_queue
        self._queue = queue
        self._clock = clock
        self._counters = counters

    async def __call__(self, principal: Principal) -> QueueReport:
        principal.require_admin()
        return await self.report()

    async def report(self) -> QueueReport:
        """Without a caller to check: for the metrics scrape, which shows counts and no tenant."""
        stats = await self._embedding_queue.queue_stats()
        oldest = stats.oldest_pending_stored_at
        return QueueReport(
            messages=stats,
            oldest_pending_age=None if oldest is None else max(self._clock.now() - oldest, timedelta(0)),
            jobs_queued=await self._queue.queued(),
            this_process=self._counters,
        )


class RequeueFailed:
    """Give failed messages (of one tenant, or all) fresh tries, once what failed them is fixed."""

    def __init__(self, embedding_queue: EmbeddingQueue, queue: JobQueue) -> None:
        self._embedding_queue = embedding_queue
        self._queue = queue

    async def __call__(self, principal: Principal, tenant_id: str | None) -> int:
        principal.require_admin()
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        requeued = await self._embedding_queue.requeue_failed(tenant_id)
        if requeued:
            self._queue.submit(EMBED_PENDING)
        return requeued
