"""The session's own check (tests/leftovers.py) finds what a test leaves running: a child of
pytest, and a detached PostgreSQL working in the session's directory."""

import shutil
import subprocess
import time
from pathlib import Path

import psutil

from tests.leftovers import leftovers, stop


def test_a_child_left_running_is_found_and_stopped(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert child.pid in {p.pid for p in leftovers(tmp_path)}
        stop([psutil.Process(child.pid)])
        child.wait(10)
    finally:
        child.kill()
    assert child.pid not in {p.pid for p in leftovers(tmp_path)}


def test_a_detached_postgres_in_the_session_directory_is_found(tmp_path: Path) -> None:
    postgres = tmp_path / "postgres"  # a stand-in by that name, as pg_ctl starts it: detached
    shutil.copy(shutil.which("sleep") or "/bin/sleep", postgres)
    subprocess.run(["sh", "-c", "./postgres 60 > /dev/null 2>&1 &"], cwd=tmp_path, check=True)

    deadline = time.monotonic() + 5
    while not (found := [p for p in leftovers(tmp_path) if p.name() == "postgres"]):
        assert time.monotonic() < deadline, "the detached postgres was not found"
        time.sleep(0.05)
    (stand_in,) = found
    assert stand_in.ppid() != psutil.Process().pid  # no child of pytest's
    assert stand_in.pid not in {p.pid for p in leftovers(tmp_path / "elsewhere")}  # another session's
    stop([stand_in])
    assert stand_in.pid not in {p.pid for p in leftovers(tmp_path)}
