"""Work a process runs beside its main job: the sweeper, and in-process embedding workers.

The API runs it in its lifespan; `memorymesh worker` runs the sweeper beside arq.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict

from adapters.memory.job_queue import InMemoryJobQueue
from application.jobs import EMBED_PENDING
from config.container import Container, resolved

logger = logging.getLogger(__name__)


async def embed_pending(container: Container) -> int:
    use_case = await resolved(container.embed_pending())
    count: int = await use_case()
    return count


async def sweep_forever(container: Container) -> None:
    """Every MEMORY_EMBEDDING_SWEEP_SECONDS, starting now (to pick up what a restart left)."""
    interval = container.settings().embedding_sweep_seconds
    counters = container.embedding_counters()
    reported = asdict(counters)
    while True:
        try:
            sweep = await resolved(container.sweep_embeddings())
            await sweep()
        except Exception:  # e.g. the database is briefly away: try again next round
            logger.exception("embedding sweep failed")
        if asdict(counters) != reported:  # a summary line per interval with work, not one per batch
            reported = asdict(counters)
            logger.info("embedding work so far", extra=reported)
        await asyncio.sleep(interval)


async def run_background(container: Container) -> None:
    """Until cancelled: the sweeper, and the embedding workers when the queue is in-process."""
    queue = await resolved(container.job_queue())
    async with asyncio.TaskGroup() as group:
        group.create_task(sweep_forever(container))
        if isinstance(queue, InMemoryJobQueue):
            workers = container.settings().embedding_workers
            group.create_task(queue.work({EMBED_PENDING: lambda: embed_pending(container)}, workers))
