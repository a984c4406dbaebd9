"""Query vectors in Redis, shared by every process: float32 bytes under a TTL."""

from __future__ import annotations

from array import array

from redis.asyncio import Redis
from redis.exceptions import RedisError

from application.ports import CacheUnavailable, QueryVectorCache

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
        if stored is None:
            return None
        vector = array("f")
        vector.frombytes(stored)
        return vector.tolist()

    async def put(self, key: str, vector: list[float]) -> None:
        try:
            await self._client.set(PREFIX + key, array("f", vector).tobytes(), ex=self._ttl_seconds)
        except (RedisError, OSError, TimeoutError) as error:
            raise CacheUnavailable(str(error)) from error
