"""Rate limits on the real server: shared through the real Redis, and without it."""

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess

REDIS_URL = "redis://127.0.0.1:6379/0"


def fresh_key() -> str:
    """A key of this run only: its bucket on the shared Redis starts full."""
    return f"e2e-limits-{secrets.token_hex(8)}"


async def statuses(url: str, key: str, count: int) -> list[int]:
    # No keep-alive: every request opens its own connection, so the kernel spreads them over the processes.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(*(client.get("/v1/admin/queue") for _ in range(count)))
    return [r.status_code for r in responses]


def test_two_api_processes_share_one_limit_through_redis(tmp_path: Path) -> None:
    key = fresh_key()
    server = ServerProcess(
        tmp_path / "data",
        MEMORY_PROCESSES="2",
        MEMORY_REDIS_URL=REDIS_URL,
        MEMORY_ADMIN_API_KEYS=key,
        MEMORY_GLOBAL_RATE_LIMIT="50/hour",
    ).start()
    try:
        server.wait_ready()
        server.wait_for_output("serving on", timeout=120, times=2)  # both processes
        codes = asyncio.run(statuses(server.url, key, 100))
        assert (codes.count(200), codes.count(429)) == (50, 50), sorted(set(codes))
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_an_unreachable_redis_fails_open_or_closed_as_configured(tmp_path: Path, mode: str) -> None:
    key = fresh_key()
    server = ServerProcess(
        tmp_path / "data",
        MEMORY_REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens there
        MEMORY_ADMIN_API_KEYS=key,
        MEMORY_GLOBAL_RATE_LIMIT="50/hour",
        MEMORY_RATE_LIMIT_FAILURE_MODE=mode,
    ).start()
    try:
        server.wait_ready()
        codes = asyncio.run(statuses(server.url, key, 5))
        with server.client() as client:
            health = client.get("/v1/admin/health")
            ready = client.get("/v1/admin/readiness")
    finally:
        assert server.stop() == 0, server.output

    assert health.status_code == 200  # liveness never depends on Redis
    if mode == "open":
        assert codes == [200] * 5
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert "5 so far" in ready.json()["checks"]["rate_limiter"]
    else:
        assert codes == [503] * 5
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert server.output.count("rate limits cannot be checked") == 1  # logged once per interval, not per request
