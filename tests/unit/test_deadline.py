"""A request still unanswered at its deadline gets 504 deadline_exceeded; its work goes on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import Settings
from entrypoints.http.deadline import Deadline


class Slow:
    """An ASGI app that answers 200 after `seconds`, and says when its work ended."""

    def __init__(self, seconds: float, stream: bool = False) -> None:
        self.seconds = seconds
        self.stream = stream
        self.finished = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.stream:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(self.seconds)
        self.finished.set()
        if not self.stream:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done", "more_body": False})


async def call(
    app: Any, seconds: float, path: str = "/v1/memory/search", middleware: Deadline | None = None
) -> tuple[list[dict[str, Any]], int]:
    sent: list[dict[str, Any]] = []
    expired: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = middleware or Deadline(app, seconds, exempt=("/metrics",), on_expired=lambda: expired.append(1))
    await middleware({"type": "http", "method": "GET", "path": path}, None, send)  # type: ignore[arg-type]
    return sent, len(expired)


async def test_a_request_past_its_deadline_is_answered_504_and_its_work_goes_on(caplog):
    app = Slow(0.3)
    expired_count: list[int] = []
    middleware = Deadline(app, 0.05, exempt=(), on_expired=lambda: expired_count.append(1))
    with caplog.at_level("WARNING"):
        sent, _ = await call(app, 0.05, middleware=middleware)
    expired = len(expired_count)
    assert not app.finished.is_set()  # answered at once: the work goes on apart from the exchange
    await middleware.finish_late_work(5)  # what a stopping server waits for before its services stop
    assert app.finished.is_set()
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]  # the late 200 is dropped
    assert sent[0]["status"] == 504
    assert json.loads(sent[1]["body"])["code"] == "deadline_exceeded"
    assert expired == 1
    assert [r.getMessage() for r in caplog.records] == ["request past its deadline"]


async def test_a_request_answered_in_time_is_untouched():
    sent, expired = await call(Slow(0.01), 5)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"done" and expired == 0


async def test_an_answer_already_started_is_not_cut():
    sent, expired = await call(Slow(0.2, stream=True), 0.05)
    assert [m.get("status") for m in sent] == [200, None] and sent[1]["body"] == b"done" and expired == 0


async def test_exempt_paths_have_no_deadline():
    sent, expired = await call(Slow(0.1), 0.01, path="/metrics")
    assert sent[0]["status"] == 200 and expired == 0


async def test_late_work_is_not_cut_off_when_the_server_then_stops_the_request():
    """Once the deadline has answered, the server cancelling the request (a graceful stop
    running out) leaves the work alone: a write it carries is stored."""
    app = Slow(0.3)
    middleware = Deadline(app, 0.05, exempt=(), on_expired=lambda: None)
    task = asyncio.create_task(call(app, 0.05, middleware=middleware))
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await middleware.finish_late_work(5)
    assert app.finished.is_set()


async def test_the_work_is_cancelled_when_the_server_stops_the_request():
    app = Slow(60)
    task = asyncio.create_task(call(app, 30))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not app.finished.is_set()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MEMORY_HTTP_REQUEST_DEADLINE_SECONDS": "30"}, "MEMORY_HTTP_READ_TIMEOUT_SECONDS"),
        ({"MEMORY_HTTP_READ_TIMEOUT_SECONDS": "20"}, "MEMORY_HTTP_READ_TIMEOUT_SECONDS"),
        ({"MEMORY_EMBEDDING_WAIT_SECONDS": "60"}, "MEMORY_EMBEDDING_WAIT_SECONDS"),
        ({"MEMORY_EMBEDDING_WAIT_SECONDS": "25"}, "MEMORY_EMBEDDING_WAIT_SECONDS"),
    ],
)
def test_settings_that_cannot_work_together_are_refused(monkeypatch, env, named):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=named):
        Settings(_env_file=None)


def test_the_defaults_fit_together():
    settings = Settings(_env_file=None)
    assert settings.embedding_wait_seconds < settings.http_request_deadline_seconds < settings.http_read_timeout_seconds
