"""What one API process costs to start and to keep: this build beside another checkout's
(`--baseline`), alternating, each on a data dir of its own made by a first start (not measured).

Per start: seconds from exec to a ready answer (GET /v1/admin/readiness 200), and the
process's RSS once it has stored a message and answered a search (the model loaded and run).

    .venv/bin/python bench/footprint.py --baseline /work/wt-old/.venv/bin/python [--rounds 3]

Figures go to bench/results/footprint.md; they are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from harness import MEMORYMESH, RESULTS, ServerProcess, launcher, machine

KEY = "bench-admin-key-0000000000"


def one_start(data_dir: Path, executable: Path) -> tuple[float, float]:
    """Seconds to ready, and RSS (MiB) after a write and a search."""
    started = time.monotonic()
    server = ServerProcess(data_dir, executable=executable, MEMORY_ADMIN_API_KEYS=KEY).start()
    try:
        with httpx.Client(base_url=server.url, headers={"x-api-key": KEY}, timeout=60) as client:
            while True:
                try:
                    if client.get("/v1/admin/readiness").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            ready = time.monotonic() - started
            body = {"tenant_id": "t", "conversation_id": "c", "role": "user", "content": "The ferry leaves at nine."}
            client.post("/v1/messages", params={"wait": "true"}, json=body).raise_for_status()
            client.get("/v1/memory/search", params={"tenant_id": "t", "query": "boat times"}).raise_for_status()
        assert server.process is not None
        rss = psutil.Process(server.process.pid).memory_info().rss / 2**20
    finally:
        server.stop()
    return ready, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout's python: measured beside this build")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "footprint.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memorymesh-footprint-") as tmp:
        builds = {"this build": (MEMORYMESH, Path(tmp) / "new")}
        if args.baseline:
            builds["baseline"] = (launcher(args.baseline, Path(tmp)), Path(tmp) / "old")
        for executable, data_dir in builds.values():
            one_start(data_dir, executable)  # makes the data dir (initdb, migrations): not measured
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in builds}
        for _ in range(args.rounds):
            for name, (executable, data_dir) in builds.items():
                measured[name].append(one_start(data_dir, executable))
    lines = [
        "# One API process: start and memory",
        "",
        f"`.venv/bin/python bench/footprint.py {' '.join(sys.argv[1:])}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}; "
        f"median of {args.rounds} starts per build, alternating, each on its own data dir made by a first start.",
        "",
        "| build | start to ready, s | RSS after a write and a search, MiB |",
        "|---|---:|---:|",
    ]
    for name, runs in measured.items():
        lines.append(
            f"| {name} | {statistics.median(r[0] for r in runs):.1f} | {statistics.median(r[1] for r in runs):.0f} |"
        )
    lines.append(f"\nPython {platform.python_version()}.")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
