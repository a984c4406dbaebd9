"""Search latency through the real HTTP API per search mode and vector store, at growing corpus sizes.

For each size (default 10,000 and 100,000 messages; `--million` adds 1,000,000) a corpus of
one tenant is built, then LoCoMo questions (top_k=10) are asked by one client
(a search's own time) and by 8 concurrent clients (latency under load), of:

- pgvector: `memorymesh serve` with the default store (HNSW in the embedded PostgreSQL),
  in each search mode (semantic, keyword, hybrid: the default), without the query-vector
  cache; then hybrid again with the cache, every question asked once before (a repeated
  query: the model does not run);
- qdrant: `memorymesh serve` with MEMORY_VECTOR_STORE=qdrant in qdrant-client's local mode
  (no Qdrant server runs on this machine), which scans every point in Python; qdrant-client
  itself warns against it past 20,000 points (about 13 s a search at 100,000, and a 503 once
  a search outlasts the service's bound), so it is measured up to 20,000 only. The bench
  copies the vectors pgvector already holds into the Qdrant collection rather than
  re-embedding them: setting up, not measured.

Each corpus is built by bench/corpus.py (COPY in the service's row shape, LoCoMo turns embedded
once, a repeat's vector its turn's plus small gaussian noise, renormalised; see there), about a
minute at 100,000 messages where storing them through the API took 40; retention's schedule is
off (the corpus's dates are LoCoMo's, past the default 30 days). For this build against another
checkout's, side by side, see bench/search_ab.py (bench/results/search.md).

    .venv/bin/python bench/search.py [--sizes 10000 100000] [--million] [--clients 8] [--searches 400]
        [--data-dir DIR]  # keep a corpus per size there, built once

Figures go to bench/results/search_stores.md and a plot of latency against corpus size to
bench/results/search_stores.png; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import corpus
import httpx
import psutil
from harness import RESULTS, ServerProcess, locomo_questions, machine, percentile

KEY = "bench-admin-key-0000000000"
TENANT = "bench"
COLLECTION = "memorymesh_messages"


def api_messages(turns: list[dict[str, str]], start: int, stop: int) -> list[dict[str, str]]:
    """Messages [start, stop) as POST bodies: LoCoMo turns, cycled, a repeat with a suffix."""
    out = []
    for i in range(start, stop):
        turn = turns[i % len(turns)]
        repeat = i // len(turns)
        content = turn["content"] if repeat == 0 else f"{turn['content']} ({repeat})"
        out.append(
            {"tenant_id": TENANT, "conversation_id": turn["conversation_id"], "role": turn["role"], "content": content}
        )
    return out


async def grow(server: ServerProcess, turns: list[dict[str, str]], start: int, stop: int) -> float:
    """Store messages [start, stop) and wait until all are embedded; return the seconds it took."""
    began = time.perf_counter()
    batches = [api_messages(turns, i, min(i + 500, stop)) for i in range(start, stop, 500)]
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=300) as client:
        queue: asyncio.Queue[list[dict[str, str]]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)

        async def poster() -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                (await client.post("/v1/messages/batch", json={"messages": batch})).raise_for_status()

        await asyncio.gather(*(poster() for _ in range(4)))
        while True:
            status = (await client.get("/v1/admin/queue")).raise_for_status().json()
            if status["pending"] + status["claimed"] == 0:
                if status["failed"]:
                    raise RuntimeError(f"{status['failed']} messages failed to embed")
                return time.perf_counter() - began
            await asyncio.sleep(1)


async def searches(
    server: ServerProcess, questions: list[str], clients: int, mode: str | None = None, warm_all: bool = False
) -> tuple[list[float], float]:
    """Latencies of asking `questions` with `clients` concurrent clients, after a warm-up of
    20 questions (all of them with warm_all: every query vector is then in the cache)."""
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)
    limits = httpx.Limits(max_connections=clients * 2)
    mode_param = {"mode": mode} if mode else {}
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120, limits=limits) as client:
        for question in dict.fromkeys(questions) if warm_all else questions[:20]:  # warm-up
            params = {"tenant_id": TENANT, "query": question, **mode_param}
            (await client.get("/v1/memory/search", params=params)).raise_for_status()

        async def asker() -> None:
            while not queue.empty():
                question = queue.get_nowait()
                began = time.perf_counter()
                response = await client.get(
                    "/v1/memory/search", params={"tenant_id": TENANT, "query": question, "top_k": 10, **mode_param}
                )
                response.raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(asker() for _ in range(clients)))
        return latencies, time.perf_counter() - began


async def copy_vectors_to_qdrant(data_dir: Path, dsn: str) -> float:
    """Set-up only: put the vectors pgvector holds into the Qdrant collection the server will use."""
    import asyncpg
    from pgvector.asyncpg import register_vector
    from qdrant_client import AsyncQdrantClient

    from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection
    from application.ports.vectors import VectorRecord
    from domain.message import Role

    began = time.perf_counter()
    client = AsyncQdrantClient(path=str(data_dir / "qdrant"))
    conn = await asyncpg.connect(dsn)
    try:
        await register_vector(conn)
        await prepare_collection(client, COLLECTION, 384)
        index = QdrantVectorIndex(client, COLLECTION)
        async with conn.transaction():
            cursor = conn.cursor(
                "SELECT id, tenant_id, conversation_id, role, created_at, importance, embedding FROM messages "
                "WHERE embedding IS NOT NULL"
            )
            page: list[VectorRecord] = []
            async for row in cursor:
                page.append(
                    VectorRecord(
                        row["id"],
                        row["tenant_id"],
                        row["conversation_id"],
                        Role(row["role"]),
                        row["created_at"],
                        row["importance"],
                        row["embedding"].to_list(),
                    )
                )
                if len(page) == 2000:
                    await index.upsert(page)
                    page = []
            await index.upsert(page)
    finally:
        await conn.close()
        await client.close()
    return time.perf_counter() - began


def peak_rss_mib(server: ServerProcess) -> float:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def serve(data_dir: Path, store: str, query_cache: bool = False) -> ServerProcess:
    # Without the query-vector cache unless asked for: the questions repeat, and each search
    # is to run the model.
    # Retention off (the corpus's dates are past its default 30 days); no per-tenant gate (one
    # tenant's 8 clients get 429 tenant_busy from it on a loaded machine).
    env = {
        "MEMORY_ADMIN_API_KEYS": KEY,
        "MEMORY_VECTOR_STORE": store,
        "MEMORY_RETENTION_SCHEDULE_SECONDS": "0",
        "MEMORY_TENANT_MAX_IN_FLIGHT": "0",
    }
    if not query_cache:
        env["MEMORY_QUERY_CACHE_SIZE"] = "0"
    return ServerProcess(data_dir, **env).start().wait_ready()


MODES = ("semantic", "keyword", "hybrid")
CACHED = "hybrid, query cached"
LOCAL_QDRANT_LIMIT = 20_000  # qdrant-client warns against local mode past this many points
ALONE = 1  # one client: a search's own time, nothing queued ahead of it


@dataclass(frozen=True)
class Measured:
    size: int
    store: str
    mode: str
    clients: int
    latencies: list[float]
    wall: float
    rss: float

    def row(self) -> str:
        p = self.latencies
        return (
            f"| {self.size:,} | {self.store} | {self.mode} | {self.clients} | {percentile(p, 50):.1f} | "
            f"{percentile(p, 95):.1f} | {percentile(p, 99):.1f} | {len(p) / self.wall:.1f} | {self.rss:.0f} |"
        )


def plot(measured: list[Measured], out: Path) -> None:
    """p50 and p95 against corpus size, one line per mode and client count (pgvector)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for axis, p in zip(axes, (50, 95), strict=True):
        for mode in (*MODES, CACHED):
            for clients, style in ((ALONE, "--"), (max(m.clients for m in measured), "-")):
                points = sorted(
                    (m.size, percentile(m.latencies, p))
                    for m in measured
                    if m.store == "pgvector" and m.mode == mode and m.clients == clients
                )
                if points:
                    axis.plot(*zip(*points, strict=True), style, marker="o", label=f"{mode}, {clients} client(s)")
        axis.set_xscale("log")
        axis.set_xlabel("messages in the tenant")
        axis.set_title(f"search p{p}, pgvector, through HTTP")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also measure at 1,000,000 messages")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--data-dir", type=Path, help="keep a corpus per size here, built once")
    parser.add_argument("--out", type=Path, default=RESULTS / "search_stores.md")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes + ([1_000_000] if args.million else [])))
    questions = locomo_questions(1)  # about the first conversation
    questions = (questions * (args.searches // len(questions) + 1))[: args.searches]

    measured: list[Measured] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            # A corpus per size, so that a rerun over kept corpora measures every size again.
            root = (args.data_dir or Path(scratch)).resolve()
            data_dir = root / f"corpus-{size}"
            if corpus.built(data_dir) is None:
                shutil.rmtree(data_dir, ignore_errors=True)  # a build cut short
                made = corpus.build(data_dir, size, vectors_cache=root / corpus.VECTORS)
                notes.append(
                    f"- built a corpus of {size:,} messages in {made.total_s:.0f} s (COPY {made.copy_s:.0f} s, "
                    f"indexes {sum(made.index_s.values()):.0f} s; bench/corpus.py)"
                )
            server = serve(data_dir, "pgvector")
            try:
                for mode in MODES:
                    for clients in (ALONE, args.clients):
                        asked = questions[: len(questions) // 2] if clients == ALONE else questions
                        latencies, wall = asyncio.run(searches(server, asked, clients, mode))
                        measured.append(
                            Measured(size, "pgvector", mode, clients, latencies, wall, peak_rss_mib(server))
                        )
                        print(measured[-1].row(), flush=True)
            finally:
                server.stop()
            # A query asked before: its vector comes from the cache, the model does not run.
            server = serve(data_dir, "pgvector", query_cache=True)
            try:
                for clients in (ALONE, args.clients):
                    latencies, wall = asyncio.run(searches(server, questions, clients, "hybrid", warm_all=True))
                    rss = peak_rss_mib(server)
                    measured.append(Measured(size, "pgvector", CACHED, clients, latencies, wall, rss))
                    print(measured[-1].row(), flush=True)
            finally:
                server.stop()

            if size > LOCAL_QDRANT_LIMIT:
                notes.append(f"- qdrant local mode not measured at {size:,}: past {LOCAL_QDRANT_LIMIT:,} points")
                continue
            from adapters.postgres.database import EmbeddedPostgres

            pg = EmbeddedPostgres(data_dir / "pg")
            dsn = pg.start()
            try:
                seconds = asyncio.run(copy_vectors_to_qdrant(data_dir, dsn))
            finally:
                pg.stop()
            notes.append(f"- copied {size:,} vectors into the Qdrant collection in {seconds:.0f} s (set-up)")
            server = serve(data_dir, "qdrant")
            try:
                latencies, wall = asyncio.run(searches(server, questions, args.clients, "semantic"))
                rss = peak_rss_mib(server)
                measured.append(Measured(size, "qdrant (local mode)", "semantic", args.clients, latencies, wall, rss))
                print(measured[-1].row(), flush=True)
            finally:
                server.stop()

    picture = args.out.with_suffix(".png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(measured, picture)
    report = "\n".join(
        [
            "# Search latency by mode, vector store and corpus size, through the HTTP API",
            "",
            f"Command: `.venv/bin/python bench/search.py --sizes {' '.join(str(s) for s in args.sizes)}"
            f"{' --million' if args.million else ''} --clients {args.clients} --searches {args.searches}`",
            "",
            f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; "
            f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB.",
            "",
            f"One tenant holds the whole corpus. LoCoMo questions, top_k=10, each embedding its query "
            f"(no cache, except in the rows '{CACHED}'): {len(questions) // 2} asked by one client, "
            f"then {len(questions)} by {args.clients} "
            "concurrent clients (each sends its next search when its last is answered, so under load "
            "latency is queueing plus service: p50 is about clients / throughput). One API process, "
            "default settings otherwise. Peak RSS is the API process's VmHWM (model included; "
            "PostgreSQL not counted).",
            "",
            f"![latency against corpus size]({picture.name})",
            "",
            "| messages | store | mode | clients | p50 ms | p95 ms | p99 ms | searches/s | peak RSS MiB |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|",
            *(m.row() for m in measured),
            "",
            *notes,
            "",
        ]
    )
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
