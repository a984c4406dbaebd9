"""Noisy neighbour: one tenant does its worst within its rate limit; how does another fare?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/noisy_neighbour.py                       # this checkout
    HF_HUB_OFFLINE=1 .venv/bin/python bench/noisy_neighbour.py --checkout ../old --checkout .

Each checkout (a folder with its own `.venv/bin/memorymesh`) is run in turn, in the same
run, so that old and new code meet the same machine. For each:

1. Starts `memorymesh serve` (embedded PostgreSQL, in-process embedding workers) with
   `MEMORY_TENANT_RATE_LIMIT=120/minute`, the README's example, and seeds tenant `quiet`
   with 200 messages and tenant `loud` with 2,000 messages of 40 words each out of 600.
2. Runs four phases, each --seconds long, while `quiet` searches (hybrid, one client,
   closed loop): alone (the baseline); while `loud` sends waves of 20 keyword searches of
   all 600 words at once, 60 a minute; while `loud` sends 8 batches of 500 messages of
   8,000 characters at once, again as each finishes; while `loud` reads its heaviest
   messages (metadata as large as the service accepts: 0.94 MB where it accepts that, the
   limit where there is one) with `top_k=100` searches and `limit=200` listings, 4 at once.
3. Reports per phase and checkout: `quiet`'s searches completed, their p50 / p95 / max, and
   their answers by status; `loud`'s answers by status; the API process's RSS at the end.

Writes bench/results/noisy_neighbour.md. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from harness import ROOT, ServerProcess, percentile

ADMIN_KEY = "noisy-neighbour-admin-key-01"
QUIET_KEY = "noisy-neighbour-quiet-key-01"
LOUD_KEY = "noisy-neighbour-loud-key-001"
VOCABULARY = [f"w{i:03d}{random.Random(i).choice('abcdefgh')}" for i in range(600)]
RATE_LIMIT = "120/minute"


@dataclass
class Phase:
    name: str
    quiet: list[float] = field(default_factory=list)  # seconds per completed search
    quiet_status: Counter[str] = field(default_factory=Counter)
    loud_status: Counter[str] = field(default_factory=Counter)
    rss_mib: float = 0.0

    def row(self, checkout: str) -> str:
        q = sorted(self.quiet)
        p50 = statistics.median(q) * 1000 if q else float("nan")
        p95 = percentile(q, 95) * 1000
        top = q[-1] * 1000 if q else float("nan")
        return (
            f"| {checkout} | {self.name} | {len(q)} | {p50:.0f} | {p95:.0f} | {top:.0f} | "
            f"{dict(self.quiet_status)} | {dict(self.loud_status)} | {self.rss_mib:.0f} |"
        )


def status_of(response: httpx.Response | BaseException) -> str:
    if isinstance(response, BaseException):
        return type(response).__name__
    return str(response.status_code)


async def post(client: httpx.AsyncClient, path: str, body: object) -> httpx.Response | BaseException:
    try:
        return await client.post(path, json=body)
    except httpx.HTTPError as error:
        return error


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(n))


async def seed(client: httpx.AsyncClient) -> None:
    rng = random.Random(7)
    quiet = [
        {
            "tenant_id": "quiet",
            "conversation_id": f"c{i % 10}",
            "role": "user",
            "content": f"note {i}: {words(rng, 12)}",
        }
        for i in range(200)
    ]
    assert (await client.post("/v1/messages/batch", json={"messages": quiet})).status_code == 202
    for start in range(0, 2_000, 500):
        loud = [
            {"tenant_id": "loud", "conversation_id": f"c{i % 50}", "role": "user", "content": words(rng, 40)}
            for i in range(start, start + 500)
        ]
        assert (await client.post("/v1/messages/batch", json={"messages": loud})).status_code == 202
    deadline = time.monotonic() + 900
    while (await client.get("/v1/admin/queue")).json()["pending"] and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(1)  # polls another process


async def heavy_metadata(client: httpx.AsyncClient) -> int:
    """Store 100 messages of `loud` with the largest metadata the server takes; its size."""
    for size in (940_000, 16_000):
        body = {"tenant_id": "loud", "conversation_id": "heavy", "role": "user", "content": "heavy w000a"}
        response = await client.post("/v1/messages", json={**body, "metadata": {"blob": "x" * size}})
        if response.status_code in (201, 202):
            break
    await asyncio.gather(
        *(
            client.post("/v1/messages", json={**body, "content": f"heavy w000a {i}", "metadata": {"blob": "x" * size}})
            for i in range(99)
        )
    )
    return size


async def quiet_loop(client: httpx.AsyncClient, phase: Phase, stop: float) -> None:
    rng = random.Random(11)
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            response = await client.get(
                "/v1/memory/search", params={"tenant_id": "quiet", "query": words(rng, 4), "top_k": 5}
            )
        except httpx.HTTPError as error:
            phase.quiet_status[type(error).__name__] += 1
            continue
        phase.quiet_status[str(response.status_code)] += 1
        if response.status_code == 200:
            phase.quiet.append(time.perf_counter() - started)
        else:
            await asyncio.sleep(0.2)


async def keyword_storm(client: httpx.AsyncClient, phase: Phase, stop: float) -> None:
    query = " ".join(VOCABULARY)
    while time.monotonic() < stop:
        wave_started = time.monotonic()
        answers = await asyncio.gather(
            *(
                client.get("/v1/memory/search", params={"tenant_id": "loud", "query": query, "mode": "keyword"})
                for _ in range(20)
            ),
            return_exceptions=True,
        )
        phase.loud_status.update(status_of(a) for a in answers)
        await asyncio.sleep(max(0.0, 20 - (time.monotonic() - wave_started)))


async def batch_storm(client: httpx.AsyncClient, phase: Phase, stop: float) -> None:
    rng = random.Random(13)
    text = words(rng, 1_300)[:8_000]

    async def sender(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            body = [
                {"tenant_id": "loud", "conversation_id": f"b{n}", "role": "user", "content": f"{n}-{i}-{j} {text}"}
                for j in range(500)
            ]
            phase.loud_status[status_of(await post(client, "/v1/messages/batch", {"messages": body}))] += 1
            i += 1

    await asyncio.gather(*(sender(n) for n in range(8)))


async def heavy_reads(client: httpx.AsyncClient, phase: Phase, stop: float) -> None:
    async def reader(n: int) -> None:
        while time.monotonic() < stop:
            try:
                if n % 2:
                    response = await client.get(
                        "/v1/memory/search",
                        params={"tenant_id": "loud", "query": "heavy w000a", "top_k": 100, "mode": "keyword"},
                    )
                else:
                    response = await client.get(
                        "/v1/conversations/heavy/messages", params={"tenant_id": "loud", "limit": 200}
                    )
                phase.loud_status[status_of(response)] += 1
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            except httpx.HTTPError as error:
                phase.loud_status[type(error).__name__] += 1

    await asyncio.gather(*(reader(n) for n in range(4)))


async def run_checkout(url: str, pid: int, seconds: float) -> list[Phase]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with (
        httpx.AsyncClient(base_url=url, headers={"x-api-key": ADMIN_KEY}, timeout=900) as admin,
        httpx.AsyncClient(base_url=url, headers={"x-api-key": LOUD_KEY}, timeout=120, limits=limits) as client,
        httpx.AsyncClient(base_url=url, headers={"x-api-key": QUIET_KEY}, timeout=120) as quiet,
    ):
        await seed(admin)
        phases = []
        for name, attack in [
            ("alone", None),
            ("keyword storm", keyword_storm),
            ("batch storm", batch_storm),
            ("heavy metadata", heavy_reads),
        ]:
            if attack is heavy_reads:
                size = await heavy_metadata(admin)
                name = f"{name} ({size:,} B each)"
            phase = Phase(name)
            stop = time.monotonic() + seconds
            tasks = [quiet_loop(quiet, phase, stop)] + ([attack(client, phase, stop)] if attack else [])
            await asyncio.gather(*tasks)
            phase.rss_mib = psutil.Process(pid).memory_info().rss / 2**20
            phases.append(phase)
            print(phase.row(url), flush=True)
            await asyncio.sleep(5)  # the queue and the connections settle between phases
        return phases


def serve(checkout: Path, tmp: Path) -> ServerProcess:
    """`memorymesh serve` of `checkout` (its own .venv), ready."""
    server = ServerProcess(
        tmp / "data",
        executable=checkout / ".venv" / "bin" / "memorymesh",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{QUIET_KEY}:quiet,{LOUD_KEY}:loud",
        MEMORY_TENANT_RATE_LIMIT=RATE_LIMIT,
        MEMORY_RETENTION_SCHEDULE_SECONDS="0",
        MEMORY_QUERY_CACHE_SIZE="0",
    )
    return server.start().wait_ready()


def commit_of(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(checkout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", type=Path, help="a checkout with its .venv (repeatable)")
    parser.add_argument("--seconds", type=float, default=45, help="length of each phase")
    parser.add_argument("--output", default="bench/results/noisy_neighbour.md")
    args = parser.parse_args()
    checkouts = args.checkout or [ROOT]
    rows = []
    for checkout in checkouts:
        with tempfile.TemporaryDirectory(prefix="memorymesh-noisy-") as tmp:
            server = serve(checkout.resolve(), Path(tmp))
            try:
                assert server.process is not None
                phases = asyncio.run(run_checkout(server.url, server.process.pid, args.seconds))
            finally:
                server.stop()
        rows += [p.row(commit_of(checkout)) for p in phases]
    command = "HF_HUB_OFFLINE=1 .venv/bin/python bench/noisy_neighbour.py " + " ".join(
        f"--checkout {c}" for c in (args.checkout or [])
    )
    report = [
        "# Noisy neighbour",
        "",
        f"`{command.strip()}` (phases of {args.seconds:g} s), on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        "",
        f"Tenant `loud` does its worst within `MEMORY_TENANT_RATE_LIMIT={RATE_LIMIT}`; tenant `quiet` searches "
        "(hybrid, one client, closed loop). Latencies are `quiet`'s completed searches, in ms.",
        "",
        "| checkout | phase | quiet searches | p50 | p95 | max | quiet answers | loud answers | API RSS MiB |",
        "|---|---|---:|---:|---:|---:|---|---|---:|",
        *rows,
        "",
    ]
    output = ROOT / args.output
    output.write_text("\n".join(report))
    print(output.read_text())


if __name__ == "__main__":
    sys.exit(main())
