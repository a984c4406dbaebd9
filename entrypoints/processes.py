"""`memorymesh serve` with MEMORY_PROCESSES > 1: several API processes on one port.

One Python process tops out at one core, and request handling is mostly Python. This
starts PostgreSQL once (when it is the embedded one), then N copies of `memorymesh
serve`, each binding the same port with SO_REUSEPORT so the kernel spreads connections
across them. Signals are passed on; when one copy exits the others are stopped, so a
supervisor (systemd, Docker, Kubernetes) sees the failure and restarts the whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import FrameType

from adapters.postgres.database import EmbeddedPostgres
from config.settings import Settings

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str | None]:
    """The configured URL, or that of the embedded server, started here for all the copies."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir.resolve() / "pg")
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


def child_env(settings: Settings, url: str | None, processes: int) -> dict[str, str]:
    env = {
        **os.environ,
        "MEMORY_HOST": settings.host,
        "MEMORY_PORT": str(settings.port),
        "MEMORY_PROCESSES": "1",
        "MEMORY_REUSE_PORT": "true",
    }
    if url:
        env["MEMORY_DATABASE_URL"] = url
    if not settings.embedding_threads:  # share the cores out instead of oversubscribing them
        env["MEMORY_EMBEDDING_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    return env


def serve_processes(settings: Settings) -> int:
    """Run `settings.processes` API processes until a signal or until one of them exits."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    if not settings.redis_url and (settings.global_rate_limit or settings.tenant_rate_limit):
        logger.warning(
            "rate limits are kept per process without MEMORY_REDIS_URL: each of the processes allows the full limit",
            extra={"processes": settings.processes},
        )
    with database_url(settings) as url:
        env = child_env(settings, url, settings.processes)
        command = [sys.executable, "-m", "entrypoints.cli", "serve"]
        children = [subprocess.Popen(command, env=env) for _ in range(settings.processes)]
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        logger.info("api processes started", extra={"pids": [c.pid for c in children]})
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    codes = [c.returncode for c in children]
    if stopping:  # a copy still starting up when the signal came dies of it: that is an orderly stop too
        codes = [0 if code == -signal.SIGTERM else code for code in codes]
        return 0 if all(code == 0 for code in codes) else max(abs(code) for code in codes)
    return max((abs(code) for code in codes), default=1) or 1
