"""Per-tenant settings for operators: admin keys only."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_request, validate_response

from application.delete_messages import EraseMessages, ErasureReceipt
from application.retention import TenantPolicy, TenantRetention
from application.tenant_limits import TenantLimits
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas.admin import TenantLimitIn, TenantLimitOut
from entrypoints.http.schemas.common import Problem
from entrypoints.http.schemas.messages import ErasureOut
from entrypoints.http.schemas.retention import RetentionPolicyIn, RetentionPolicyOut, TenantRetentionOut

blueprint = Blueprint("tenants", __name__, url_prefix="/v1/admin/tenants")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


def text(rate: object | None) -> str | None:
    return None if rate is None else str(rate)


def erasure_out(receipt: ErasureReceipt) -> ErasureOut:
    deleted = {"messages": receipt.messages, "vectors": receipt.vectors}
    if receipt.conversation_id is None:
        deleted |= {"tenant_retention": receipt.tenant_retention, "tenant_limits": receipt.tenant_limits}
    return ErasureOut(tenant_id=receipt.tenant_id, conversation_id=receipt.conversation_id, deleted=deleted)


def retention_out(tenant_id: str, found: TenantPolicy) -> TenantRetentionOut:
    return TenantRetentionOut(
        tenant_id=tenant_id,
        overrides=found.overrides,
        policy=None if found.policy is None else RetentionPolicyOut.model_validate(found.policy.describe()),
        problem=found.problem,
    )


@blueprint.put("/<tenant_id>/limits")
@tag(["admin"])
@validate_request(TenantLimitIn)
@validate_response(TenantLimitOut, 200)
@validate_response(Problem, 403)
@validate_response(Problem, 422)
@inject
async def put_limits(
    tenant_id: str, data: TenantLimitIn, limits: TenantLimits = Provide[Container.tenant_limits]
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
async def get_limits(tenant_id: str, limits: TenantLimits = Provide[Container.tenant_limits]) -> TenantLimitOut:
    """This tenant's own rate limit, if any, and the default."""
    rate, default = await limits.get(current_principal(), tenant_id)
    return TenantLimitOut(tenant_id=tenant_id, rate_limit=text(rate), default=text(default))


@blueprint.get("/<tenant_id>/retention")
@tag(["admin"])
@validate_response(TenantRetentionOut, 200)
@validate_response(Problem, 403)
@inject
async def get_retention(
    tenant_id: str, retention: TenantRetention = Provide[Container.tenant_retention]
) -> TenantRetentionOut:
    """The tenant's retention overrides and the policy that applies to it."""
    return retention_out(tenant_id, await retention.get(current_principal(), tenant_id))


@blueprint.put("/<tenant_id>/retention")
@tag(["admin"])
@validate_request(RetentionPolicyIn)
@validate_response(TenantRetentionOut, 200)
@validate_response(Problem, 403)
@validate_response(Problem, 422)
@inject
async def put_retention(
    tenant_id: str, data: RetentionPolicyIn, retention: TenantRetention = Provide[Container.tenant_retention]
) -> TenantRetentionOut:
    """Replace the tenant's overrides: the fields sent (null days mean never); the others follow
    the service default. An empty object clears them."""
    overrides = {name: getattr(data, name) for name in sorted(data.model_fields_set)}
    return retention_out(tenant_id, await retention.put(current_principal(), tenant_id, overrides))


@blueprint.delete("/<tenant_id>")
@tag(["admin"])
@validate_response(ErasureOut, 200)
@validate_response(Problem, 403)
@validate_response(Problem, 422)
@inject
async def erase_tenant(tenant_id: str, erase: EraseMessages = Provide[Container.erase_messages]) -> ErasureOut:
    """Erase everything the tenant has: messages, vectors, retention and rate-limit settings."""
    return erasure_out(await erase.tenant(current_principal(), tenant_id))
