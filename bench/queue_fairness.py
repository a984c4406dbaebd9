"""How long one tenant's `?wait=true` write takes behind another tenant's 5,000 messages waiting
to be embedded: the real server, default settings, before and after fair claims, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/queue_fairness.py --before-ref 5ac6443   # about 5 minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/queue_fairness.py                        # this checkout only

For each code (before: the tree of --before-ref, exported with `git archive` and put first on
PYTHONPATH, so that the installed `memorymesh` runs it; after: this checkout), --runs times:

1. Starts `memorymesh serve` with default settings (embedded PostgreSQL, two in-process
   embedding workers, batches of 256, the bundled all-MiniLM-L6-v2, a `?wait=true` of at most
   10 s) in a fresh temporary directory, with a key for each of two tenants and an admin key.
2. Tenant "busy" posts ten batches of 500 messages (POST /v1/messages/batch, no wait), one
   after the other: 5,000 messages to embed.
3. Tenant "quiet" posts one message with `?wait=true`: the answer's status and
   embedding_status, and how long it took.
4. Then reads quiet's message (GET) every 50 ms until it is embedded (within --bound
   seconds): the time from its POST to embedded, and what GET /v1/admin/queue said then
   (busy's messages still pending), and how many messages per second the workers had
   embedded since busy's first batch (the machine's pace: the figures scale with it).
5. Stops the server (SIGTERM). One that has not exited a minute later is killed, its
   embedded PostgreSQL stopped by the bench, the end of its output printed, and the run's
   row says so.

Writes bench/results/queue_fairness.md. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import RESULTS, ROOT, ServerProcess, machine, postgres_running_on, wait_until

ADMIN_KEY = "bench-fairness-admin-key-01"
BUSY_KEY, QUIET_KEY = "bench-fairness-busy-key-001", "bench-fairness-quiet-key-01"
BATCHES, BATCH_SIZE = 10, 500


@dataclass
class Run:
    code: str
    posting_seconds: float  # busy's ten batches
    wait_status: int
    wait_embedding_status: str
    wait_seconds: float
    embedded_after: float | None  # from quiet's POST to its message embedded; None: not within the bound
    busy_pending: int | None  # GET /v1/admin/queue's pending then
    pace: float | None  # messages embedded per second since busy's first batch
    stopped: bool  # exited within a minute of SIGTERM


def batch(n: int) -> dict:
    return {
        "messages": [
            {
                "tenant_id": "busy",
                "conversation_id": f"import-{n}",
                "role": "user",
                "content": f"Imported note {n}-{i}: the quarterly report mentions item {i} of batch {n}.",
            }
            for i in range(BATCH_SIZE)
        ]
    }


def one_run(code: str, pythonpath: str | None, bound: float) -> Run:
    env = {"MEMORY_API_KEYS": f"{BUSY_KEY}:busy,{QUIET_KEY}:quiet", "MEMORY_ADMIN_API_KEYS": ADMIN_KEY}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory(prefix="memorymesh-bench-fairness-") as scratch:
        server = ServerProcess(Path(scratch) / "data", **env).start()
        try:
            server.wait_ready()
            with server.client(BUSY_KEY) as busy, server.client(QUIET_KEY) as quiet, server.client(ADMIN_KEY) as admin:
                began = time.monotonic()
                for n in range(BATCHES):
                    busy.post("/v1/messages/batch", json=batch(n)).raise_for_status()
                posted = time.monotonic()
                mine = {"tenant_id": "quiet", "conversation_id": "c", "role": "user", "content": "My flight is at 9."}
                answer = quiet.post("/v1/messages", params={"wait": "true"}, json=mine)
                answered = time.monotonic()
                message = answer.json()
                embedded_after = busy_pending = pace = None
                while time.monotonic() - posted < bound:
                    got = quiet.get(f"/v1/messages/{message['id']}", params={"tenant_id": "quiet"}).json()
                    if got["embedding_status"] == "embedded":
                        embedded_after = time.monotonic() - posted
                        queue = admin.get("/v1/admin/queue").json()
                        busy_pending = queue["pending"]
                        done = BATCHES * BATCH_SIZE + 1 - queue["pending"] - queue["claimed"]
                        pace = done / (time.monotonic() - began)
                        break
                    time.sleep(0.05)
        finally:
            stopped = stop(server)
    run = Run(
        code,
        posted - began,
        answer.status_code,
        message["embedding_status"],
        answered - posted,
        embedded_after,
        busy_pending,
        pace,
        stopped,
    )
    print(run, flush=True)
    return run


def stop(server: ServerProcess) -> bool:
    """SIGTERM, as an operator stops it. A server still there a minute later is killed, and its
    embedded PostgreSQL, which would outlive the bench, stopped here."""
    try:
        server.stop()
        return True
    except subprocess.TimeoutExpired:
        print("the server did not stop within 60 s of SIGTERM; its output ends:", *server.lines[-40:], sep="\n")
        pgdata = server.data_dir / "pg"
        if postgres_running_on(pgdata):
            os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGTERM)
            wait_until(lambda: not postgres_running_on(pgdata), 60, "the embedded PostgreSQL stopped")
        return False


def exported(ref: str, into: Path) -> Path:
    """The tree of `ref`, as files under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def report(args: argparse.Namespace, runs: list[Run]) -> str:
    command = "HF_HUB_OFFLINE=1 .venv/bin/python bench/queue_fairness.py" + (
        f" --before-ref {args.before_ref}" if args.before_ref else ""
    )
    command += f" --runs {args.runs}" if args.runs != 1 else ""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    lines = [
        "# One tenant's `?wait=true` write behind another tenant's 5,000 messages",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine()}; load average "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (the machine is shared).",
        "",
        f"`memorymesh serve` with default settings. Tenant busy posts {BATCHES} batches of {BATCH_SIZE} (no wait), "
        "then tenant quiet posts one message with `?wait=true` (MEMORY_EMBEDDING_WAIT_SECONDS: 10). Before: "
        f"{args.before_ref or '(not run)'}, claims oldest first across tenants. After: "
        f"{head.stdout.strip()}, claims round-robin across tenants.",
        "",
        "| code | busy's batches posted in s | quiet's `?wait=true` answer | quiet's message embedded after s "
        "| busy's messages pending then | embedded/s since busy's first batch | stopped within 60 s of SIGTERM |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in runs:
        embedded = f"{r.embedded_after:.1f}" if r.embedded_after is not None else f"not within {args.bound:.0f}"
        pending = f"{r.busy_pending:,}" if r.busy_pending is not None else "–"
        pace = f"{r.pace:.0f}" if r.pace is not None else "–"
        lines.append(
            f"| {r.code} | {r.posting_seconds:.1f} | {r.wait_status} {r.wait_embedding_status} after "
            f"{r.wait_seconds:.1f} s | {embedded} | {pending} | {pace} | {'yes' if r.stopped else 'NO: killed'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-ref", help="the git ref of the code to compare with (e.g. the commit before)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--bound", type=float, default=600.0, help="longest wait for quiet's message, s")
    parser.add_argument("--out", type=Path, default=RESULTS / "queue_fairness.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    runs = []
    with tempfile.TemporaryDirectory(prefix="memorymesh-bench-before-") as before_tree:
        codes = [("after", None)]
        if args.before_ref:
            codes.insert(0, ("before", str(exported(args.before_ref, Path(before_tree)))))
        for _ in range(args.runs):
            for code, pythonpath in codes:
                runs.append(one_run(code, pythonpath, args.bound))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(args, runs))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
