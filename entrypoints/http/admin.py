"""Liveness and readiness: no API key needed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import tag, validate_response

from application.ports import Embedder, JobQueue, MessageRepository
from entrypoints.http.schemas import HealthOut, ReadinessOut

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
    messages: MessageRepository = Provide["messages"],
    embedder: Embedder = Provide["embedder"],
    queue: JobQueue = Provide["job_queue"],
) -> tuple[ReadinessOut, int]:
    """Readiness: the database, the embedder and the job queue answer; 503 names what failed."""
    database, model, jobs = await asyncio.gather(
        run_check(messages.check()), run_check(embedder.check()), run_check(queue.check())
    )
    checks = {"database": database, "embedder": model, "queue": jobs}
    ready = all(v == "ok" for v in checks.values())
    return ReadinessOut(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503
