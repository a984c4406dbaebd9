"""What an operator's console lists: the tenants a key may see, and a tenant's conversations."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_querystring, validate_response

from application.browse_tenants import BrowseTenants
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal, limit_tenant
from entrypoints.http.schemas.common import Problem
from entrypoints.http.schemas.directory import ConversationsOut, ListingArgs, TenantsOut

blueprint = Blueprint("directory", __name__, url_prefix="/v1/tenants")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


@blueprint.get("")
@tag(["tenants"])
@validate_querystring(ListingArgs)
@validate_response(TenantsOut, 200)
@validate_response(Problem, 422)
@inject
async def list_tenants(
    query_args: ListingArgs, browse: BrowseTenants = Provide[Container.browse_tenants]
) -> TenantsOut:
    """The tenants this key may see, in id order, a page at a time: with an admin key every
    tenant that holds a message, with a tenant key its own tenants (and no other)."""
    page = await browse.tenants(current_principal(), after=query_args.after, limit=query_args.limit)
    return TenantsOut.of(page)


@blueprint.get("/<tenant_id>/conversations")
@tag(["tenants"])
@validate_querystring(ListingArgs)
@validate_response(ConversationsOut, 200)
@validate_response(Problem, 403)
@validate_response(Problem, 422)
@inject
async def list_conversations(
    tenant_id: str, query_args: ListingArgs, browse: BrowseTenants = Provide[Container.browse_tenants]
) -> ConversationsOut:
    """The tenant's conversations in id order, a page at a time, each with its message count
    (archived ones included), its archived count, and the times of its first and last message."""
    await limit_tenant(tenant_id)
    listing = await browse.conversations(current_principal(), tenant_id, after=query_args.after, limit=query_args.limit)
    return ConversationsOut.of(listing)
