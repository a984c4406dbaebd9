"""A tenant's own rate limit: kept in the TenantLimitStore, read through a short cache, set by admins."""

from __future__ import annotations

import time
from collections.abc import Callable

from application.ports.limits import TenantLimitStore
from domain.access import Principal
from domain.message import check_id
from domain.rate_limit import RateLimit

MAX_CACHED_TENANTS = 10_000


class CachedTenantLimits:
    """Overrides read through a short per-process cache: a PUT reaches every process
    within `ttl_seconds` without a query on every request."""

    def __init__(self, store: TenantLimitStore, ttl_seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._now = now
        self._cache: dict[str, tuple[float, RateLimit | None]] = {}

    async def get(self, tenant_id: str) -> RateLimit | None:
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        rate = await self._store.get(tenant_id)
        if len(self._cache) > MAX_CACHED_TENANTS:
            self._cache.clear()
        self._cache[tenant_id] = (self._now() + self._ttl, rate)
        return rate

    async def put(self, tenant_id: str, rate: RateLimit | None) -> None:
        await self._store.put(tenant_id, rate)
        self._cache.pop(tenant_id, None)


class TenantLimits:
    """Admins set or clear a tenant's own rate limit."""

    def __init__(self, overrides: CachedTenantLimits, default: RateLimit | None) -> None:
        self._overrides = overrides
        self._default = default

    async def get(self, principal: Principal, tenant_id: str) -> tuple[RateLimit | None, RateLimit | None]:
        """The tenant's override (if any) and the default it overrides."""
        principal.require_admin()
        check_id("tenant_id", tenant_id)
        return await self._overrides.get(tenant_id), self._default

    async def put(self, principal: Principal, tenant_id: str, rate: str | None) -> RateLimit | None:
        principal.require_admin()
        check_id("tenant_id", tenant_id)
        parsed = None if rate is None else RateLimit.parse(rate, "rate_limit")
        await self._overrides.put(tenant_id, parsed)
        return parsed
