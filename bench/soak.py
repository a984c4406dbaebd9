"""Soak: the real server under mixed load at about 80% of its measured capacity, for minutes.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/soak.py                 # 10 minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/soak.py --minutes 1     # a check

1. Starts `memorymesh serve` (embedded PostgreSQL, in-process embedding workers, defaults)
   in a temporary directory, and seeds each tenant with a few hundred messages.
2. Capacity: 8 clients in a closed loop, one write (async, 202) to three searches, for 30 s:
   requests per second.
3. Soak: an open loop at --load (0.8) of that rate, the same mix over --tenants tenants, for
   --minutes; or, with --clients N, N closed-loop clients that wait out each 503's Retry-After
   (an overload): --backoff fixed waits 2 s after a 503 (and not after a 429), --backoff
   client backs off after a 429 or a 503 as memorymesh-client's retries do (the Retry-After
   plus full jitter, growing with each refusal of the same request, which is given up after
   the client's bounds). Per 30 s window:
   requests, 503s, errors (by status, or by exception), p50 and p99 of writes and of
   searches as the client saw them, p50 and p99 of the server's own
   request durations (the bucket bounds of its histogram), and the API process's RSS.
4. After the load: waits for the embedding queue to drain, then counts the rows of each
   tenant in PostgreSQL against the writes the server acknowledged: every acknowledged one
   must be there, plus at most the writes whose answer never reached the client.

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
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from harness import ROOT, ServerProcess, percentile
from memorymesh_client.errors import retry_after_seconds
from memorymesh_client.retries import Retries

ADMIN_KEY = "soak-admin-key-0000000001"
HEADERS = {"x-api-key": ADMIN_KEY}
WINDOW_SECONDS = 30
RETRY_AFTER_SECONDS = 2  # what the server's 503s say
CLIENT_RETRIES = Retries()  # memorymesh-client's defaults
DEFAULT_OUTPUT = "bench/results/soak.md"
UNANSWERED_WRITES: Counter[str] = Counter()  # by tenant: sent, and no answer came back
WORDS = [
    *("trip", "paris", "flight", "hotel", "dinner", "doctor", "appointment", "budget", "invoice", "garden"),
    *("sister", "birthday", "meeting", "project", "deadline", "vacation", "recipe", "movie", "concert"),
    *("gym", "marathon", "coffee", "book", "library"),
]


@dataclass
class Window:
    requests: int = 0
    shed: int = 0  # 503s: refused at once (load shedding, or the model's queue full), not failures
    given_up: int = 0  # requests a client stopped retrying (--backoff client: past its bounds)
    errors: dict[int | str, int] = field(default_factory=dict)  # by status, or by exception when unanswered
    writes: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)
    served: tuple[float, float] = (float("nan"), float("nan"))  # the server's own p50 / p99 of its 2xx, ms
    in_flight: float = float("nan")  # the server's gauge when the window closed


def histogram(text: str) -> dict[float, float]:
    """The server's 2xx request-duration buckets, summed over routes: {upper bound: count}."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("memorymesh_http_request_duration_seconds_bucket{") and 'status="2' in line:
            bound = line.split('le="')[1].split('"')[0]
            le = float("inf") if bound == "+Inf" else float(bound)
            buckets[le] = buckets.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def gauge(text: str, name: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if values else float("nan")


def served_quantiles(before: dict[float, float], after: dict[float, float]) -> tuple[float, float]:
    """p50 and p99 (ms) of the requests served between two scrapes: each the bound of its bucket."""
    delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    if not total:
        return float("nan"), float("nan")
    return tuple(next(le for le, n in delta if n >= q * total) * 1000 for q in (0.5, 0.99))  # type: ignore[return-value]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))


def ms(values: list[float], p: float) -> float:
    """The `p`th percentile of `values` (seconds), in ms."""
    return percentile(values, p) * 1000


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
) -> tuple[str, int, float, float | None]:
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
        try:
            response = await client.post("/v1/messages", json=body)
        except httpx.HTTPError:
            UNANSWERED_WRITES[tenant] += 1  # it may have been stored: the answer is what was lost
            raise
        if response.status_code in (201, 202):
            acked[tenant] += 1
    else:
        kind = "search"
        query = " ".join(rng.choice(WORDS) for _ in range(3))
        response = await client.get("/v1/memory/search", params={"tenant_id": tenant, "query": query, "top_k": 10})
    return kind, response.status_code, time.perf_counter() - started, retry_after_seconds(response.headers)


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
    url: str,
    pid: int,
    tenants: list[str],
    acked: dict[str, int],
    rate: float,
    seconds: float,
    clients: int,
    backoff: str = "fixed",
) -> list[tuple[Window, float, float]]:
    """An open loop at `rate`, or with `clients`, that many closed-loop clients."""
    rng = random.Random(2)
    windows: list[tuple[Window, float, float]] = []
    current = Window()
    in_flight: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    next_window = started + WINDOW_SECONDS
    async with httpx.AsyncClient(
        base_url=url,
        headers=HEADERS,
        timeout=60,
        limits=httpx.Limits(max_connections=max(256, clients)),  # httpx slows down past a few hundred
    ) as client:

        async def fire(window: Window) -> tuple[int, float | None]:
            try:
                kind, status, took, retry_after = await one(client, rng, tenants, acked)
            except httpx.HTTPError as error:
                window.requests += 1
                name = type(error).__name__
                window.errors[name] = window.errors.get(name, 0) + 1
                return 0, None
            window.requests += 1
            if status == 503:
                window.shed += 1
            elif status >= 400:
                window.errors[status] = window.errors.get(status, 0) + 1
            elif kind == "write":
                window.writes.append(took)
            else:
                window.searches.append(took)
            return status, retry_after

        async def closed_loop() -> None:
            """A polite client: the next request once answered; when refused, after the Retry-After
            (fixed), or as memorymesh-client would before trying the same request again (client)."""
            refusals, first_try = 0, time.monotonic()
            while time.monotonic() < started + seconds:
                window = current
                status, retry_after = await fire(window)
                if backoff == "fixed":  # as clients did before memorymesh-client: 503s only
                    if status == 503:
                        await asyncio.sleep(RETRY_AFTER_SECONDS)
                    continue
                if status not in (429, 503):  # what the client retries (transport errors aside)
                    refusals, first_try = 0, time.monotonic()
                    continue
                delay = CLIENT_RETRIES.delay(refusals, time.monotonic() - first_try, retry_after)
                if delay is None:  # the client raises Overloaded; the caller goes on to its next request
                    window.given_up += 1
                    refusals, first_try = 0, time.monotonic()
                    continue
                refusals += 1
                await asyncio.sleep(delay)

        last_scrape = histogram((await client.get("/metrics")).text)
        sent = 0
        for _ in range(clients):
            task = asyncio.create_task(closed_loop())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        while (now := time.monotonic()) < started + seconds:
            due = int((now - started) * rate) if not clients else 0  # open: the schedule does not wait
            while sent < due:
                task = asyncio.create_task(fire(current))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                sent += 1
            if now >= next_window:
                text = (await client.get("/metrics")).text
                current.in_flight = gauge(text, "memorymesh_http_requests_in_flight")
                scraped = histogram(text)
                current.served = served_quantiles(last_scrape, scraped)
                last_scrape = scraped
                windows.append((current, server_rss(pid), api_rss(pid)))
                current = Window()
                next_window += WINDOW_SECONDS
            await asyncio.sleep(0.005)
        await asyncio.gather(*in_flight)
        current.served = served_quantiles(last_scrape, histogram((await client.get("/metrics")).text))
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
    extra = f" --clients {args.clients}" if args.clients else ""
    extra += f" --backoff {args.backoff}" if args.clients and args.backoff != "fixed" else ""
    extra += "".join(f" --env {e}" for e in args.env)
    extra += f" --output {args.output}" if args.output != DEFAULT_OUTPUT else ""
    settings = ", ".join(args.env) + ", defaults otherwise" if args.env else "its defaults"
    lines = [
        f"# Soak: {args.minutes:g} minutes at {args.load:.0%} of measured capacity"
        if not args.clients
        else f"# Overload: {args.minutes:g} minutes of {args.clients} clients",
        "",
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python bench/soak.py --minutes {args.minutes:g} --load {args.load} "
        f"--tenants {args.tenants}{extra}`",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}, Python {platform.python_version()}. "
        f"Server: `memorymesh serve` with {settings} (1 API process, embedded PostgreSQL, in-process embedding, "
        "hybrid search, all-MiniLM-L6-v2), load generator on the same machine.",
        "",
        f"Mix: 1 write (async, 202) to 3 searches (hybrid, top 10) over {args.tenants} tenants, each seeded with "
        f"{seeded} messages. Capacity, 8 clients in a closed loop for 30 s: **{cap:.1f} requests/s**. "
        + (
            f"Soak: an open loop at **{rate:.1f} requests/s**."
            if not args.clients
            else f"Overload: **{args.clients} clients** in a closed loop, each waiting {RETRY_AFTER_SECONDS} s "
            "(the Retry-After) after a 503, and none after a 429."
            if args.backoff == "fixed"
            else f"Overload: **{args.clients} clients** in a closed loop, each backing off after a 429 or 503 as "
            f"memorymesh-client does ({CLIENT_RETRIES.attempts} tries, the Retry-After plus a uniform "
            f"[0, {CLIENT_RETRIES.base_seconds:g}·2ⁿ] s, capped at {CLIENT_RETRIES.cap_seconds:g} s, "
            f"{CLIENT_RETRIES.total_seconds:g} s in all; then the request is given up)."
        ),
        "",
        "| minute | requests | 503s | errors | write p50 / p99 ms | search p50 / p99 ms | server p50 / p99 ms "
        "| in flight | API process RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| start | | | | | | | | {rss_start[1]:.0f} |",
    ]
    for i, (w, _, api) in enumerate(windows):
        errors = sum(w.errors.values())
        which = f" {w.errors}" if errors else ""
        lines.append(
            f"| {(i + 1) * WINDOW_SECONDS / 60:.1f} | {w.requests} | {w.shed} | {errors}{which} | "
            f"{ms(w.writes, 50):.0f} / {ms(w.writes, 99):.0f} | "
            f"{ms(w.searches, 50):.0f} / {ms(w.searches, 99):.0f} | "
            f"{w.served[0]:.0f} / {w.served[1]:.0f} | {w.in_flight:.0f} | {api:.0f} |"
        )
    total = sum(w.requests for w, _, _ in windows)
    errors = sum(sum(w.errors.values()) for w, _, _ in windows)
    shed = sum(w.shed for w, _, _ in windows)
    given_up = sum(w.given_up for w, _, _ in windows)
    answered = sum(len(w.writes) + len(w.searches) for w, _, _ in windows)
    writes = [x for w, _, _ in windows for x in w.writes]
    searches = [x for w, _, _ in windows for x in w.searches]
    lines += [
        "",
        f"- Requests {total:,}, 503s {shed:,} ({shed / max(total, 1):.1%}), errors {errors}. "
        "Latencies are of the answered ones (2xx), as the client saw them. "
        f"Writes p50 / p99 {ms(writes, 50):.0f} / "
        f"{ms(writes, 99):.0f} ms, searches {ms(searches, 50):.0f} / "
        f"{ms(searches, 99):.0f} ms ({statistics.mean(searches) * 1000 if searches else 0:.0f} ms mean).",
        f"- Goodput: {answered:,} answered (2xx), {answered / (args.minutes * 60):.1f}/s"
        + (f"; {given_up:,} requests given up by their client after its retries." if args.backoff == "client" else "."),
        "- Server p50 / p99: the bounds of the buckets of the server's own request-duration histogram (2xx), "
        "time inside the app: a request's wait for a slot (load shedding) is not in it. In flight: the server's "
        "gauge as each window closed.",
        f"- Memory: API process {rss_start[1]:.0f} MiB at the start of the soak, {windows[-1][2]:.0f} MiB at the end "
        "(the embedded PostgreSQL runs detached, under its own user, and is not counted).",
        f"- Embedding queue drained {drain:.0f} s after the load stopped.",
        f"- Writes acknowledged {sum(acked.values()):,} (capacity probe and soak; plus {seeded * args.tenants:,} "
        "seeded); "
        f"messages in PostgreSQL {sum(counts.values()):,}: "
        + (
            "**none lost**, tenant by tenant"
            + (
                f" ({sum(counts.values()) - sum(acked.values()) - seeded * args.tenants} more: of the "
                f"{sum(UNANSWERED_WRITES.values())} writes whose answer never came, these were stored)."
                if sum(UNANSWERED_WRITES.values())
                else "."
            )
            if none_lost(counts, acked, seeded)
            else "**WRITES LOST**."
        ),
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
    load = f"{args.clients} closed-loop clients" if args.clients else f"{rate:.1f} req/s"
    print(f"capacity {cap:.1f} req/s; soaking with {load} for {args.minutes:g} min", flush=True)
    windows = await soak(url, pid, tenants, acked, rate, args.minutes * 60, args.clients, args.backoff)
    drain = await drained(url)
    counts = await stored_counts(url, tenants)
    text = report(args, cap, rate, windows, rss_start, drain, acked, counts, args.seed)
    (ROOT / args.output).write_text(text)
    print(text)
    return 0 if none_lost(counts, acked, args.seed) else 1


def none_lost(counts: dict[str, int], acked: dict[str, int], seeded: int) -> bool:
    """Every acknowledged write stored, and nothing stored that was not sent."""
    return all(acked[t] + seeded <= counts[t] <= acked[t] + seeded + UNANSWERED_WRITES[t] for t in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--load", type=float, default=0.8, help="share of the measured capacity")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--clients", type=int, default=0, help="closed-loop clients instead of --load (overload)")
    parser.add_argument(
        "--backoff",
        choices=("fixed", "client"),
        default="fixed",
        help="with --clients: after a 503 wait the Retry-After (fixed), or back off as memorymesh-client does",
    )
    parser.add_argument("--env", action="append", default=[], help="a server setting, KEY=VALUE (repeatable)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="the report, relative to the checkout")
    parser.add_argument("--seed", type=int, default=500, help="messages stored in each tenant before the run")
    args = parser.parse_args()
    env = {
        "MEMORY_ADMIN_API_KEYS": ADMIN_KEY,
        "MEMORY_RETENTION_SCHEDULE_SECONDS": "0",
        "MEMORY_QUERY_CACHE_SIZE": "0",  # every search pays for its query vector, as fresh questions do
    }
    for setting in args.env:
        name, equals, value = setting.partition("=")
        if not equals:
            raise SystemExit(f"--env takes KEY=VALUE, not {setting!r}")
        env[name] = value
    with tempfile.TemporaryDirectory(prefix="memorymesh-soak-") as tmp:
        server = ServerProcess(Path(tmp) / "data", **env).start()
        try:
            server.wait_ready()
            assert server.process is not None
            code = asyncio.run(run(args, server.url, server.process.pid))
        finally:
            server.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
