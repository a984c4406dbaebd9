"""What every QueryVectorCache promises, in process (LRU) and in Redis (real Redis on 6379)."""

import math
import uuid
from array import array

import pytest
from redis.asyncio import Redis

from adapters.inprocess.query_cache import InProcessQueryCache
from adapters.redis.query_cache import PREFIX, RedisQueryCache
from application.ports.query_cache import CacheUnavailable

REDIS_URL = "redis://127.0.0.1:6379/0"
VECTOR = [0.5, -0.25, 0.125, 1.0 / 3.0]


@pytest.fixture(params=["memory", "redis"])
async def cache(request):
    if request.param == "memory":
        yield InProcessQueryCache(max_entries=100)
        return
    client = Redis.from_url(REDIS_URL)
    yield RedisQueryCache(client, ttl_seconds=60)
    await client.aclose()


def key() -> str:
    return uuid.uuid4().hex


async def test_a_vector_put_is_got_back_and_an_unknown_key_is_none(cache):
    k = key()
    assert await cache.get(k) is None
    await cache.put(k, VECTOR)
    got = await cache.get(k)
    assert got == pytest.approx(VECTOR, abs=1e-7)  # float32 in Redis: what a model makes anyway
    assert await cache.get(key()) is None


async def test_the_least_recently_used_vector_goes_first():
    cache = InProcessQueryCache(max_entries=2)
    await cache.put("a", [1.0])
    await cache.put("b", [2.0])
    assert await cache.get("a") == [1.0]  # now b is the least recently used
    await cache.put("c", [3.0])
    assert await cache.get("b") is None
    assert await cache.get("a") == [1.0] and await cache.get("c") == [3.0]


async def test_redis_keeps_a_vector_for_the_ttl_only():
    client = Redis.from_url(REDIS_URL)
    try:
        k = key()
        await RedisQueryCache(client, ttl_seconds=120).put(k, VECTOR)
        assert 0 < await client.ttl(PREFIX + k) <= 120
    finally:
        await client.aclose()


async def test_an_unreachable_redis_raises_cache_unavailable():
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        cache = RedisQueryCache(client, ttl_seconds=60)
        with pytest.raises(CacheUnavailable):
            await cache.get(key())
        with pytest.raises(CacheUnavailable):
            await cache.put(key(), VECTOR)
    finally:
        await client.aclose()


async def test_the_container_builds_a_redis_cache_from_the_settings():
    from config.resources import open_redis_query_cache
    from config.settings import Settings

    resource = open_redis_query_cache(Settings(_env_file=None, redis_url=REDIS_URL, query_cache_ttl_seconds=30))
    cache = await anext(resource)
    try:
        k = key()
        await cache.put(k, VECTOR)
        assert await cache.get(k) == pytest.approx(VECTOR, abs=1e-7)
        client = Redis.from_url(REDIS_URL)
        assert 0 < await client.ttl(PREFIX + k) <= 30
        await client.aclose()
    finally:
        await resource.aclose()


async def test_a_value_redis_did_not_get_from_put_is_a_miss():
    client = Redis.from_url(REDIS_URL)
    try:
        cache, k = RedisQueryCache(client, ttl_seconds=60), key()
        await client.set(PREFIX + k, b"abc")  # not a whole float32
        assert await cache.get(k) is None
        await client.set(PREFIX + k, array("f", [1.0, math.nan]).tobytes())
        assert await cache.get(k) is None
    finally:
        await client.aclose()
