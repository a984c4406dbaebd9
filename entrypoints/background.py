"""Work a process runs beside its main job: the sweeper, in-process embedding workers, and
scheduled retention runs.

The API runs it in its lifespan; `memorymesh worker` runs the sweeper beside arq, and
retention as an arq cron job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import timedelta

from opentelemetry import propagate, trace
from opentelemetry.context import Context

from application.jobs import EMBED_PENDING
from application.ports.storage import UNAVAILABLE
from config.container import Container, resolved

logger = logging.getLogger(__name__)


tracer = trace.get_tracer(__name__)


async def embed_pending(container: Container, trace_context: dict[str, str] | None = None) -> int:
    """One run of the embedding job, traced as a trace of its own, linked to the request that
    submitted it when its context came with the job (arq). A link, not a parent: a run
    submits the next while a backlog drains, and children would chain every batch into one
    endless trace under the first request."""
    submitter = trace.get_current_span(propagate.extract(trace_context)).get_span_context() if trace_context else None
    links = [trace.Link(submitter)] if submitter is not None and submitter.is_valid else []
    with tracer.start_as_current_span(
        f"job {EMBED_PENDING}", context=Context(), kind=trace.SpanKind.CONSUMER, links=links
    ) as span:
        use_case = await resolved(container.embed_pending())
        count: int = await use_case()
        span.set_attribute("memorymesh.embedded", count)
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
        except UNAVAILABLE as error:  # the database is briefly away: try again next round
            logger.warning("embedding sweep waits for the database", extra={"reason": str(error)})
        except Exception:
            logger.exception("embedding sweep failed")
        container.report_pool()  # this process's database connections, for /metrics
        if asdict(counters) != reported:  # a summary line per interval with work, not one per batch
            reported = asdict(counters)
            logger.info("embedding work so far", extra=reported)
        await asyncio.sleep(interval)


RETENTION_TICK_SECONDS = 60.0  # how often a process asks whether a scheduled run is due


async def retention_if_due(container: Container) -> None:
    """Run retention when it is due and no other process is running it (see RunRetention.run_if_due)."""
    every = container.settings().retention_schedule_seconds
    try:
        retention = await resolved(container.run_retention())
        report = await retention.run_if_due(timedelta(seconds=every))
    except UNAVAILABLE as error:  # the database is briefly away: the run is still due next tick
        logger.warning("scheduled retention run waits for the database", extra={"reason": str(error)})
        return
    except Exception:
        logger.exception("scheduled retention run failed")
        return
    if report is not None:
        logger.info(
            "scheduled retention run",
            extra={"run": str(report.run.id), "archived": report.run.archived, "deleted": report.run.deleted},
        )


async def retention_forever(container: Container) -> None:
    every = container.settings().retention_schedule_seconds
    while True:
        await retention_if_due(container)
        await asyncio.sleep(min(every, RETENTION_TICK_SECONDS))


async def run_background(container: Container) -> None:
    """Until cancelled: the sweeper; with the in-process queue also the embedding workers and
    scheduled retention (with arq, `memorymesh worker` runs those)."""
    settings = container.settings()
    queue = await resolved(container.job_queue())
    async with asyncio.TaskGroup() as group:
        group.create_task(sweep_forever(container))
        # Returns at once when other processes run the jobs (`memorymesh worker`, with arq).
        group.create_task(
            queue.run_workers({EMBED_PENDING: lambda: embed_pending(container)}, settings.embedding_workers)
        )
        if settings.queue == "inprocess" and settings.retention_schedule_seconds > 0:
            group.create_task(retention_forever(container))
