"""The local model on each runtime, side by side in one run: torch (sentence-transformers)
against ONNX Runtime (fp32, and int8 when asked), through the composition root as the API
and the worker open it.

Each runtime is measured in a child process of its own, so start time, RSS and what the
process imported are its own: the start (container start to embedder ready, the ONNX export
already cached: it is made once, before the rounds), one query at a time (distinct LoCoMo
questions, p50/p95), and documents in batches of 32 (LoCoMo turns, through embed_documents:
sorted by length, MEMORY_EMBEDDING_ENCODE_BATCH_SIZE at a time). Rounds alternate the
runtimes, so a noisy neighbour hurts each alike. Vectors of each runtime are compared to
torch's (cosine, min and mean over the documents).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/embedders.py                    # about two minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/embedders.py --runtimes torch,onnx,onnx-int8 --rounds 3

Figures go to bench/results/embedders.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # before the project's imports: they are part of a start

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from harness import RESULTS, ROOT, locomo_questions, locomo_turns, machine, percentile  # noqa: E402

RUNTIMES = {"torch": {"embedding_runtime": "torch"}, "onnx": {"embedding_runtime": "onnx"}}
QUANTIZED = {"onnx-int8": {"embedding_runtime": "onnx", "embedding_onnx_quantize": "int8"}}


def settings_for(runtime: str, cache: Path, threads: int) -> dict[str, Any]:
    chosen = {**RUNTIMES, **QUANTIZED}[runtime]
    return {
        **chosen,
        "embedding_threads": threads,
        "embedding_onnx_threads": threads,
        "embedding_onnx_cache_dir": str(cache),
        "embedding_encode_batch_size": 32,
        "data_dir": str(cache / "data"),
    }


async def measure(runtime: str, cache: Path, threads: int, queries: int, documents: int) -> dict[str, Any]:
    """In the child: one runtime, from its start to its figures."""
    from config.container import Container, running
    from config.settings import Settings

    settings = Settings(_env_file=None, **settings_for(runtime, cache, threads))
    async with running(settings, Container.embedder) as container:
        embedder = container.embedder()
        await embedder.embed_query("warm up")
        started = time.monotonic() - STARTED
        questions = locomo_questions()[:queries]
        one: list[float] = []
        for question in questions:
            begun = time.perf_counter()
            await embedder.embed_query(question)
            one.append((time.perf_counter() - begun) * 1000)
        texts = [turn["content"] for turn in locomo_turns()[:documents]]
        begun = time.perf_counter()
        vectors = await embedder.embed_documents(texts)
        seconds = time.perf_counter() - begun
        model_name = embedder.model_name
    import psutil

    return {
        "runtime": runtime,
        "model_name": model_name,
        "start_s": started,
        "query_p50_ms": percentile(one, 50),
        "query_p95_ms": percentile(one, 95),
        "documents_per_s": len(texts) / seconds,
        "rss_mib": psutil.Process().memory_info().rss / 2**20,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_imported": "torch" in sys.modules,
        "vectors": vectors,
    }


def child(runtime: str, cache: Path, threads: int, queries: int, documents: int) -> dict[str, Any]:
    out = cache / f"{runtime}.json"
    command = [sys.executable, __file__, "--child", runtime, "--cache", str(cache), "--threads", str(threads)]
    command += ["--queries", str(queries), "--documents", str(documents), "--out", str(out)]
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray[Any, Any]:
    x, y = np.asarray(a), np.asarray(b)
    return np.asarray((x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)))


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "adapters", "config") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def report(args: argparse.Namespace, rounds: list[list[dict[str, Any]]], export_s: dict[str, float]) -> str:
    runtimes = args.runtimes.split(",")
    reference = next((r["vectors"] for r in rounds[0] if r["runtime"] == "torch"), None)
    lines = [
        "# The local model on torch and on ONNX Runtime",
        "",
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python bench/embedders.py --runtimes {args.runtimes} "
        f"--rounds {args.rounds} --queries {args.queries} --documents {args.documents} --threads {args.threads}`",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; CPython {platform.python_version()}. "
        f"Load average before the run: {' / '.join(f'{x:.2f}' for x in args.load)} (1 / 5 / 15 min). "
        f"Code measured: commit {commit()}.",
        "",
        f"all-MiniLM-L6-v2 (the bundled model), {args.threads} threads per runtime, one encode at a time. "
        f"Each runtime in a process of its own, opened through the composition root; {args.rounds} rounds, "
        "runtimes alternating; the median of the rounds is shown (each round's figures below). One query: "
        f"{args.queries} distinct LoCoMo questions, one after the other. Documents: the first {args.documents} "
        "LoCoMo turns through embed_documents, 32 a forward pass. Start: process start to the embedder ready "
        "(imports, model load, one warm-up query), the ONNX export already cached. Cosine: each document's "
        "vector against torch's, min / mean.",
        "",
        "| runtime | one query p50 ms | p95 ms | documents/s (batches of 32) | start s | RSS MiB | torch imported "
        "| cosine to torch (min / mean) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for runtime in runtimes:
        runs = [run for row in rounds for run in row if run["runtime"] == runtime]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        similarity = "–"
        if reference is not None:
            c = cosines(runs[0]["vectors"], reference)
            similarity = f"{c.min():.5f} / {c.mean():.5f}"
        lines.append(
            f"| {runtime} | {med('query_p50_ms'):.2f} | {med('query_p95_ms'):.2f} | {med('documents_per_s'):.0f} "
            f"| {med('start_s'):.1f} | {med('rss_mib'):.0f} | {'yes' if runs[0]['torch_imported'] else 'no'} "
            f"| {similarity} |"
        )
    lines += ["", "Each round (query p50 ms, documents/s):", ""]
    for n, row in enumerate(rounds, 1):
        cells = ", ".join(f"{r['runtime']} {r['query_p50_ms']:.2f} ms / {r['documents_per_s']:.0f}/s" for r in row)
        lines.append(f"- round {n}: {cells}")
    if export_s:
        made = ", ".join(f"{k} {v:.1f} s" for k, v in export_s.items())
        lines += [
            "",
            f"First open into an empty cache (export, then start; not in the figures above): {made} "
            "(int8 after fp32: it quantizes the cached fp32 export).",
        ]
    names = {r["runtime"]: r["model_name"] for r in rounds[0]}
    lines += ["", "Recorded model names: " + ", ".join(f"{k} `{v}`" for k, v in names.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtimes", default="torch,onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--documents", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(measure(args.child, args.cache, args.threads, args.queries, args.documents))
        args.out.write_text(json.dumps(result))
        return
    args.load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-embedders-") as directory:
        cache = Path(directory)
        export_s: dict[str, float] = {}
        for runtime in args.runtimes.split(","):  # the export (and quantization), once, not measured below
            if runtime != "torch":
                begun = time.monotonic()
                child(runtime, cache, args.threads, 1, 1)
                export_s[runtime] = time.monotonic() - begun
        rounds = []
        for n in range(args.rounds):
            order = args.runtimes.split(",")[:: 1 if n % 2 == 0 else -1]
            rounds.append([child(runtime, cache, args.threads, args.queries, args.documents) for runtime in order])
            print(f"round {n + 1}: " + ", ".join(f"{r['runtime']} {r['query_p50_ms']:.2f} ms" for r in rounds[-1]))
    text = report(args, rounds, export_s)
    (RESULTS / "embedders.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
