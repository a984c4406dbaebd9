"""Retrieval quality on LoCoMo through the real HTTP API: recall@5/10/20 and MRR per search mode.

LoCoMo (`../shared/data/locomo10.json`) holds 10 long conversations between two people,
each in dated sessions, and questions about them, each with its category (1-5) and the
dia_ids of the turns that hold the answer (the evidence). The bench:

1. starts `memorymesh serve` on a fresh data directory (admin key, retention runs only by
   hand, so the old dated turns are not archived), stores every turn of every conversation
   through POST /v1/messages/batch (500 a request, async) into one tenant, one memorymesh
   conversation per LoCoMo conversation: role "user", content "<speaker>: <text>" (what an
   application would store), metadata {"dia_id", "speaker"}, created_at = the session's date
   plus the turn's index in seconds; then polls GET /v1/admin/queue until all are embedded;
2. probes each of --modes with one search carrying `mode=<m>`: a mode the server refuses
   is skipped (and the results say so); if it refuses them all, e.g. a server without the
   `mode` parameter, only the plain search is measured;
3. asks every question with evidence (GET /v1/memory/search, top_k=20, filtered to the
   question's conversation) once without `mode` (the server's default) and once per
   accepted mode, with --clients concurrent clients;
4. does 2-3 again after restarting the server over the same data with pure relevance
   ranking (MEMORY_RANKING_SIMILARITY_WEIGHT=1, _IMPORTANCE_WEIGHT=0, _RECENCY_WEIGHT=0).

recall@k is the share of a question's evidence turns found in its top k, averaged over
questions; MRR is 1 / rank of the first evidence turn in the top 20 (0 if none).

    .venv/bin/python bench/quality.py                                # the full run, about 5 minutes
    .venv/bin/python bench/quality.py --conversations 1 --modes semantic   # a quick check that it works

Figures go to bench/results/quality.md (and a summary to stdout); they are measurements,
not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import RESULTS, ROOT, ServerProcess, locomo, machine, percentile, post_batches, wait_until_drained

KEY = "bench-admin-key-0000000000"
TOP_K = 20
KS = (5, 10, 20)
CATEGORIES = (1, 2, 3, 4, 5)
ANSWERABLE = (1, 2, 3, 4)  # category 5 asks about things the conversation never says
GOAL = 0.68  # recall@10 over categories 1-4, for the service's default mode
# Recall@10 over categories 1-4, measured outside the project with the same all-MiniLM-L6-v2.
REFERENCE = {
    "dense (all-MiniLM-L6-v2)": 0.451,
    "BM25": 0.563,
    "reciprocal-rank fusion (dense + BM25)": 0.528,
    "BM25 over text with the session date": 0.593,
}
RANKINGS = {
    "default ranking (0.7 similarity, 0.2 importance, 0.1 recency)": {},
    "pure relevance (1 similarity, 0 importance, 0 recency)": {
        "MEMORY_RANKING_SIMILARITY_WEIGHT": "1",
        "MEMORY_RANKING_IMPORTANCE_WEIGHT": "0",
        "MEMORY_RANKING_RECENCY_WEIGHT": "0",
    },
}
DEFAULT = "default"  # the search without a `mode` parameter


# --- Data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    conversation_id: str
    dia_id: str
    speaker: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Question:
    conversation_id: str
    text: str
    category: int
    evidence: frozenset[str]


@dataclass
class Locomo:
    turns: list[Turn]
    questions: list[Question]  # those with evidence
    conversations: int
    sessions: int
    without_evidence: int  # questions skipped: no evidence listed
    evidence_rewritten: list[str] = field(default_factory=list)  # ids written in another form, read anyway
    evidence_unknown: list[str] = field(default_factory=list)  # ids naming no turn of the conversation, left out


def evidence_ids(raw: str) -> list[str]:
    """The dia_ids in one evidence entry: "D8:6; D9:17" holds two, "D:11:26" is D11:26, "D30:05" is D30:5."""
    return [f"D{int(m[1])}:{int(m[2])}" for m in re.finditer(r"D:?(\d+):(\d+)", raw)]


def load_locomo(limit: int | None) -> Locomo:
    conversations = locomo(limit)
    data = Locomo([], [], len(conversations), 0, 0)
    for conversation in conversations:
        known: set[str] = set()
        for session in conversation.sessions:
            data.sessions += 1
            for index, turn in enumerate(session.turns):
                at = session.began + timedelta(seconds=index)
                data.turns.append(Turn(conversation.id, turn.dia_id, turn.speaker, turn.text, at))
                known.add(turn.dia_id)
        for qa in conversation.questions:
            evidence: set[str] = set()
            for raw in qa.evidence:
                ids = evidence_ids(raw)
                if ids != [raw]:
                    data.evidence_rewritten.append(f"{conversation.id} {raw!r} → {', '.join(ids) or 'nothing'}")
                for dia_id in ids:
                    if dia_id in known:
                        evidence.add(dia_id)
                    else:
                        data.evidence_unknown.append(f"{conversation.id} {dia_id}")
            if evidence:
                data.questions.append(Question(conversation.id, qa.text, qa.category, frozenset(evidence)))
            else:
                data.without_evidence += 1
    return data


def message(tenant: str, turn: Turn) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "conversation_id": turn.conversation_id,
        "role": "user",
        "content": f"{turn.speaker}: {turn.text}",
        "metadata": {"dia_id": turn.dia_id, "speaker": turn.speaker},
        "created_at": turn.created_at.isoformat(),
    }


# --- The server ----------------------------------------------------------------------------


@contextmanager
def running_server(data_dir: Path, problems: dict[str, Counter[str]], name: str, **env: str) -> Iterator[ServerProcess]:
    # No query-vector cache: each question is asked once per mode, and each is timed with its model run.
    server = ServerProcess(
        data_dir, MEMORY_ADMIN_API_KEYS=KEY, MEMORY_RETENTION_SCHEDULE_SECONDS="0", MEMORY_QUERY_CACHE_SIZE="0", **env
    ).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        problems[name] = server_problems(server.lines)


def server_problems(lines: list[str]) -> Counter[str]:
    """The distinct warnings and errors in the server's output (JSON lines), with how often each came."""
    problems: Counter[str] = Counter()
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if "Traceback" in line or "Error" in line:
                problems["not JSON: " + line.strip()[:120]] += 1
            continue
        if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
            what = entry["exc"].strip().splitlines()[-1] if entry.get("exc") else str(entry.get("msg", ""))[:120]
            problems[f"{entry['level']} from `{entry.get('logger')}`: {what}"] += 1
    return problems


def client_for(server: ServerProcess, clients: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=clients * 2)
    return httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=120, limits=limits)


@dataclass
class Ingest:
    messages: int
    post_seconds: float
    embed_wait_seconds: float  # from the last batch accepted to nothing pending or claimed
    failed: int


async def ingest(server: ServerProcess, tenant: str, turns: list[Turn]) -> Ingest:
    async with client_for(server, 1) as client:
        began = time.perf_counter()
        await post_batches(client, [message(tenant, turn) for turn in turns])
        posted = time.perf_counter()
        status = await wait_until_drained(client, give_up_after=300 + len(turns) / 10, poll=0.5)
        return Ingest(len(turns), posted - began, time.perf_counter() - posted, int(status["failed"]))


async def retention_runs(server: ServerProcess) -> int:
    async with client_for(server, 1) as client:
        response = await client.get("/v1/admin/retention/runs")
        response.raise_for_status()
        return len(response.json()["runs"])


# --- Searching -----------------------------------------------------------------------------


@dataclass
class Pass:
    """Every question asked once in one mode."""

    mode: str  # a mode name, or DEFAULT
    ranked: list[list[str]]  # per question: the dia_ids of its results, best first
    ids: list[list[str]]  # per question: the message ids, best first (to compare passes)
    latencies_ms: list[float]
    errors: Counter[str]
    foreign: int  # results from another conversation than the one asked (should be 0)
    most_recency: float  # the largest recency score seen
    seconds: float


def search_params(tenant: str, question: Question, mode: str) -> dict[str, str | int]:
    params: dict[str, str | int] = {
        "tenant_id": tenant,
        "query": question.text,
        "conversation_id": question.conversation_id,
        "top_k": TOP_K,
    }
    if mode != DEFAULT:
        params["mode"] = mode
    return params


async def probe(server: ServerProcess, tenant: str, question: Question, modes: list[str]) -> dict[str, str]:
    """Each mode the server refuses, with its answer."""
    refused = {}
    async with client_for(server, 1) as client:
        for mode in modes:
            response = await client.get("/v1/memory/search", params=search_params(tenant, question, mode))
            if response.status_code != 200:
                try:
                    detail = str(response.json().get("detail", response.text))
                except ValueError:
                    detail = response.text
                refused[mode] = f"{response.status_code}, {detail[:200]}"
    return refused


async def ask_all(server: ServerProcess, tenant: str, questions: list[Question], mode: str, clients: int) -> Pass:
    done = Pass(mode, [[] for _ in questions], [[] for _ in questions], [], Counter(), 0, 0.0, 0.0)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(questions)):
        queue.put_nowait(i)
    async with client_for(server, clients) as client:
        for question in questions[:10]:  # warm-up
            await client.get("/v1/memory/search", params=search_params(tenant, question, mode))

        async def asker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                question = questions[i]
                response, failure = None, ""
                for _ in range(3):  # a dropped connection is tried again; an error answer is not
                    began = time.perf_counter()
                    try:
                        response = await client.get("/v1/memory/search", params=search_params(tenant, question, mode))
                        break
                    except httpx.TransportError as e:
                        failure = f"transport: {type(e).__name__}"
                if response is None:
                    done.errors[failure] += 1
                    continue
                done.latencies_ms.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    done.errors[f"{response.status_code}: {response.text[:120]}"] += 1
                    continue
                for result in response.json()["results"]:
                    found = result["message"]
                    if found["conversation_id"] != question.conversation_id:
                        done.foreign += 1
                        continue
                    done.ranked[i].append(str((found.get("metadata") or {}).get("dia_id")))
                    done.ids[i].append(found["id"])
                    done.most_recency = max(done.most_recency, float(result["scores"]["recency"]))

        began = time.perf_counter()
        await asyncio.gather(*(asker() for _ in range(clients)))
        done.seconds = time.perf_counter() - began
    return done


# --- Scoring -------------------------------------------------------------------------------


@dataclass
class Scores:
    questions: int
    recall: dict[int, float]  # k → mean recall@k
    mrr: float


def score(questions: list[Question], ranked: list[list[str]]) -> Scores:
    recalls: dict[int, list[float]] = {k: [] for k in KS}
    reciprocal: list[float] = []
    for question, dia_ids in zip(questions, ranked, strict=True):
        for k in KS:
            recalls[k].append(len(question.evidence & set(dia_ids[:k])) / len(question.evidence))
        first = next((rank for rank, dia_id in enumerate(dia_ids[:TOP_K], 1) if dia_id in question.evidence), None)
        reciprocal.append(1 / first if first else 0.0)
    mean = statistics.fmean if questions else (lambda _: float("nan"))
    return Scores(len(questions), {k: mean(v) for k, v in recalls.items()}, mean(reciprocal))


def score_by(questions: list[Question], ranked: list[list[str]], categories: tuple[int, ...]) -> Scores:
    chosen = [i for i, q in enumerate(questions) if q.category in categories]
    return score([questions[i] for i in chosen], [ranked[i] for i in chosen])


def same_as(default: Pass, passes: list[Pass]) -> str | None:
    """The mode whose rankings the search without `mode` reproduces for every question, if any."""
    for other in passes:
        if other.mode != DEFAULT and other.ids == default.ids:
            return other.mode
    return None


# --- The report ----------------------------------------------------------------------------


@dataclass
class Setting:
    name: str
    env: dict[str, str]
    refused: dict[str, str]
    passes: list[Pass]
    problems: Counter[str] = field(default_factory=Counter)

    def default_is(self) -> str | None:
        default = next(p for p in self.passes if p.mode == DEFAULT)
        return same_as(default, self.passes)


def label(setting: Setting, run: Pass) -> str:
    if run.mode != DEFAULT:
        return f"`{run.mode}`"
    if len(setting.passes) == 1:
        return "plain search (no `mode` parameter)"
    twin = setting.default_is()
    return f"default (no `mode`){f', = `{twin}`' if twin else ''}"


def table(setting: Setting, questions: list[Question]) -> list[str]:
    head = "| mode | R@5 | R@10 | R@20 | MRR | " + " | ".join(f"R@10 cat {c}" for c in CATEGORIES) + " |"
    lines = [head, "|---" + "|---:" * (4 + len(CATEGORIES)) + "|"]
    for run in setting.passes:
        over = score_by(questions, run.ranked, ANSWERABLE)
        per = [score_by(questions, run.ranked, (c,)).recall[10] for c in CATEGORIES]
        lines.append(
            f"| {label(setting, run)} | {over.recall[5]:.3f} | **{over.recall[10]:.3f}** | {over.recall[20]:.3f} | "
            f"{over.mrr:.3f} | " + " | ".join(f"{r:.3f}" for r in per) + " |"
        )
    for name, figure in REFERENCE.items():
        lines.append(f"| reference: {name} | | {figure:.3f} |" + " |" * (2 + len(CATEGORIES)))
    return lines


def over_answerable(run: Pass, questions: list[Question]) -> float:
    return score_by(questions, run.ranked, ANSWERABLE).recall[10]


def findings(settings: list[Setting], questions: list[Question]) -> list[str]:
    """Sentences read off the figures (so that they stay true when the bench runs again)."""
    says = []
    first = settings[0]
    default = next(p for p in first.passes if p.mode == DEFAULT)
    twin = first.default_is()
    r10 = over_answerable(default, questions)
    says.append(
        f"The service's default search{f' (`{twin}`)' if twin else ''}, with default ranking, finds "
        f"{r10:.1%} of the evidence in its top 10 over categories 1-4: the goal of {GOAL:.0%} is "
        f"{'met' if r10 >= GOAL else f'NOT met ({GOAL - r10:.3f} short)'}."
    )
    for setting in [s for s in settings if len(s.passes) > 1]:
        best = max(setting.passes, key=lambda p: over_answerable(p, questions))
        says.append(
            f"Best mode under {setting.name.split(' (')[0]}: {label(setting, best)} at R@10 "
            f"{over_answerable(best, questions):.3f}."
        )
    if len(settings) == 2:
        changes = []
        for on in first.passes:
            off = next((p for p in settings[1].passes if p.mode == on.mode), None)
            if off is not None and on.mode != DEFAULT:
                delta = over_answerable(off, questions) - over_answerable(on, questions)
                changes.append(f"`{on.mode}` {delta:+.3f}")
        if changes:
            says.append(
                "Turning importance and recency off changes R@10 (cats 1-4) by " + ", ".join(changes) + "; "
                f"recency was at most {max(p.most_recency for p in first.passes):.2g} in any result "
                "(the turns are years old against a 30-day half-life), so the difference is importance's."
            )
    reference = {"semantic": "dense (all-MiniLM-L6-v2)", "keyword": "BM25", "hybrid": "reciprocal-rank fusion"}
    against = []
    for run in settings[-1].passes:
        name = next((r for r in REFERENCE if r.startswith(reference.get(run.mode, "-"))), None)
        if name:
            against.append(f"`{run.mode}` {over_answerable(run, questions):.3f} vs {name} {REFERENCE[name]:.3f}")
    if against:
        says.append("With pure relevance, against the outside reference figures: " + "; ".join(against) + ".")
    weakest = min(ANSWERABLE, key=lambda c: score_by(questions, default.ranked, (c,)).recall[10])
    says.append(
        f"The weakest answerable category for the default search is {weakest} "
        f"(R@10 {score_by(questions, default.ranked, (weakest,)).recall[10]:.3f})."
    )
    return says


def noise(settings: list[Setting]) -> list[str]:
    if not any(p.mode in ("keyword", "hybrid") for s in settings for p in s.passes):
        return []
    return [
        "Run-to-run noise: the same code and data, stored again, gave identical `semantic` figures but moved "
        "`keyword` and `hybrid` R@10 by up to about 0.01 (messages get new random ids each run, and ids "
        "break ties in full-text rank): read smaller differences between those rows as noise.",
        "",
    ]


def report(
    args: argparse.Namespace,
    data: Locomo,
    loaded: Ingest,
    settings: list[Setting],
    wall: float,
    notes: list[str],
) -> str:
    categories = Counter(q.category for q in data.questions)
    timing = [
        f"- ingest: {loaded.messages:,} messages posted in {loaded.post_seconds:.1f} s "
        f"({-(-loaded.messages // 500)} batch request{'s' if loaded.messages > 500 else ''}), "
        f"then {loaded.embed_wait_seconds:.1f} s until every "
        f"one was embedded ({loaded.messages / (loaded.post_seconds + loaded.embed_wait_seconds):.0f} messages/s "
        f"overall); {loaded.failed} failed.",
    ]
    for setting in settings:
        latencies = ", ".join(
            f"{label(setting, p)} p50 {percentile(p.latencies_ms, 50):.0f} ms / p95 "
            f"{percentile(p.latencies_ms, 95):.0f} ms ({len(p.latencies_ms) / p.seconds:.0f} searches/s)"
            for p in setting.passes
            if p.latencies_ms
        )
        timing.append(f"- search, {setting.name.split(' (')[0]}: {latencies}.")
    timing.append(f"- the whole run: {wall:.0f} s.")

    sections = []
    for setting in settings:
        env = ", ".join(f"{k}={v}" for k, v in setting.env.items()) or "the ranking settings at their defaults"
        lines = [f"### {setting.name[0].upper()}{setting.name[1:]}", "", f"Server: {env}.", ""]
        lines += [*table(setting, data.questions), ""]
        for mode, answer in setting.refused.items():
            lines.append(f"- `mode={mode}` was refused by the server and skipped: {answer}")
        for run in setting.passes:
            if run.errors:
                found = "; ".join(f"{n} × {what}" for what, n in run.errors.items())
                lines.append(f"- {label(setting, run)}: searches that failed (counted as finding nothing): {found}")
            if run.foreign:
                lines.append(f"- {label(setting, run)}: {run.foreign} results from another conversation (left out)")
        if setting.problems:
            found = "; ".join(f"{n} × {what}" for what, n in setting.problems.items())
            lines.append(f"- warnings and errors in the server's output: {found}")
        sections += [*lines, ""] if lines[-1] else lines

    rewritten = "; ".join(data.evidence_rewritten) or "none"
    unknown = ", ".join(data.evidence_unknown) or "none"
    command = "`.venv/bin/python bench/quality.py" + (f" --modes {args.modes}" if args.modes != DEFAULT_MODES else "")
    command += f"{f' --conversations {args.conversations}' if args.conversations else ''}"
    command += f"{f' --clients {args.clients}' if args.clients != 4 else ''}"
    command += "".join(f" --server-env {name}={value}" for name, value in args.server_env.items())
    command += "` (`make bench-quality`)"
    return "\n".join(
        [
            "# Retrieval quality on LoCoMo, through the HTTP API",
            "",
            f"Command: {command}",
            "",
            f"Date: {args.began:%Y-%m-%d %H:%M} UTC. Machine: {machine()}; "
            f"{platform.python_implementation()} {platform.python_version()}; load average "
            f"{args.load_before:.2f} when the run began. Code: {args.code}.",
            "",
            "## Data",
            "",
            f"LoCoMo (`../shared/data/locomo10.json`): {data.conversations} "
            f"conversation{'s' if data.conversations > 1 else ''}, "
            f"{data.sessions} sessions, "
            f"{len(data.turns):,} turns. Each turn is stored as one message of the conversation's own "
            "memorymesh conversation (one tenant for the run): role `user`, content `<speaker>: <text>` "
            "(the speaker's name in front, as an application would store it), metadata "
            "`{dia_id, speaker}`, `created_at` = the session's date (LoCoMo's \"1:56 pm on 8 May, 2023\", read as "
            "UTC) plus the turn's index in seconds. Image turns keep only their text (no caption).",
            "",
            f"Questions: {len(data.questions) + data.without_evidence:,}; {data.without_evidence} have no evidence "
            f"and are skipped, leaving {len(data.questions):,} (category 1: {categories[1]}, 2: {categories[2]}, "
            f"3: {categories[3]}, 4: {categories[4]}, 5: {categories[5]}). Categories 1-4 are the answerable "
            "kinds (multi-hop, temporal, open-domain, single-hop in the usual reading of LoCoMo's numbers); 5 is "
            "adversarial (asks about something the conversation does not say). Evidence ids written in another "
            "form were read as dia_ids "
            f"({rewritten}); ids that name no turn of the conversation were left out ({unknown}).",
            "",
            "Each question is asked through `GET /v1/memory/search` with `top_k=20` and `conversation_id` = its "
            f"conversation, by {args.clients} concurrent clients; once without `mode` (the server's default) and "
            "once per mode the server accepts. R@k = the share of the question's evidence turns (by dia_id) in "
            "its top k, averaged over questions; MRR = 1 / rank of the first evidence turn in the top 20, 0 if "
            "none. R@5, R@10, R@20 and MRR are over categories 1-4 (averaged over their questions, not over "
            f"categories); the goal for the default mode is R@10 ≥ {GOAL}. The reference rows are R@10 over "
            "categories 1-4 measured outside the project with the same all-MiniLM-L6-v2, for comparison.",
            "",
            "The data are stored once; for the second ranking setting the server is restarted over the same "
            "data directory with the other weights (nothing is re-embedded).",
            "",
            "## Results",
            "",
            *sections,
            "## Timing",
            "",
            *timing,
            "",
            "## What this says",
            "",
            " ".join(findings(settings, data.questions)),
            "",
            *noise(settings),
            *notes,
        ]
    )


def code_version() -> str:
    """The commit the server ran from, and whether the working tree differed from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode:
        return "not a git checkout"
    changed = len([line for line in dirty.stdout.splitlines() if line.strip()])
    tree = f" with {changed} files changed or new in the working tree" if changed else ""
    return f"commit {head.stdout.strip()}{tree}"


def summary(settings: list[Setting], questions: list[Question]) -> str:
    lines = []
    for setting in settings:
        lines.append(setting.name)
        for run in setting.passes:
            over = score_by(questions, run.ranked, ANSWERABLE)
            lines.append(
                f"  {label(setting, run).replace('`', ''):<32} R@5 {over.recall[5]:.3f}  R@10 {over.recall[10]:.3f}  "
                f"R@20 {over.recall[20]:.3f}  MRR {over.mrr:.3f}  p50 {percentile(run.latencies_ms, 50):.0f} ms"
            )
        for mode in setting.refused:
            lines.append(f"  {mode}: refused by the server, skipped")
    return "\n".join(lines)


DEFAULT_MODES = "semantic,keyword,hybrid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"search modes to try (default {DEFAULT_MODES})")
    parser.add_argument("--clients", type=int, default=4, help="concurrent search clients (default 4)")
    parser.add_argument("--conversations", type=int, default=None, help="only the first N conversations")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.md")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="MEMORY_X=VALUE",
        help="a setting of the servers measured, e.g. MEMORY_EMBEDDING_ONNX_QUANTIZE=int8 (repeatable)",
    )
    args = parser.parse_args()
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    args.load_before = os.getloadavg()[0]
    args.began, args.code = datetime.now(UTC), code_version()  # what the servers start from
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    started = time.perf_counter()
    data = load_locomo(args.conversations)
    tenant = f"locomo-{datetime.now(UTC):%Y%m%d%H%M%S}"
    print(
        f"LoCoMo: {len(data.turns):,} turns, {len(data.questions):,} questions with evidence "
        f"({data.without_evidence} without, skipped)",
        flush=True,
    )
    settings: list[Setting] = []
    problems: dict[str, Counter[str]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        loaded: Ingest | None = None
        for name, env in RANKINGS.items():
            with running_server(data_dir, problems, name, **env, **args.server_env) as server:
                if loaded is None:
                    print("storing and embedding ...", flush=True)
                    loaded = asyncio.run(ingest(server, tenant, data.turns))
                    print(
                        f"  posted in {loaded.post_seconds:.1f} s, embedded {loaded.embed_wait_seconds:.1f} s later",
                        flush=True,
                    )
                refused = asyncio.run(probe(server, tenant, data.questions[0], modes))
                accepted = [m for m in modes if m not in refused]
                if not accepted and modes:
                    notes.append(
                        f"- Under {name.split(' (')[0]}, the server refused every mode ({', '.join(modes)}): "
                        "only the plain search (no `mode` parameter) was measured."
                    )
                passes = []
                for mode in [DEFAULT, *accepted]:
                    print(f"{name.split(' (')[0]}: {mode} ...", flush=True)
                    passes.append(asyncio.run(ask_all(server, tenant, data.questions, mode, args.clients)))
                if runs := asyncio.run(retention_runs(server)):
                    notes.append(f"- {runs} retention runs happened during the bench: some turns may be archived.")
            settings.append(Setting(name, env, refused, passes, problems[name]))
    assert loaded is not None
    wall = time.perf_counter() - started

    text = report(args, data, loaded, settings, wall, notes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(summary(settings, data.questions))
    print(f"{wall:.0f} s; figures in {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
