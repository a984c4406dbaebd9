from __future__ import annotations

from application.ports.limits import TenantLimitStore
from domain.rate_limit import RateLimit


class InMemoryTenantLimitStore(TenantLimitStore):
    def __init__(self) -> None:
        self.limits: dict[str, RateLimit] = {}

    async def get(self, tenant_id: str) -> RateLimit | None:
        return self.limits.get(tenant_id)

    async def put(self, tenant_id: str, rate: RateLimit | None) -> None:
        if rate is None:
            self.limits.pop(tenant_id, None)
        else:
            self.limits[tenant_id] = rate
