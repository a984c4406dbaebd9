"""Rate limits on who calls (the API key) and on what they act on (the tenant).

The buckets are keyed by the authenticated key id and by a tenant the key may touch,
never by anything else a client sends, so no header moves a caller to a fresh bucket,
and a key cannot drain the bucket of a tenant it does not hold.

When the shared store (Redis) cannot answer, MEMORY_RATE_LIMIT_FAILURE_MODE decides:
open lets the request through, closed refuses it with a 503. Either way it is counted
and logged, at most once a minute.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

from application.ports.limits import RateLimiter, RateLimiterUnavailable
from application.ports.observability import Metrics
from application.tenant_limits import CachedTenantLimits
from domain.access import Principal
from domain.errors import DomainError
from domain.message import ID_PATTERN
from domain.rate_limit import RateDecision, RateLimit

logger = logging.getLogger(__name__)


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, decision: RateDecision, scope: str, unit: str = "requests") -> None:
        super().__init__(
            f"rate limit of {decision.limit} {unit} reached for this {scope}; retry in {decision.retry_after:.1f} s"
        )
        self.decision = decision


class FailureMode(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    key_limit: RateLimit | None = None
    tenant_limit: RateLimit | None = None
    message_limit: RateLimit | None = None  # messages written per tenant (a batch counts each)
    failure_mode: FailureMode = FailureMode.OPEN
    log_interval_seconds: float = 60.0


@dataclass
class ThrottleCounters:
    store_unavailable: int = 0  # decisions the store could not make (let through when open)


class Throttle:
    def __init__(
        self,
        limiter: RateLimiter,
        overrides: CachedTenantLimits,
        settings: ThrottleSettings,
        counters: ThrottleCounters,
        metrics: Metrics,
    ) -> None:
        self._limiter = limiter
        self._overrides = overrides
        self._settings = settings
        self._counters = counters
        self._metrics = metrics
        self._last_logged = float("-inf")

    async def key(self, principal: Principal) -> RateDecision | None:
        """Count a request of this key; raise RateLimited past its limit."""
        if self._settings.key_limit is None:
            return None
        return await self._hit(f"key:{principal.key_id}", self._settings.key_limit, "API key")

    async def tenant(self, principal: Principal, tenant_id: str) -> RateDecision | None:
        """Count a request on this tenant, if the key may touch it (else the use case refuses it)."""
        if not ID_PATTERN.fullmatch(tenant_id) or not principal.may_access(tenant_id):
            return None
        rate = await self._overrides.get(tenant_id) or self._settings.tenant_limit
        if rate is None:
            return None
        return await self._hit(f"tenant:{tenant_id}", rate, "tenant")

    async def messages(self, principal: Principal, tenant_id: str, count: int) -> RateDecision | None:
        """Count `count` messages written to this tenant; raise RateLimited past its limit."""
        rate = self._settings.message_limit
        if rate is None or not ID_PATTERN.fullmatch(tenant_id) or not principal.may_access(tenant_id):
            return None
        # A count above the limit could never pass: the write is refused for its size instead
        # (MEMORY_MAX_BATCH_MESSAGES, which the settings keep at or under the limit).
        cost = min(count, rate.limit)
        return await self._hit(f"messages:{tenant_id}", rate, "tenant", cost=cost, unit="messages")

    async def _hit(
        self, bucket: str, rate: RateLimit, scope: str, cost: int = 1, unit: str = "requests"
    ) -> RateDecision | None:
        try:
            decision = await self._limiter.hit(bucket, rate, cost)
        except RateLimiterUnavailable as error:
            self._counters.store_unavailable += 1
            self._metrics.rate_limiter_unavailable(self._settings.failure_mode.value)
            now = time.monotonic()
            if now - self._last_logged >= self._settings.log_interval_seconds:
                self._last_logged = now
                logger.warning(
                    "rate limits cannot be checked",
                    extra={
                        "failure_mode": self._settings.failure_mode.value,
                        "error": str(error),
                        "unchecked_so_far": self._counters.store_unavailable,
                    },
                )
            if self._settings.failure_mode == FailureMode.CLOSED:
                raise
            return None
        if not decision.allowed:
            self._metrics.rate_limited(scope)
            raise RateLimited(decision, scope, unit)
        return decision

    @property
    def failure_mode(self) -> FailureMode:
        return self._settings.failure_mode

    @property
    def counters(self) -> ThrottleCounters:
        return self._counters
