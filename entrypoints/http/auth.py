"""Who is calling: the x-api-key header, resolved to a Principal before every /v1 route."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import g, request

from application.ports import ApiKeys
from domain.access import Principal
from entrypoints.http.errors import Unauthorized

API_KEY_HEADER = "x-api-key"
MAX_KEY_LENGTH = 256


@inject
async def authenticate(api_keys: ApiKeys = Provide["api_keys"]) -> None:
    presented = request.headers.get(API_KEY_HEADER)
    if not presented:
        raise Unauthorized(f"send your API key in the {API_KEY_HEADER} header")
    principal = None if len(presented) > MAX_KEY_LENGTH else await api_keys.resolve(presented)
    if principal is None:
        raise Unauthorized("the API key is not valid")
    g.principal = principal


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal
