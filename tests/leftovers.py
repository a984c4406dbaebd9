"""Processes a test session leaves behind: what tests/conftest.py checks after the last test.

Two kinds: any process still running below pytest's own (servers, workers, redis-server), and
any PostgreSQL whose data directory lies in the session's temporary directory, which pg_ctl
starts detached, so it is no child of pytest (a server restarted by a test was once found
running long after the suite ended).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import psutil


def leftovers(session_dir: Path) -> list[psutil.Process]:
    """The top processes still running that this session started (their children go with them)."""
    found = {p.pid: p for p in psutil.Process().children(recursive=True) if _running(p)}
    for process in psutil.process_iter(["name", "cwd"]):
        cwd = process.info["cwd"]  # a postgres process works in its data directory
        if process.info["name"] == "postgres" and cwd and Path(cwd).is_relative_to(session_dir) and _running(process):
            found[process.pid] = process
    return [p for p in found.values() if _parent_pid(p) not in found]


def still_left(session_dir: Path, bound_seconds: float) -> list[psutil.Process]:
    """The leftovers once those on their way out have had `bound_seconds` to go."""
    deadline = time.monotonic() + bound_seconds
    while (left := leftovers(session_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid} in {process.cwd()}: {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {process.pid} (gone meanwhile)"


def stop(processes: list[psutil.Process]) -> None:
    """Terminate them, then kill what is still there after ten seconds."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, or not ours to look at
        return False


def _parent_pid(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:
        return None
