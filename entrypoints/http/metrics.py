"""`GET /metrics`: the Prometheus text format, for the scraper (no key: it shows counts by
route and mode, never a tenant or any content; keep the port off the public network)."""

from __future__ import annotations

import logging

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from adapters.postgres.database import Database
from adapters.prometheus.metrics import PrometheusMetrics
from application.queue_status import QueueStatus

logger = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@inject
async def metrics(
    exported: PrometheusMetrics = Provide["metrics"],
    status: QueueStatus = Provide["queue_status"],
    database: Database | None = Provide["database"],
) -> Response:
    """Prometheus metrics of this service (of every process sharing the port)."""
    try:
        report = await status.report()
        age = report.oldest_pending_age
        exported.queue_state(report.messages, None if age is None else age.total_seconds())
    except Exception:  # a scrape still answers, with the last queue figures, while the database is away
        logger.warning("could not read the queue for /metrics", exc_info=True)
    if database is not None:
        pool = database.pool
        exported.pool_state(pool.get_size() - pool.get_idle_size(), pool.get_idle_size())
    body, content_type = exported.exposition()
    return Response(body, status=200, content_type=content_type)
