"""Rate limits shared by every process through Redis: one atomic script call per decision.

The script is domain/rate_limit.py's GCRA step for step, in milliseconds, on Redis's own
clock (so the API processes' clocks do not matter). A bucket is one key that expires
once it is full again.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from application.ports.limits import RateLimiter, RateLimiterUnavailable
from domain.rate_limit import RateDecision, RateLimit

GCRA_SCRIPT = """
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - period
if allow_at - now > 0.000001 then
  return {0, 0, tostring(tat - now), tostring(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now))
local remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
return {1, remaining, tostring(new_tat - now), '0'}
"""


class RedisRateLimiter(RateLimiter):
    def __init__(self, redis: Redis, prefix: str = "memorymesh:rate") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(GCRA_SCRIPT)

    async def hit(self, bucket: str, rate: RateLimit, cost: int = 1) -> RateDecision:
        period_ms = rate.period.total_seconds() * 1000
        try:
            allowed, remaining, reset_ms, retry_ms = await self._script(
                keys=[f"{self._prefix}:{bucket}"], args=[period_ms, rate.limit, cost]
            )
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"Redis does not answer: {type(error).__name__}: {error}") from error
        return RateDecision(
            allowed=bool(allowed),
            limit=rate.limit,
            remaining=int(remaining),
            reset_after=float(reset_ms) / 1000,
            retry_after=float(retry_ms) / 1000,
        )

    async def check(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"Redis does not answer: {type(error).__name__}: {error}") from error
