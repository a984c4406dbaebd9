from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_response

from application.search_memory import SearchMemory, SearchQuery
from entrypoints.http.auth import authenticate, current_principal, limit_tenant
from entrypoints.http.schemas import Problem, SearchArgs, SearchOut, SearchResultOut

blueprint = Blueprint("memory", __name__, url_prefix="/v1/memory")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


@blueprint.get("/search")
@tag(["memory"])
@validate_querystring(SearchArgs)
@validate_response(SearchOut, 200)
@validate_response(Problem, 422)
@inject
async def search(query_args: SearchArgs, search_memory: SearchMemory = Provide["search_memory"]) -> SearchOut:
    """The stored messages most relevant to `query`, best first, with each score's parts."""
    await limit_tenant(query_args.tenant_id)
    ranked = await search_memory(
        current_principal(),
        SearchQuery(
            tenant_id=query_args.tenant_id,
            query=query_args.query,
            top_k=query_args.top_k,
            conversation_id=query_args.conversation_id,
            role=query_args.role,
            since=query_args.since,
            until=query_args.until,
            min_importance=query_args.min_importance,
        ),
    )
    return SearchOut(results=[SearchResultOut.of(r) for r in ranked])
