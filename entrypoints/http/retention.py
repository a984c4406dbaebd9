"""Retention runs, for operators: admin keys only."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_request, validate_response

from application.ports.retention import RetentionRun, RetentionRuns
from application.retention import RetentionCounts, RetentionReport, RunRetention
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas.common import Problem
from entrypoints.http.schemas.retention import RetentionCountsOut, RetentionRunIn, RetentionRunOut, RetentionRunsOut

blueprint = Blueprint("retention", __name__, url_prefix="/v1/admin/retention")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])

RECENT_RUNS = 20


def counts_out(counts: RetentionCounts | RetentionRun) -> RetentionCountsOut:
    return RetentionCountsOut(examined=counts.examined, archived=counts.archived, deleted=counts.deleted)


def run_out(run: RetentionRun, tenants: dict[str, RetentionCounts] | None = None) -> RetentionRunOut:
    return RetentionRunOut(
        run_id=run.id,
        trigger=run.trigger,
        dry_run=run.dry_run,
        started_at=run.started_at,
        finished_at=run.finished_at,
        totals=counts_out(run),
        tenants={t: counts_out(c) for t, c in (tenants or {}).items()},
        skipped=run.skipped,
        failed=run.failed,
    )


@blueprint.post("/run")
@tag(["admin"])
@validate_request(RetentionRunIn)
@validate_response(RetentionRunOut, 200)
@validate_response(Problem, 403)
@validate_response(Problem, 409)
@validate_response(Problem, 422)
@inject
async def run(data: RetentionRunIn, retention: RunRetention = Provide[Container.run_retention]) -> RetentionRunOut:
    """Apply the retention policies now (one tenant, or all) and answer with the counts; a dry run
    changes nothing. A tenant the run could not finish is in `failed`, and the run goes on with
    the others. 409 while another run is in progress. For very large stores prefer
    `memorymesh retention run`, which shows its progress."""
    current_principal().require_admin()
    report: RetentionReport = await retention(data.tenant_id, dry_run=data.dry_run, trigger="admin")
    return run_out(report.run, report.tenants)


@blueprint.get("/runs")
@tag(["admin"])
@validate_response(RetentionRunsOut, 200)
@validate_response(Problem, 403)
@inject
async def runs(history: RetentionRuns = Provide[Container.retention_runs]) -> RetentionRunsOut:
    """The latest runs, newest first; a run without finished_at is in progress, or was cut short
    (the schedule takes it up again)."""
    current_principal().require_admin()
    return RetentionRunsOut(runs=[run_out(r) for r in await history.recent(RECENT_RUNS)])
