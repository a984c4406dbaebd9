"""`GET /metrics`: the Prometheus text format, for the scraper (no key: it shows counts by
route and mode, never a tenant or any content; keep the port off the public network)."""

from __future__ import annotations

import asyncio
import logging

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from application.ports.observability import OperatorMetrics
from application.queue_status import QueueStatus
from config.container import Container

logger = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

QUEUE_READ_SECONDS = 1.0


@blueprint.get("/metrics")
@inject
async def metrics(
    exported: OperatorMetrics = Provide[Container.metrics],
    status: QueueStatus = Provide[Container.queue_status],
) -> Response:
    """Prometheus metrics of this service (of every process sharing the port)."""
    try:
        # Bounded: a scrape must answer even when the database is away or every connection busy.
        report = await asyncio.wait_for(status.report(), QUEUE_READ_SECONDS)
        age = report.oldest_pending_age
        exported.queue_state(report.messages, None if age is None else age.total_seconds())
    except Exception as error:  # the queue gauges keep their last reading; the read-failure counter says so
        exported.queue_read_failed()
        logger.warning("could not read the queue for /metrics", extra={"error": f"{type(error).__name__}: {error}"})
    body, content_type = exported.exposition()
    return Response(body, status=200, content_type=content_type)
