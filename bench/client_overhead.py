"""What the client library costs per call: one search through `MemoryMesh.search` against the
same search sent with raw httpx.

1. Over HTTP: starts `memorymesh serve` on a fresh data directory, stores --messages messages
   (one tenant, through the client's batch call, waiting until embedded), then sends the same
   GET /v1/memory/search --calls times through each, interleaved (raw then client, then client
   then raw, ...) on one keep-alive connection each, so both meet the same server and noise.
   The query is the same every time: its vector comes from the query cache, so the figures are
   the HTTP round trip and ranking, not the model.
2. In process: the same search answered by httpx's MockTransport with the bytes the server sent,
   --mock-calls times each: no network and no server, only what the client adds (building the
   call, the retry bookkeeping, reading the answer) over raw httpx (build, send, .json()).

    .venv/bin/python bench/client_overhead.py                 # about a minute
    .venv/bin/python bench/client_overhead.py --calls 2000

Figures go to bench/results/client_overhead.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness import RESULTS, ServerProcess, machine, percentile
from memorymesh_client import MemoryMesh, message_fields

KEY = "bench-admin-key-0000000000"
TENANT = "bench"
QUERY = "what does my son have to avoid eating?"
TOP_K = 5


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def interleaved(raw: Callable[[], Any], client: Callable[[], Any], calls: int) -> tuple[list[float], list[float]]:
    raws, clients = [], []
    for i in range(calls):
        if i % 2:
            clients.append(timed(client))
            raws.append(timed(raw))
        else:
            raws.append(timed(raw))
            clients.append(timed(client))
    return raws, clients


def over_http(server: ServerProcess, messages: int, calls: int) -> tuple[list[float], list[float], bytes]:
    params = {"tenant_id": TENANT, "query": QUERY, "top_k": str(TOP_K)}
    with MemoryMesh(server.url, KEY, timeout=60) as memory, server.client(KEY) as http:
        for start in range(0, messages, 500):
            batch = [
                message_fields(TENANT, f"c{i % 20}", "user", f"Message {i}: my son is allergic to peanut number {i}.")
                for i in range(start, min(messages, start + 500))
            ]
            memory.store_messages(batch, wait=True)

        def raw() -> Any:
            response = http.get("/v1/memory/search", params=params)
            response.raise_for_status()
            return response.json()

        def client() -> Any:
            return memory.search(TENANT, QUERY, top_k=TOP_K)

        ids = [[hit["message"]["id"] for hit in answer["results"]] for answer in (raw(), client())]
        assert ids[0] == ids[1], ids  # the same search (scores move with the clock: recency)
        interleaved(raw, client, 50)  # warm: connections, the query cache
        raws, clients = interleaved(raw, client, calls)
        body = http.get("/v1/memory/search", params=params).content
    return raws, clients, body


def in_process(body: bytes, calls: int) -> tuple[list[float], list[float]]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    params = {"tenant_id": TENANT, "query": QUERY, "top_k": str(TOP_K)}
    transport = httpx.MockTransport(answer)
    with (
        MemoryMesh("http://memory.test", KEY, transport=transport) as memory,
        httpx.Client(base_url="http://memory.test", headers={"x-api-key": KEY}, transport=transport) as http,
    ):

        def raw() -> Any:
            response = http.get("/v1/memory/search", params=params)
            response.raise_for_status()
            return response.json()

        def client() -> Any:
            return memory.search(TENANT, QUERY, top_k=TOP_K)

        interleaved(raw, client, 1_000)
        return interleaved(raw, client, calls)


def row(label: str, raws: list[float], clients: list[float], unit: float, name: str) -> str:
    p50_raw, p50_client = percentile(raws, 50), percentile(clients, 50)
    p95_raw, p95_client = percentile(raws, 95), percentile(clients, 95)
    mean_raw, mean_client = sum(raws) / len(raws), sum(clients) / len(clients)
    return (
        f"| {label} | {len(raws):,} | {p50_raw * unit:.1f} | {p50_client * unit:.1f} | "
        f"{(p50_client - p50_raw) * unit:+.1f} {name} | {p95_raw * unit:.1f} | {p95_client * unit:.1f} | "
        f"{(mean_client - mean_raw) * unit:+.1f} {name} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--mock-calls", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "client_overhead.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-client-") as directory:
        server = ServerProcess(Path(directory) / "data", MEMORY_ADMIN_API_KEYS=KEY).start()
        try:
            server.wait_ready()
            raws, clients, body = over_http(server, args.messages, args.calls)
        finally:
            server.stop()
    mock_raws, mock_clients = in_process(body, args.mock_calls)
    share = (percentile(mock_clients, 50) - percentile(mock_raws, 50)) / percentile(raws, 50)

    text = "\n".join(
        [
            "# Client overhead: one search through memorymesh-client vs raw httpx",
            "",
            "`.venv/bin/python bench/client_overhead.py"
            f" --messages {args.messages} --calls {args.calls} --mock-calls {args.mock_calls}`",
            "",
            f"Machine: {machine()}; Python {platform.python_version()}, httpx {httpx.__version__}.",
            f"GET /v1/memory/search, top_k {TOP_K}, the same query each time (its vector from the query cache), "
            f"over {args.messages:,} messages of one tenant; {len(body):,} bytes answered. Over HTTP the two are "
            "interleaved on one keep-alive connection each; in process both are answered by httpx's MockTransport "
            "with those bytes, so only the client's own work differs.",
            "",
            "| path | calls each | raw httpx p50 | client p50 | p50 overhead | raw p95 | client p95 | mean overhead |",
            "|---|---|---|---|---|---|---|---|",
            row("over HTTP, real server (ms)", raws, clients, 1e3, "ms"),
            row("in process, mock transport (µs)", mock_raws, mock_clients, 1e6, "µs"),
            "",
            f"The client adds {(percentile(mock_clients, 50) - percentile(mock_raws, 50)) * 1e6:.0f} µs a call at p50 "
            f"in process, {share:.2%} of {percentile(raws, 50) * 1e3:.1f} ms, a search's p50 over HTTP here: within "
            "that path's noise. Its methods do what the raw call does (build, send, read JSON) plus the retry "
            "bookkeeping and the idempotency header; nothing is validated or converted on the way.",
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
