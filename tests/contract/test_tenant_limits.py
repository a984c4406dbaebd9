"""What every TenantLimitStore promises, for the fake and PostgreSQL."""

import pytest

from adapters.postgres.tenant_limits import PgTenantLimitStore
from domain.rate_limit import RateLimit
from tests.fakes.tenant_limits import InMemoryTenantLimitStore
from tests.support import tenant


@pytest.fixture(params=["memory", "postgres"])
def store(request):
    if request.param == "memory":
        return InMemoryTenantLimitStore()
    return PgTenantLimitStore(request.getfixturevalue("database"))


async def test_a_limit_is_set_replaced_and_cleared(store):
    t = tenant()
    assert await store.get(t) is None
    await store.put(t, RateLimit.parse("120/minute"))
    assert await store.get(t) == RateLimit.parse("120/minute")
    await store.put(t, RateLimit.parse("5/second"))
    assert await store.get(t) == RateLimit.parse("5/second")
    await store.put(t, None)
    assert await store.get(t) is None
    await store.put(t, None)  # clearing twice is harmless


async def test_limits_belong_to_their_tenant(store):
    a, b = tenant(), tenant()
    await store.put(a, RateLimit.parse("1/hour"))
    assert await store.get(b) is None
