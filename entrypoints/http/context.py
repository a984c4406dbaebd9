"""POST /v1/context: what to put in front of a model for its next turn."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_request, validate_response

from application.build_context import BuildContext, ContextRequest
from application.fair_share import TenantShares
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal, limit_tenant
from entrypoints.http.schemas.common import Problem
from entrypoints.http.schemas.context import ContextIn, ContextOut

blueprint = Blueprint("context", __name__, url_prefix="/v1/context")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


def context_request(data: ContextIn) -> ContextRequest:
    return ContextRequest(
        tenant_id=data.tenant_id,
        conversation_id=data.conversation_id,
        max_tokens=data.max_tokens,
        query=data.query,
        recent=data.recent,
        scope=data.scope,
        user_id=data.user_id,
        mode=data.mode,
        role=data.role,
        since=data.since,
        until=data.until,
        min_importance=data.min_importance,
        metadata=data.metadata,
    )


@blueprint.post("")
@tag(["memory"])
@validate_request(ContextIn)
@validate_response(ContextOut, 200)
@validate_response(Problem, 422)
@inject
async def context(
    data: ContextIn,
    build_context: BuildContext = Provide[Container.build_context],
    shares: TenantShares = Provide[Container.tenant_shares],
) -> ContextOut:
    """The conversation's latest turns and the memories that matter, each once, within `max_tokens`
    (counted by the real tokenizer), and a dated plain-text prompt of both for a system message.
    Call it before each model call."""
    await limit_tenant(data.tenant_id)
    async with shares.hold(data.tenant_id):
        built = await build_context(current_principal(), context_request(data))
    return ContextOut.of(built)
