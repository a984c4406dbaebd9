"""Rate limits: the counting store and per-tenant overrides."""

from __future__ import annotations

from typing import Protocol

from domain.errors import DomainError
from domain.rate_limit import RateDecision, RateLimit


class RateLimiterUnavailable(DomainError):
    """The shared rate-limit store cannot be reached right now."""

    code = "rate_limiter_unavailable"


class RateLimiter(Protocol):
    async def hit(self, bucket: str, rate: RateLimit, cost: int = 1) -> RateDecision:
        """Count a request of `cost` units against `bucket` (atomically, across every process
        sharing the store); raise RateLimiterUnavailable when the store cannot answer."""
        ...

    async def check(self) -> None: ...


class TenantLimitStore(Protocol):
    """Per-tenant rate limits that override MEMORY_TENANT_RATE_LIMIT."""

    async def get(self, tenant_id: str) -> RateLimit | None: ...

    async def put(self, tenant_id: str, rate: RateLimit | None) -> None:
        """Set the tenant's limit; None removes the override."""
        ...
