"""`GET /v1/me`: what the caller's key is: its id, whether it is an admin's, and how many
tenants it names. A client (the console among them) learns its scope without trying an admin
route and reading the refusal; the tenants themselves are GET /v1/tenants, a page at a time
(a key may name thousands)."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import security_scheme_blueprint, tag, validate_response

from entrypoints.http.auth import authenticate, current_principal
from entrypoints.http.schemas.directory import MeOut

blueprint = Blueprint("me", __name__, url_prefix="/v1/me")
blueprint.before_request(authenticate)
security_scheme_blueprint(blueprint, [{"apiKey": []}])


@blueprint.get("")
@tag(["tenants"])
@validate_response(MeOut, 200)
async def me() -> MeOut:
    """The calling key: its id, admin or not, and the number of tenants it names (an admin key
    reaches every tenant whatever it names)."""
    principal = current_principal()
    return MeOut(key_id=principal.key_id, admin=principal.admin, tenants=len(principal.tenants))
