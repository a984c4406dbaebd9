"""A tenant's share of one process: at most `max_in_flight` expensive requests in progress, as
many more waiting, the rest refused at once; other tenants are never held back by it."""

from __future__ import annotations

import asyncio

import pytest

from application.fair_share import FairShareSettings, TenantBusy, TenantShares
from tests.fakes.metrics import InMemoryMetrics


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Work:
    def __init__(self, shares: TenantShares) -> None:
        self.shares = shares
        self.release = asyncio.Event()
        self.running: dict[str, int] = {}
        self.most: dict[str, int] = {}

    async def do(self, tenant: str) -> str:
        async with self.shares.hold(tenant):
            self.running[tenant] = self.running.get(tenant, 0) + 1
            self.most[tenant] = max(self.most.get(tenant, 0), self.running[tenant])
            await self.release.wait()
            self.running[tenant] -= 1
        return tenant


def shares(max_in_flight: int = 2, wait_seconds: float = 60) -> tuple[TenantShares, InMemoryMetrics]:
    metrics = InMemoryMetrics()
    return TenantShares(FairShareSettings(max_in_flight, wait_seconds), metrics), metrics


async def test_a_tenant_past_its_share_and_its_waiting_room_is_refused_at_once():
    tenant_shares, metrics = shares(max_in_flight=2)
    work = Work(tenant_shares)
    held = [asyncio.create_task(work.do("loud")) for _ in range(4)]  # 2 in progress, 2 waiting
    await settle()
    assert work.running == {"loud": 2}

    with pytest.raises(TenantBusy) as refused:
        await asyncio.wait_for(work.do("loud"), 1)
    assert refused.value.code == "tenant_busy"
    assert metrics.counts["rate_limited:tenant_in_progress"] == 1

    other = asyncio.create_task(work.do("quiet"))  # another tenant is not held back
    await settle()
    assert work.running == {"loud": 2, "quiet": 1}

    work.release.set()
    assert sorted(await asyncio.gather(*held, other)) == ["loud"] * 4 + ["quiet"]
    assert work.most == {"loud": 2, "quiet": 1}
    assert tenant_shares.in_progress("loud") == 0 and tenant_shares._shares == {}  # nothing kept for idle tenants


async def test_a_waiter_whose_slot_does_not_free_in_time_is_refused():
    tenant_shares, _ = shares(max_in_flight=1, wait_seconds=0.05)
    work = Work(tenant_shares)
    first = asyncio.create_task(work.do("t"))
    await settle()
    with pytest.raises(TenantBusy):
        await work.do("t")
    work.release.set()
    assert await first == "t"
    assert tenant_shares._shares == {}


async def test_a_cancelled_waiter_gives_its_place_back():
    tenant_shares, _ = shares(max_in_flight=1)
    work = Work(tenant_shares)
    first = asyncio.create_task(work.do("t"))
    await settle()
    waiting = asyncio.create_task(work.do("t"))
    await settle()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    work.release.set()
    await first
    assert await work.do("t") == "t"  # the slot is free, not held by the cancelled waiter
    assert tenant_shares._shares == {}


async def test_a_failure_inside_gives_the_slot_back():
    tenant_shares, _ = shares(max_in_flight=1, wait_seconds=0)
    with pytest.raises(RuntimeError):
        async with tenant_shares.hold("t"):
            raise RuntimeError("boom")
    async with tenant_shares.hold("t"):
        assert tenant_shares.in_progress("t") == 1


async def test_zero_means_no_bound():
    tenant_shares, _ = shares(max_in_flight=0)
    work = Work(tenant_shares)
    tasks = [asyncio.create_task(work.do("t")) for _ in range(50)]
    await settle()
    assert work.running == {"t": 50}
    work.release.set()
    await asyncio.gather(*tasks)
