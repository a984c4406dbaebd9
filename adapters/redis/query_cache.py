"""Query vectors in Redis, shared by every process: float32 bytes under a TTL.

They live beside arq's jobs and the rate-limit buckets; the TTL bounds how many are kept
(MEMORY_QUERY_CACHE_SIZE bounds the in-process cache only), so size Redis for a day of
distinct queries (about 1.6 KiB each at 384 dimensions) or shorten the TTL.
"""

from __future__ import annotations

import math
from array import array

from redis.asyncio import Redis
from redis.exceptions import RedisError

from application.ports.query_cache import CacheUnavailable, QueryVectorCache

PREFIX = "memorymesh:query-vector:"


class RedisQueryCache(QueryVectorCache):
    def __init__(self, client: Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds

    async def get(self, key: str) -> list[float] | None:
        try:
            stored = await self._client.get(PREFIX + key)
        except (RedisError, OSError, TimeoutError) as error:
            raise CacheUnavailable(str(error)) from error
        if stored is None or len(stored) % 4:
            return None  # nothing, or not what put() writes: a miss
        vector = array("f")
        vector.frombytes(stored)
        values = vector.tolist()
        return values if all(math.isfinite(v) for v in values) else None

    async def put(self, key: str, vector: list[float]) -> None:
        try:
            await self._client.set(PREFIX + key, array("f", vector).tobytes(), ex=self._ttl_seconds)
        except (RedisError, OSError, TimeoutError) as error:
            raise CacheUnavailable(str(error)) from error
