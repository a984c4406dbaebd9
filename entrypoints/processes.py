"""`memorymesh serve` with MEMORY_PROCESSES > 1: several API processes on one port.

One Python process tops out at one core, and request handling is mostly Python. This
starts PostgreSQL once (when it is the embedded one), then N copies of `memorymesh
serve`, each binding the same port with SO_REUSEPORT so the kernel spreads connections
across them. Signals are passed on; when one copy exits the others are stopped, so a
supervisor (systemd, Docker, Kubernetes) sees the failure and restarts the whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile

from config.container import Container, running
from config.settings import Settings

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0


def child_env(settings: Settings, url: str, processes: int, metrics_dir: str) -> dict[str, str]:
    env = {
        **os.environ,
        # prometheus-client's multiprocess mode: each copy writes its metrics here, and the
        # copy that serves a scrape answers for all of them.
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "MEMORY_HOST": settings.host,
        "MEMORY_PORT": str(settings.port),
        "MEMORY_PROCESSES": "1",
        "MEMORY_REUSE_PORT": "true",
        "MEMORY_DATABASE_URL": url,  # the embedded server is started once, here, for all the copies
    }
    share = str(max(1, (os.cpu_count() or 1) // processes))
    if not settings.embedding_threads:  # share the cores out instead of oversubscribing them
        env["MEMORY_EMBEDDING_THREADS"] = share
    if "embedding_onnx_threads" not in settings.model_fields_set:  # its default (2) is one process's
        env["MEMORY_EMBEDDING_ONNX_THREADS"] = share
    return env


async def supervise(settings: Settings) -> int:
    """Run `settings.processes` API processes until a signal or until one of them exits."""
    if not settings.redis_url and (settings.global_rate_limit or settings.tenant_rate_limit):
        logger.warning(
            "rate limits are kept per process without MEMORY_REDIS_URL: each of the processes allows the full limit",
            extra={"processes": settings.processes},
        )
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory(prefix="memorymesh-metrics-") as metrics_dir:
        return await run_copies(settings, stop, metrics_dir)


async def run_copies(settings: Settings, stop: asyncio.Event, metrics_dir: str) -> int:
    async with running(settings, Container.database_server) as container:
        url = container.database_server()
        env = child_env(settings, url, settings.processes, metrics_dir)
        children = [
            await asyncio.create_subprocess_exec(sys.executable, "-m", "entrypoints.cli", "serve", env=env)
            for _ in range(settings.processes)
        ]
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        logger.info("api processes started", extra={"pids": [c.pid for c in children]})
        waits = [asyncio.ensure_future(c.wait()) for c in children]
        signalled = asyncio.ensure_future(stop.wait())
        await asyncio.wait([signalled, *waits], return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        _, still_running = await asyncio.wait(waits, timeout=STOP_TIMEOUT_SECONDS)
        for child in children:
            if child.returncode is None:
                child.kill()
        await asyncio.gather(*still_running)
    codes = [c.returncode if c.returncode is not None else -signal.SIGKILL for c in children]
    if stop.is_set():  # a copy still starting up when the signal came dies of it: that is an orderly stop too
        codes = [0 if code == -signal.SIGTERM else code for code in codes]
        return 0 if all(code == 0 for code in codes) else max(abs(code) for code in codes)
    return max((abs(code) for code in codes), default=1) or 1
