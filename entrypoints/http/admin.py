"""Liveness and readiness: no API key needed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import tag, validate_response

from application.ports.embedder import Embedder
from application.ports.job_queue import JobQueue
from application.ports.limits import RateLimiter
from application.ports.messages import MessageRepository
from application.ports.vectors import VectorIndex
from application.throttle import FailureMode, Throttle
from config.container import Container
from entrypoints.http.schemas.admin import HealthOut, ReadinessOut

blueprint = Blueprint("admin", __name__, url_prefix="/v1/admin")

CHECK_TIMEOUT_SECONDS = 3.0


@blueprint.get("/health")
@tag(["admin"])
@validate_response(HealthOut, 200)
async def health() -> HealthOut:
    """Liveness: the process answers."""
    return HealthOut(status="ok")


async def run_check(check: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"error: no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as error:  # readiness reports whatever went wrong, by name
        return f"error: {error}"
    return "ok"


@blueprint.get("/readiness")
@tag(["admin"])
@validate_response(ReadinessOut, 200)
@validate_response(ReadinessOut, 503)
@inject
async def readiness(
    messages: MessageRepository = Provide[Container.messages],
    embedder: Embedder = Provide[Container.embedder],
    queue: JobQueue = Provide[Container.job_queue],
    limiter: RateLimiter = Provide[Container.rate_limiter],
    index: VectorIndex = Provide[Container.vector_index],
    throttle: Throttle = Provide[Container.throttle],
) -> tuple[ReadinessOut, int]:
    """Readiness: the database, the vector index and the embedder answer; 503 names what failed.

    Redis down is degraded (200), not unavailable: writes are still stored and searches answered,
    and the sweeper hands the stored writes to the workers once the job queue answers again. Taking
    every API process out of the load balancer for it would turn a delay into an outage. A rate
    limiter that cannot answer fails readiness only with MEMORY_RATE_LIMIT_FAILURE_MODE=closed.
    """
    database, vectors, model, jobs, limits = await asyncio.gather(
        run_check(messages.check()),
        run_check(index.check()),
        run_check(embedder.check()),
        run_check(queue.check()),
        run_check(limiter.check()),
    )
    checks = {"database": database, "vector_index": vectors, "embedder": model}
    ready = all(v == "ok" for v in checks.values())
    if jobs != "ok":
        jobs = f"degraded ({jobs}); writes are stored, and embedded once the queue answers again"
    checks["queue"] = jobs
    limits_degraded = limits != "ok" and throttle.failure_mode == FailureMode.OPEN
    if limits_degraded:
        unchecked = throttle.counters.store_unavailable
        limits = f"degraded ({limits}); requests pass unchecked (failure mode open), {unchecked} so far"
    checks["rate_limiter"] = limits
    ready = ready and (limits == "ok" or limits_degraded)
    degraded = limits_degraded or jobs != "ok"
    if not ready:
        return ReadinessOut(status="unavailable", checks=checks), 503
    return ReadinessOut(status="degraded" if degraded else "ready", checks=checks), 200
