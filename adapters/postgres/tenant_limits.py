from __future__ import annotations

from datetime import timedelta

from adapters.postgres.database import Database, storage_errors
from application.ports.limits import TenantLimitStore
from domain.rate_limit import RateLimit


class PgTenantLimitStore(TenantLimitStore):
    def __init__(self, database: Database) -> None:
        self._database = database

    @storage_errors
    async def get(self, tenant_id: str) -> RateLimit | None:
        row = await self._database.executor().fetchrow(
            "SELECT requests, period_seconds FROM tenant_limits WHERE tenant_id = $1", tenant_id
        )
        return None if row is None else RateLimit(row["requests"], timedelta(seconds=row["period_seconds"]))

    @storage_errors
    async def put(self, tenant_id: str, rate: RateLimit | None) -> None:
        if rate is None:
            await self._database.executor().execute("DELETE FROM tenant_limits WHERE tenant_id = $1", tenant_id)
            return
        await self._database.executor().execute(
            "INSERT INTO tenant_limits (tenant_id, requests, period_seconds) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id) DO UPDATE SET requests = EXCLUDED.requests, "
            "period_seconds = EXCLUDED.period_seconds, updated_at = now()",
            tenant_id,
            rate.limit,
            int(rate.period.total_seconds()),
        )
