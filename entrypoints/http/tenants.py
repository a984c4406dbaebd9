"""Per-tenant settings for operators: admin keys only."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_request, validate_response

from application.tenant_limits import TenantLimits
from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas import Problem, TenantLimitIn, TenantLimitOut

blueprint = Blueprint("tenants", __name__, url_prefix="/v1/admin/tenants")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


def text(rate: object | None) -> str | None:
    return None if rate is None else str(rate)


@blueprint.put("/<tenant_id>/limits")
@tag(["admin"])
@validate_request(TenantLimitIn)
@validate_response(TenantLimitOut, 200)
@validate_response(Problem, 403)
@validate_response(Problem, 422)
@inject
async def put_limits(
    tenant_id: str, data: TenantLimitIn, limits: TenantLimits = Provide["tenant_limits"]
) -> TenantLimitOut:
    """Set this tenant's rate limit (every process applies it within MEMORY_TENANT_LIMITS_CACHE_SECONDS)."""
    principal = current_principal()
    await limits.put(principal, tenant_id, data.rate_limit)
    rate, default = await limits.get(principal, tenant_id)
    return TenantLimitOut(tenant_id=tenant_id, rate_limit=text(rate), default=text(default))


@blueprint.get("/<tenant_id>/limits")
@tag(["admin"])
@validate_response(TenantLimitOut, 200)
@validate_response(Problem, 403)
@inject
async def get_limits(tenant_id: str, limits: TenantLimits = Provide["tenant_limits"]) -> TenantLimitOut:
    """This tenant's own rate limit, if any, and the default."""
    rate, default = await limits.get(current_principal(), tenant_id)
    return TenantLimitOut(tenant_id=tenant_id, rate_limit=text(rate), default=text(default))
