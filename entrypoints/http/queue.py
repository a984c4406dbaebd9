"""The embedding queue, for operators: admin keys only."""

from __future__ import annotations

from dataclasses import asdict

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_request, validate_response

from application.queue_status import QueueStatus, RequeueFailed
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas.admin import QueueOut, RequeueIn, RequeueOut
from entrypoints.http.schemas.common import Problem

blueprint = Blueprint("queue", __name__, url_prefix="/v1/admin")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


@blueprint.get("/queue")
@tag(["admin"])
@validate_response(QueueOut, 200)
@validate_response(Problem, 403)
@inject
async def queue(status: QueueStatus = Provide[Container.queue_status]) -> QueueOut:
    """Pending, claimed and failed messages, the age of the oldest pending one, and queued jobs."""
    report = await status(current_principal())
    age = report.oldest_pending_age
    return QueueOut(
        pending=report.messages.pending,
        claimed=report.messages.claimed,
        failed=report.messages.failed,
        oldest_pending_age_seconds=None if age is None else age.total_seconds(),
        jobs_queued=report.jobs_queued,
        this_process=asdict(report.this_process),
    )


@blueprint.post("/queue/retry-failed")
@tag(["admin"])
@validate_request(RequeueIn)
@validate_response(RequeueOut, 200)
@validate_response(Problem, 403)
@inject
async def retry_failed(data: RequeueIn, requeue: RequeueFailed = Provide[Container.requeue_failed]) -> RequeueOut:
    """Put failed messages back in the queue with fresh tries (after fixing what failed them)."""
    return RequeueOut(requeued=await requeue(current_principal(), data.tenant_id))
