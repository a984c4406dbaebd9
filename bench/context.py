"""POST /v1/context on LoCoMo: how much of each question's evidence a context holds within a
budget, against plain top-k search truncated to the same budget; and its latency next to a
search's.

1. Starts `memorymesh serve` on a fresh data directory and stores every turn of the chosen
   LoCoMo conversations as bench/quality.py does (one memorymesh conversation per LoCoMo
   conversation, content "<speaker>: <text>", metadata {"dia_id"}, created_at the session's
   date), then waits until all are embedded.
2. For each question with evidence (categories 1-4), in its conversation: a context call
   (`query` = the question, scope conversation, default `recent`: the conversation's last 20
   turns) at each budget; and one plain search (POST /v1/memory/search, top_k=40, the
   server's default mode, filtered to the conversation) whose results, all 40 and the first
   20, are rendered as the context renders memories of its conversation ("- [date, role]
   text" under the same header) and kept, best first, while the whole still counts within
   the budget (o200k_base). The share of the question's evidence turns inside each (a cut
   message counts), averaged.
3. Latency: the first --latency-questions questions, each once as a context call at 1,000
   tokens and once as that search, with 1 and with 8 concurrent clients: p50 / p95.

    .venv/bin/python bench/context.py                      # every conversation, about 10 minutes
    .venv/bin/python bench/context.py --conversations 2    # a quicker run

Figures go to bench/results/context.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness import RESULTS, ServerProcess, machine, percentile, post_batches, wait_until_drained
from quality import ANSWERABLE, Question, load_locomo, message

from adapters.tokenizers.bpe_openai import BpeOpenAiTokenizer
from config.settings import Settings
from domain.context import MEMORIES_HEADER

KEY = "bench-admin-key-0000000000"
TENANT = "locomo"
TOP_K = 20
DEEP_K = 40  # what the context asks of search: its 20 memories and the 20 turns of the window
BUDGETS = (500, 1_000, 2_000)
TOKENIZER = BpeOpenAiTokenizer("o200k_base")


def client_for(server: ServerProcess, clients: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=clients * 2)
    return httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120, limits=limits)


async def context(client: httpx.AsyncClient, question: Question, budget: int) -> dict[str, Any]:
    body = {"tenant_id": TENANT, "conversation_id": question.conversation_id, "query": question.text}
    response = await client.post("/v1/context", json={**body, "max_tokens": budget})
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def search(client: httpx.AsyncClient, question: Question, top_k: int = TOP_K) -> list[dict[str, Any]]:
    body = {"tenant_id": TENANT, "conversation_id": question.conversation_id, "query": question.text}
    response = await client.post("/v1/memory/search", json={**body, "top_k": top_k})
    response.raise_for_status()
    return [r["message"] for r in response.json()["results"]]


def line(m: dict[str, Any]) -> str:
    """As the context renders a memory of its own conversation (the search is filtered to it)."""
    at = datetime.fromisoformat(m["created_at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"- [{at}, {m['role']}] {m['content']}"


def truncated(found: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Search results best first, rendered as the context renders memories, while the whole fits."""
    kept: list[dict[str, Any]] = []
    lines = [MEMORIES_HEADER]
    for m in found:
        if TOKENIZER.count("\n".join([*lines, line(m)])) > budget:
            break
        kept.append(m)
        lines.append(line(m))
    return kept


def share(evidence: frozenset[str], messages: list[dict[str, Any]]) -> float:
    inside = {m["metadata"].get("dia_id") for m in messages}
    return len(evidence & inside) / len(evidence)


async def quality(server: ServerProcess, questions: list[Question], clients: int) -> dict[str, list[float]]:
    kinds = ("context", "search", "deep search")
    shares: dict[str, list[float]] = {f"{kind} {b}": [] for b in BUDGETS for kind in kinds}
    shares.update({f"context {b} recent": [] for b in BUDGETS})
    gate = asyncio.Semaphore(clients)

    async def ask(client: httpx.AsyncClient, question: Question) -> None:
        async with gate:
            deep = await search(client, question, DEEP_K)
            found = deep[:TOP_K]  # the same ranking: search ranks its first 100 candidates whatever top_k is
            for budget in BUDGETS:
                built = await context(client, question, budget)
                recent = [e["message"] for e in built["recent"]]
                shares[f"context {budget}"].append(
                    share(question.evidence, recent + [e["message"] for e in built["memories"]])
                )
                shares[f"context {budget} recent"].append(share(question.evidence, recent))
                shares[f"search {budget}"].append(share(question.evidence, truncated(found, budget)))
                shares[f"deep search {budget}"].append(share(question.evidence, truncated(deep, budget)))

    async with client_for(server, clients) as client:
        await asyncio.gather(*(ask(client, q) for q in questions))
    return shares


async def latency(server: ServerProcess, questions: list[Question], clients: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"context 1000": [], "search": []}
    gate = asyncio.Semaphore(clients)

    async def timed(kind: str, call: Any) -> None:
        async with gate:
            started = time.perf_counter()
            await call
            timings[kind].append((time.perf_counter() - started) * 1000)

    async with client_for(server, clients) as client:
        for kind in timings:  # one kind at a time: each measured alone at this concurrency
            calls = [context(client, q, 1_000) if kind.startswith("context") else search(client, q) for q in questions]
            await asyncio.gather(*(timed(kind, c) for c in calls))
    return timings


def report(
    args: argparse.Namespace,
    turns: int,
    questions: int,
    shares: dict[str, list[float]],
    timings: dict[int, dict[str, list[float]]],
    took: float,
) -> str:
    mean = {k: sum(v) / len(v) for k, v in shares.items() if v}
    rows = "\n".join(
        f"| {b:,} | **{mean[f'context {b}']:.3f}** (recent window {mean[f'context {b} recent']:.3f}) "
        f"| {mean[f'search {b}']:.3f} | {mean[f'deep search {b}']:.3f} |"
        for b in BUDGETS
    )
    lat = "\n".join(
        f"| {clients} | {percentile(t['context 1000'], 50):.0f} / {percentile(t['context 1000'], 95):.0f} "
        f"| {percentile(t['search'], 50):.0f} / {percentile(t['search'], 95):.0f} |"
        for clients, t in timings.items()
    )
    command = (
        ".venv/bin/python bench/context.py"
        + (f" --conversations {args.conversations}" if args.conversations else "")
        + (f" --recent-share {args.recent_share:g}" if args.recent_share is not None else "")
    )
    default = Settings.model_fields["context_recent_share"].default  # the harness passes no MEMORY_* of the shell
    share = default if args.recent_share is None else args.recent_share
    return f"""# POST /v1/context on LoCoMo

{datetime.now(UTC):%Y-%m-%d}, {machine()}, CPython {platform.python_version()}; one API process, default
settings (hybrid search, MEMORY_CONTEXT_RECENT_SHARE={share:g}, recent window 20 turns).
Command: `{command}`
({took / 60:.1f} minutes). {turns:,} turns stored; {questions:,} questions (categories 1-4).

## Evidence inside the budget

The share of each question's evidence turns that end up inside the context (recent turns or
memories; a cut message counts), averaged over questions, against plain top-k search (the
server's default mode, k = {TOP_K}, and k = {DEEP_K} as many as the context asks for) rendered
as the context renders a memory of its conversation and truncated to the same budget.

| budget (o200k_base tokens) | context | top-{TOP_K} search, truncated | top-{DEEP_K} search, truncated |
|---|---|---|---|
{rows}

## Latency, ms, p50 / p95 ({args.latency_questions} questions, each alone at its concurrency)

| clients | context at 1,000 tokens | search (top_k={TOP_K}) |
|---|---|---|
{lat}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=None, help="the first N LoCoMo conversations")
    parser.add_argument("--latency-questions", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the quality pass")
    parser.add_argument(
        "--recent-share", type=float, default=None, help="MEMORY_CONTEXT_RECENT_SHARE of the server (default: its own)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "context.md")
    args = parser.parse_args()
    started = time.perf_counter()
    data = load_locomo(args.conversations)
    questions = [q for q in data.questions if q.category in ANSWERABLE]
    with tempfile.TemporaryDirectory(prefix="bench-context-") as directory:
        server = ServerProcess(
            Path(directory) / "data",
            MEMORY_ADMIN_API_KEYS=KEY,
            MEMORY_RETENTION_SCHEDULE_SECONDS="0",
            MEMORY_QUERY_CACHE_SIZE="0",
            **({} if args.recent_share is None else {"MEMORY_CONTEXT_RECENT_SHARE": str(args.recent_share)}),
        ).start()
        try:
            server.wait_ready()

            async def run() -> tuple[dict[str, list[float]], dict[int, dict[str, list[float]]]]:
                async with client_for(server, 4) as client:
                    await post_batches(client, [message(TENANT, t) for t in data.turns])
                    await wait_until_drained(client, give_up_after=1_800)
                print(f"stored {len(data.turns):,} turns; asking {len(questions):,} questions", flush=True)
                shares = await quality(server, questions, args.clients)
                timings = {c: await latency(server, questions[: args.latency_questions], c) for c in (1, 8)}
                return shares, timings

            shares, timings = asyncio.run(run())
        finally:
            server.stop()
    text = report(args, len(data.turns), len(questions), shares, timings, time.perf_counter() - started)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
