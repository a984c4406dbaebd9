"""What every RateLimiter promises, for the in-process one and the Redis one (real Redis on 6379)."""

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from adapters.inprocess.rate_limiter import InProcessRateLimiter
from adapters.redis.rate_limiter import RedisRateLimiter
from application.ports.limits import RateLimiterUnavailable
from domain.rate_limit import RateLimit

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def limiter(request):
    if request.param == "memory":
        yield InProcessRateLimiter()
        return
    client = Redis.from_url(REDIS_URL)
    yield RedisRateLimiter(client, prefix=f"test:rate:{uuid.uuid4().hex}")
    await client.aclose()


def bucket() -> str:
    return f"key:{uuid.uuid4().hex}"


async def test_of_100_concurrent_requests_against_50_exactly_50_pass(limiter):
    rate, name = RateLimit.parse("50/hour"), bucket()
    decisions = await asyncio.gather(*(limiter.hit(name, rate) for _ in range(100)))

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 50
    assert sorted(d.remaining for d in allowed) == list(range(50))
    refused = [d for d in decisions if not d.allowed]
    assert all(d.remaining == 0 and 0 < d.retry_after <= 72 for d in refused)  # one request per 72 s


async def test_the_bucket_refills_with_time(limiter):
    rate, name = RateLimit.parse("4/second"), bucket()
    assert [(await limiter.hit(name, rate)).allowed for _ in range(5)] == [True] * 4 + [False]
    refused = await limiter.hit(name, rate)
    assert 0 < refused.retry_after <= 0.25

    await asyncio.sleep(refused.reset_after + 0.05)  # a whole period: full again
    assert [(await limiter.hit(name, rate)).allowed for _ in range(5)] == [True] * 4 + [False]


async def test_a_request_may_count_several_units(limiter):
    """A batch of messages counts each: 500 of 1,000 an hour twice, then nothing, then 1 again later."""
    rate, name = RateLimit.parse("1000/hour"), bucket()
    first = await limiter.hit(name, rate, 500)
    assert first.allowed and first.remaining == 500
    assert (await limiter.hit(name, rate, 499)).allowed
    refused = await limiter.hit(name, rate, 2)  # 1 unit left: a request of 2 is refused whole
    assert not refused.allowed and 3.5 < refused.retry_after <= 3.6  # one more unit in 3.6 s
    assert (await limiter.hit(name, rate, 1)).allowed  # the refusal took nothing
    assert not (await limiter.hit(name, rate, 1)).allowed


async def test_a_cost_above_the_limit_is_never_allowed(limiter):
    rate, name = RateLimit.parse("10/hour"), bucket()
    assert not (await limiter.hit(name, rate, 11)).allowed
    assert (await limiter.hit(name, rate, 10)).allowed


async def test_buckets_are_independent(limiter):
    rate, first, second = RateLimit.parse("1/hour"), bucket(), bucket()
    assert (await limiter.hit(first, rate)).allowed
    assert not (await limiter.hit(first, rate)).allowed
    assert (await limiter.hit(second, rate)).allowed


async def test_two_processes_share_one_limit_through_redis():
    prefix, rate, name = f"test:rate:{uuid.uuid4().hex}", RateLimit.parse("50/hour"), bucket()
    clients = [Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)]
    try:
        limiters = [RedisRateLimiter(c, prefix=prefix) for c in clients]
        decisions = await asyncio.gather(*(limiters[i % 2].hit(name, rate) for i in range(80)))
        assert sum(d.allowed for d in decisions) == 50
    finally:
        for client in clients:
            await client.aclose()


async def test_an_unreachable_redis_is_reported_not_guessed():
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(client)
    with pytest.raises(RateLimiterUnavailable):
        await limiter.hit(bucket(), RateLimit.parse("5/minute"))
    with pytest.raises(RateLimiterUnavailable):
        await limiter.check()
    await client.aclose()
