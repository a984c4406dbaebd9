"""`memorymesh worker`: an arq worker that embeds pending messages (entrypoints/worker.py)."""

from __future__ import annotations

import argparse

from config.logging import configure_logging
from entrypoints.cli.common import STARTUP_ERRORS, Refused, load_settings, refusing


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("worker", help="run an arq worker that embeds pending messages")
    parser.set_defaults(run=worker)


async def worker(args: argparse.Namespace) -> None:
    from entrypoints.worker import run_worker

    settings = load_settings()
    configure_logging(settings.log_level)
    if settings.queue != "arq":
        raise Refused(
            "memorymesh: a worker takes its jobs from Redis: set MEMORY_QUEUE=arq (and MEMORY_REDIS_URL) "
            "for the API and its workers; with MEMORY_QUEUE=inprocess the API embeds by itself"
        )
    from config.tracing import configure_tracing

    tracing = configure_tracing(settings, "memorymesh-worker")
    try:
        with refusing(*STARTUP_ERRORS, prefix="cannot start the worker: "):
            await run_worker(settings)
    finally:
        if tracing is not None:
            tracing.shutdown()
