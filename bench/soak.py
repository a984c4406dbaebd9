"""Soak: the real server under mixed load at about 80% of its measured capacity, for minutes.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/soak.py                 # 10 minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/soak.py --minutes 1     # a check

1. Starts `memorymesh serve` (embedded PostgreSQL, in-process embedding workers, defaults)
   in a temporary directory, and seeds each tenant with a few hundred messages.
2. Capacity: 8 clients in a closed loop, one write (async, 202) to three searches, for 30 s:
   requests per second.
3. Soak: an open loop at --load (0.8) of that rate, the same mix over --tenants tenants, for
   --minutes. Per 30 s window: requests, errors, p50 and p99 of writes and of searches, and
   the server's RSS (its process and children).
4. After the load: waits for the embedding queue to drain, then counts the rows of each
   tenant in PostgreSQL against the writes the server acknowledged (they must be equal).

Writes bench/results/soak.md. Figures, not pass/fail: only a lost write fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
MEMORYMESH = str(Path(sys.executable).parent / "memorymesh")
ADMIN_KEY = "soak-admin-key-0000000001"
HEADERS = {"x-api-key": ADMIN_KEY}
WINDOW_SECONDS = 30
WORDS = [
    *("trip", "paris", "flight", "hotel", "dinner", "doctor", "appointment", "budget", "invoice", "garden"),
    *("sister", "birthday", "meeting", "project", "deadline", "vacation", "recipe", "movie", "concert"),
    *("gym", "marathon", "coffee", "book", "library"),
]


@dataclass
class Window:
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    writes: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def server_rss(pid: int) -> float:
    """MiB of the server and its children (the embedded PostgreSQL's backends included)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a backend that just exited
            total += child.memory_info().rss
    return total / 2**20


def api_rss(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def one(
    client: httpx.AsyncClient, rng: random.Random, tenants: list[str], acked: dict[str, int]
) -> tuple[str, int, float]:
    tenant = rng.choice(tenants)
    started = time.perf_counter()
    if rng.random() < 0.25:
        kind = "write"
        body = {
            "tenant_id": tenant,
            "conversation_id": f"c{rng.randint(1, 5)}",
            "role": "user",
            "content": sentence(rng),
        }
        response = await client.post("/v1/messages", json=body)
        if response.status_code in (201, 202):
            acked[tenant] += 1
    else:
        kind = "search"
        query = " ".join(rng.choice(WORDS) for _ in range(3))
        response = await client.get("/v1/memory/search", params={"tenant_id": tenant, "query": query, "top_k": 10})
    return kind, response.status_code, time.perf_counter() - started


async def capacity(url: str, tenants: list[str], acked: dict[str, int], seconds: float) -> float:
    rng = random.Random(1)
    done = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60) as client:

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await one(client, rng, tenants, acked)
                done += 1

        await asyncio.gather(*(loop() for _ in range(8)))
    return done / seconds


async def soak(
    url: str, pid: int, tenants: list[str], acked: dict[str, int], rate: float, seconds: float
) -> list[tuple[Window, float, float]]:
    rng = random.Random(2)
    windows: list[tuple[Window, float, float]] = []
    current = Window()
    in_flight: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    next_window = started + WINDOW_SECONDS
    async with httpx.AsyncClient(
        base_url=url, headers=HEADERS, timeout=60, limits=httpx.Limits(max_connections=64)
    ) as client:

        async def fire(window: Window) -> None:
            try:
                kind, status, took = await one(client, rng, tenants, acked)
            except httpx.HTTPError:
                kind, status, took = "error", 0, 0.0
            window.requests += 1
            if status >= 400 or status == 0:
                window.errors[status] = window.errors.get(status, 0) + 1
            elif kind == "write":
                window.writes.append(took)
            else:
                window.searches.append(took)

        sent = 0
        while (now := time.monotonic()) < started + seconds:
            due = int((now - started) * rate)  # an open loop: the schedule does not wait for answers
            while sent < due:
                task = asyncio.create_task(fire(current))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                sent += 1
            if now >= next_window:
                windows.append((current, server_rss(pid), api_rss(pid)))
                current = Window()
                next_window += WINDOW_SECONDS
            await asyncio.sleep(0.005)
        await asyncio.gather(*in_flight)
        windows.append((current, server_rss(pid), api_rss(pid)))
    return windows


async def drained(url: str, seconds: float = 300) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as client:
        while time.monotonic() - started < seconds:
            queue = (await client.get("/v1/admin/queue")).json()
            if queue["pending"] == 0 and queue["claimed"] == 0:
                return time.monotonic() - started
            await asyncio.sleep(1)
    raise SystemExit("the embedding queue did not drain in 5 minutes")


async def stored_counts(url: str, tenants: list[str]) -> dict[str, int]:
    counts = {}
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60) as client:
        for tenant in tenants:
            total = 0
            for conversation in ("seed", *(f"c{i}" for i in range(1, 6))):
                cursor = None
                while True:
                    params = {"tenant_id": tenant, "limit": 200, "include_archived": "true"}
                    if cursor:
                        params["cursor"] = cursor
                    page = (await client.get(f"/v1/conversations/{conversation}/messages", params=params)).json()
                    total += len(page["messages"])
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
            counts[tenant] = total
    return counts


def report(
    args: argparse.Namespace,
    cap: float,
    rate: float,
    windows: list[tuple[Window, float, float]],
    rss_start: tuple[float, float],
    drain: float,
    acked: dict[str, int],
    counts: dict[str, int],
    seeded: int,
) -> str:
    lines = [
        f"# Soak: {args.minutes:g} minutes at {args.load:.0%} of measured capacity",
        "",
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python bench/soak.py --minutes {args.minutes:g} --load {args.load} "
        f"--tenants {args.tenants}`",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}, Python {platform.python_version()}. "
        "Server: `memorymesh serve` with its defaults (1 API process, embedded PostgreSQL, in-process embedding, "
        "hybrid search, all-MiniLM-L6-v2), load generator on the same machine.",
        "",
        f"Mix: 1 write (async, 202) to 3 searches (hybrid, top 10) over {args.tenants} tenants, each seeded with "
        f"{seeded} messages. Capacity, 8 clients in a closed loop for 30 s: **{cap:.1f} requests/s**. "
        f"Soak: an open loop at **{rate:.1f} requests/s**.",
        "",
        "| minute | requests | errors | write p50 / p99 ms | search p50 / p99 ms | API process RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| start | | | | | {rss_start[1]:.0f} |",
    ]
    for i, (w, _, api) in enumerate(windows):
        errors = sum(w.errors.values())
        lines.append(
            f"| {(i + 1) * WINDOW_SECONDS / 60:.1f} | {w.requests} | {errors}{' ' + str(w.errors) if errors else ''} | "
            f"{percentile(w.writes, 0.5):.0f} / {percentile(w.writes, 0.99):.0f} | "
            f"{percentile(w.searches, 0.5):.0f} / {percentile(w.searches, 0.99):.0f} | {api:.0f} |"
        )
    total = sum(w.requests for w, _, _ in windows)
    errors = sum(sum(w.errors.values()) for w, _, _ in windows)
    writes = [x for w, _, _ in windows for x in w.writes]
    searches = [x for w, _, _ in windows for x in w.searches]
    lines += [
        "",
        f"- Requests {total:,}, errors {errors}. Writes p50 / p99 {percentile(writes, 0.5):.0f} / "
        f"{percentile(writes, 0.99):.0f} ms, searches {percentile(searches, 0.5):.0f} / "
        f"{percentile(searches, 0.99):.0f} ms ({statistics.mean(searches) * 1000 if searches else 0:.0f} ms mean).",
        f"- Memory: API process {rss_start[1]:.0f} MiB at the start of the soak, {windows[-1][2]:.0f} MiB at the end "
        "(the embedded PostgreSQL runs detached, under its own user, and is not counted).",
        f"- Embedding queue drained {drain:.0f} s after the load stopped.",
        f"- Writes acknowledged {sum(acked.values()):,} (capacity probe and soak; plus {seeded * args.tenants:,} "
        "seeded); "
        f"messages in PostgreSQL {sum(counts.values()):,}: "
        + ("**equal**, tenant by tenant." if all(counts[t] == acked[t] + seeded for t in counts) else "**NOT EQUAL**."),
    ]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace, url: str, pid: int) -> int:
    tenants = [f"soak-{i}" for i in range(args.tenants)]
    rng = random.Random(0)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as client:
        for tenant in tenants:
            batch = [
                {"tenant_id": tenant, "conversation_id": "seed", "role": "user", "content": sentence(rng)}
                for _ in range(args.seed)
            ]
            for start in range(0, len(batch), 500):
                response = await client.post("/v1/messages/batch", json={"messages": batch[start : start + 500]})
                response.raise_for_status()
    await drained(url)
    acked = dict.fromkeys(tenants, 0)
    cap = await capacity(url, tenants, acked, 30)
    rate = cap * args.load
    await drained(url)
    rss_start = (server_rss(pid), api_rss(pid))
    print(f"capacity {cap:.1f} req/s; soaking at {rate:.1f} req/s for {args.minutes:g} min", flush=True)
    windows = await soak(url, pid, tenants, acked, rate, args.minutes * 60)
    drain = await drained(url)
    counts = await stored_counts(url, tenants)
    text = report(args, cap, rate, windows, rss_start, drain, acked, counts, args.seed)
    (ROOT / "bench" / "results" / "soak.md").write_text(text)
    print(text)
    return 0 if all(counts[t] == acked[t] + args.seed for t in tenants) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--load", type=float, default=0.8, help="share of the measured capacity")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--seed", type=int, default=500, help="messages stored in each tenant before the run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memorymesh-soak-") as tmp:
        port = 18000 + random.randint(0, 999)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
        env.update(
            MEMORY_DATA_DIR=str(Path(tmp) / "data"),
            MEMORY_PORT=str(port),
            MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
            HF_HUB_OFFLINE="1",
            MEMORY_RETENTION_SCHEDULE_SECONDS="0",
            MEMORY_QUERY_CACHE_SIZE="0",  # every search pays for its query vector, as fresh questions do
        )
        server = subprocess.Popen(
            [MEMORYMESH, "serve"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(480):
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/v1/admin/health", timeout=1).status_code == 200:
                        break
                time.sleep(0.25)
            code = asyncio.run(run(args, url, server.pid))
        finally:
            server.terminate()
            server.wait(60)
    sys.exit(code)


if __name__ == "__main__":
    main()
