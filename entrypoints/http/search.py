from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_request, validate_response

from application.fair_share import TenantShares
from application.search_memory import SearchMemory, SearchQuery
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal, limit_tenant
from entrypoints.http.schemas.common import Problem
from entrypoints.http.schemas.search import SearchArgs, SearchIn, SearchOut, SearchResultOut

blueprint = Blueprint("memory", __name__, url_prefix="/v1/memory")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


def search_query(args: SearchArgs, metadata: dict[str, Any] | None = None) -> SearchQuery:
    return SearchQuery(
        tenant_id=args.tenant_id,
        query=args.query,
        mode=args.mode,
        top_k=args.top_k,
        conversation_id=args.conversation_id,
        role=args.role,
        since=args.since,
        until=args.until,
        min_importance=args.min_importance,
        metadata=metadata,
        user_id=args.user_id,
    )


@blueprint.get("/search")
@tag(["memory"])
@validate_querystring(SearchArgs)
@validate_response(SearchOut, 200)
@validate_response(Problem, 422)
@inject
async def search(
    query_args: SearchArgs,
    search_memory: SearchMemory = Provide[Container.search_memory],
    shares: TenantShares = Provide[Container.tenant_shares],
) -> SearchOut:
    """The stored messages most relevant to `query`, best first, with each score's parts."""
    await limit_tenant(query_args.tenant_id)
    async with shares.hold(query_args.tenant_id):
        ranked = await search_memory(current_principal(), search_query(query_args))
    return SearchOut(results=[SearchResultOut.of(r) for r in ranked])


@blueprint.post("/search")
@tag(["memory"])
@validate_request(SearchIn)
@validate_response(SearchOut, 200)
@validate_response(Problem, 422)
@inject
async def search_by_body(
    data: SearchIn,
    search_memory: SearchMemory = Provide[Container.search_memory],
    shares: TenantShares = Provide[Container.tenant_shares],
) -> SearchOut:
    """The same search with a JSON body, which can also filter on metadata (JSON containment)."""
    await limit_tenant(data.tenant_id)
    async with shares.hold(data.tenant_id):
        ranked = await search_memory(current_principal(), search_query(data, data.metadata))
    return SearchOut(results=[SearchResultOut.of(r) for r in ranked])
