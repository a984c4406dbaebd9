"""Who is calling and how often: the x-api-key header, resolved to a Principal before every
/v1 route, and the rate limits of that key and of the tenant a route acts on."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Response, g, request

from application.ports.keys import ApiKeys
from application.throttle import Throttle
from config.container import Container
from domain.access import Principal
from domain.rate_limit import RateDecision
from entrypoints.http.errors import Unauthorized, rate_limit_headers

API_KEY_HEADER = "x-api-key"
MAX_KEY_LENGTH = 256


@inject
async def authenticate(
    api_keys: ApiKeys = Provide[Container.api_keys], throttle: Throttle = Provide[Container.throttle]
) -> None:
    presented = request.headers.get(API_KEY_HEADER)
    if not presented:
        raise Unauthorized(f"send your API key in the {API_KEY_HEADER} header")
    principal = None if len(presented) > MAX_KEY_LENGTH else await api_keys.resolve(presented)
    if principal is None:
        raise Unauthorized("the API key is not valid")
    g.principal = principal
    remember(await throttle.key(principal))


@inject
async def limit_tenant(tenant_id: str, throttle: Throttle = Provide[Container.throttle]) -> None:
    """Count this request against the tenant it acts on (call it in every route that names one)."""
    g.tenant_id = tenant_id[:128]  # for the request's log line (checked later; bounded here)
    remember(await throttle.tenant(current_principal(), tenant_id))


@inject
async def limit_messages(tenant_id: str, count: int, throttle: Throttle = Provide[Container.throttle]) -> None:
    """Count the messages a write stores against the tenant's message limit."""
    remember(await throttle.messages(current_principal(), tenant_id, count))


def remember(decision: RateDecision | None) -> None:
    """Keep the tightest limit this request is under, for the RateLimit-* response headers."""
    if decision is None:
        return
    current: RateDecision | None = g.get("rate_decision")
    if current is None or decision.remaining < current.remaining:
        g.rate_decision = decision


async def add_rate_limit_headers(response: Response) -> Response:
    decision: RateDecision | None = g.get("rate_decision")
    if decision is not None:
        for name, value in rate_limit_headers(decision).items():
            response.headers.setdefault(name, value)  # a 429 already carries the limit that refused it
    return response


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal
