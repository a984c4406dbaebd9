"""API keys the service keeps: admins create, list and revoke them."""

from __future__ import annotations

from datetime import UTC, datetime

from dependency_injector.wiring import Provide, inject
from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_request, validate_response

from application.api_keys import ManageApiKeys
from config.container import Container
from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas.admin import ApiKeyIn, ApiKeyOut, ApiKeysOut, CreatedApiKeyOut
from entrypoints.http.schemas.common import Problem

blueprint = Blueprint("api_keys", __name__, url_prefix="/v1/admin/api-keys")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


@blueprint.post("")
@tag(["admin"])
@validate_request(ApiKeyIn)
@validate_response(CreatedApiKeyOut, 201)
@validate_response(Problem, 403)
@validate_response(Problem, 422)
@inject
async def create_key(
    data: ApiKeyIn, keys: ManageApiKeys = Provide[Container.manage_api_keys]
) -> tuple[CreatedApiKeyOut, int]:
    """Create a key; the answer shows it this once (only its hash is kept)."""
    created = await keys.create(current_principal(), data.name, frozenset(data.tenants), data.admin)
    principal = created.principal
    return (
        CreatedApiKeyOut(
            id=created.id,
            key=created.key,
            name=data.name.strip(),
            tenants=sorted(principal.tenants),
            admin=principal.admin,
            created_at=datetime.now(UTC),
            revoked_at=None,
        ),
        201,
    )


@blueprint.get("")
@tag(["admin"])
@validate_response(ApiKeysOut, 200)
@validate_response(Problem, 403)
@inject
async def list_keys(keys: ManageApiKeys = Provide[Container.manage_api_keys]) -> ApiKeysOut:
    """Every key the service keeps, revoked ones included; never the keys themselves."""
    return ApiKeysOut(api_keys=[ApiKeyOut.of(info) for info in await keys.list_keys(current_principal())])


@blueprint.delete("/<key_id>")
@tag(["admin"])
@validate_response(Problem, 404)
@inject
async def revoke_key(key_id: str, keys: ManageApiKeys = Provide[Container.manage_api_keys]) -> tuple[str, int]:
    """Revoke a key: from the next request on, in every process, it is refused."""
    await keys.revoke(current_principal(), key_id)
    return "", 204
