"""Fair shares of one process: a bound on the expensive requests (searches, batch writes) one
tenant has in progress at once.

A rate limit counts requests over a minute; it does not stop a tenant from sending its
whole minute's allowance at once. Twenty heavy searches in one burst held every database
connection, and the other tenants' searches waited behind them. With this bound a tenant
works on at most `max_in_flight` expensive requests at a time, as many more wait up to
`wait_seconds` for one to finish, and the rest are refused at once with 429 `tenant_busy`
and Retry-After. Other tenants keep the remaining connections.

Per process: with several API processes behind a balancer a tenant may have this many in
each. Memory is bounded by the tenants with requests in progress: an idle tenant has no entry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.ports.observability import Metrics
from domain.errors import DomainError

RETRY_AFTER_SECONDS = 1


class TenantBusy(DomainError):
    code = "tenant_busy"
    retry_after_seconds = RETRY_AFTER_SECONDS

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this tenant already has {limit} searches or batch writes in progress on this server, and as many "
            f"waiting; retry in {RETRY_AFTER_SECONDS} s"
        )


@dataclass(frozen=True, slots=True)
class FairShareSettings:
    max_in_flight: int = 4  # per tenant and process; 0: no bound
    wait_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.max_in_flight < 0 or self.wait_seconds < 0:
            raise ValueError("fair share settings must not be negative")


class _Share:
    __slots__ = ("holders", "slots", "waiting")

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.waiting = 0
        self.holders = 0  # in progress or waiting: the entry goes when this is back to 0


class TenantShares:
    def __init__(self, settings: FairShareSettings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._shares: dict[str, _Share] = {}

    def in_progress(self, tenant_id: str) -> int:
        share = self._shares.get(tenant_id)
        return 0 if share is None else share.holders - share.waiting

    @contextlib.asynccontextmanager
    async def hold(self, tenant_id: str) -> AsyncIterator[None]:
        """A slot of the tenant's share for the duration of the block; TenantBusy if none frees."""
        limit = self._settings.max_in_flight
        if limit == 0:
            yield
            return
        share = self._shares.setdefault(tenant_id, _Share(limit))
        share.holders += 1
        try:
            await self._acquire(share, limit)
            try:
                yield
            finally:
                share.slots.release()
        finally:
            share.holders -= 1
            if share.holders == 0:
                del self._shares[tenant_id]

    async def _acquire(self, share: _Share, limit: int) -> None:
        if not share.slots.locked():
            await share.slots.acquire()  # free: returns at once
            return
        if share.waiting >= limit or self._settings.wait_seconds <= 0:
            self._refuse(limit)
        share.waiting += 1
        try:
            async with asyncio.timeout(self._settings.wait_seconds):
                await share.slots.acquire()
        except TimeoutError:
            self._refuse(limit)
        finally:
            share.waiting -= 1

    def _refuse(self, limit: int) -> None:
        self._metrics.rate_limited("tenant_in_progress")
        raise TenantBusy(limit)
