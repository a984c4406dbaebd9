"""Load shedding: at most `limit` requests in flight, `limit` more waiting, the rest 503 at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from entrypoints.http.admission import Admission, LoadShedding, caller


class Gate:
    """An ASGI app whose requests answer 200 only when the test lets them through."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.entered += 1
        await self.open.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Shedding:
    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.app = Gate()
        self.counts: list[int] = []
        self.shed = 0
        self.middleware = LoadShedding(
            self.app,
            Admission(limit, wait_seconds),
            exempt=("/health",),
            on_change=self.counts.append,
            on_shed=self._on_shed,
        )

    def _on_shed(self) -> None:
        self.shed += 1

    async def request(self, path: str = "/v1/search", key: str = "k1") -> dict[str, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "path": path, "headers": [(b"x-api-key", key.encode())]}
        await self.middleware(scope, receive, send)
        start = sent[0]
        return {
            "status": start["status"],
            "headers": dict(start["headers"]),
            "body": b"".join(m.get("body", b"") for m in sent[1:]),
        }


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_request_past_the_limit_and_the_queue_is_refused_at_once_with_retry_after() -> None:
    s = Shedding(limit=2, wait_seconds=60)
    tasks = [asyncio.create_task(s.request()) for _ in range(4)]  # 2 in flight, 2 waiting
    await settle()
    assert s.app.entered == 2

    refused = await asyncio.wait_for(s.request(), 1)  # the fifth does not wait its 60 s

    assert refused["status"] == 503
    assert refused["headers"][b"retry-after"] == b"2"
    assert refused["headers"][b"content-type"] == b"application/problem+json"
    problem = json.loads(refused["body"])
    assert problem["code"] == "overloaded" and problem["status"] == 503
    assert s.shed == 1 and s.app.entered == 2
    s.app.open.set()
    assert [r["status"] for r in await asyncio.gather(*tasks)] == [200] * 4
    assert s.app.entered == 4


async def test_a_waiting_request_is_shed_when_no_slot_frees_within_the_wait() -> None:
    s = Shedding(limit=1, wait_seconds=0.05)
    first = asyncio.create_task(s.request())
    await settle()

    waited = await s.request()

    assert waited["status"] == 503 and s.shed == 1
    s.app.open.set()
    assert (await first)["status"] == 200


async def test_a_waiting_request_takes_the_slot_a_finished_one_frees() -> None:
    s = Shedding(limit=1, wait_seconds=60)
    first = asyncio.create_task(s.request())
    await settle()
    second = asyncio.create_task(s.request())
    await settle()
    assert s.app.entered == 1

    s.app.open.set()

    assert [(await first)["status"], (await second)["status"]] == [200, 200]
    assert s.shed == 0
    assert max(s.counts) == 1 and s.counts[-1] == 0  # never two in flight (the slot is handed over)
    assert s.middleware.admission.in_flight == 0


async def test_a_waiting_request_whose_task_is_cancelled_gives_up_its_place() -> None:
    s = Shedding(limit=1, wait_seconds=60)
    first = asyncio.create_task(s.request())
    await settle()
    waiting = asyncio.create_task(s.request())
    await settle()

    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)

    admission = s.middleware.admission
    assert admission.waiting == 0 and admission.in_flight == 1
    s.app.open.set()
    assert (await first)["status"] == 200
    assert (await s.request())["status"] == 200  # the slot is free again, not held by the cancelled one
    assert admission.in_flight == 0


async def test_without_a_wait_a_request_finding_every_slot_busy_is_shed() -> None:
    s = Shedding(limit=1, wait_seconds=0)
    first = asyncio.create_task(s.request())
    await settle()

    assert (await s.request())["status"] == 503
    s.app.open.set()
    await first


async def test_probes_pass_however_full_the_process_is() -> None:
    s = Shedding(limit=1, wait_seconds=0)
    first = asyncio.create_task(s.request())
    await settle()
    s.app.open.set()  # the probe goes straight to the app, which now answers

    assert (await s.request("/health"))["status"] == 200
    assert s.shed == 0
    await first


async def test_a_slot_is_given_back_when_the_app_raises() -> None:
    admission = Admission(1, wait_seconds=0)

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    middleware = LoadShedding(broken, admission, exempt=(), on_change=lambda _: None, on_shed=lambda: None)
    with pytest.raises(RuntimeError):
        await middleware({"type": "http", "path": "/"}, None, None)  # type: ignore[arg-type]

    assert admission.in_flight == 0
    assert await admission.enter()


async def test_one_callers_flood_cannot_keep_another_caller_out() -> None:
    """Caller A fills every slot and the waiting room; B still gets a place, and the next free slot."""
    s = Shedding(limit=2, wait_seconds=60)
    flood = [asyncio.create_task(s.request(key="a")) for _ in range(4)]  # 2 in flight, 2 waiting
    await settle()
    assert s.middleware.admission.held("a") == 4

    other = asyncio.create_task(s.request(key="b"))  # takes the place of A's last waiter
    await settle()
    assert s.shed == 1 and s.middleware.admission.held("b") == 1
    assert (await asyncio.wait_for(asyncio.gather(*flood[3:]), 1))[0]["status"] == 503

    assert (await s.request(key="a"))["status"] == 503  # A may not push B out again
    order: list[str] = []
    s.app.open.set()
    for name, task in [("b", other), *(("a", t) for t in flood[:3])]:
        task.add_done_callback(lambda _, name=name: order.append(name))
    await asyncio.gather(other, *flood[:3])
    assert order.index("b") <= 2  # B's request went in with the first freed slot, before A's waiter


async def test_a_caller_alone_may_use_every_slot() -> None:
    s = Shedding(limit=3, wait_seconds=60)
    tasks = [asyncio.create_task(s.request(key="a")) for _ in range(6)]
    await settle()
    assert s.app.entered == 3 and s.middleware.admission.waiting == 3 and s.shed == 0
    s.app.open.set()
    assert [r["status"] for r in await asyncio.gather(*tasks)] == [200] * 6


def test_the_caller_is_the_key_as_sent_in_x_api_key_or_as_a_bearer_token() -> None:
    assert caller({"type": "http", "headers": [(b"x-api-key", b"k1"), (b"authorization", b"Bearer k2")]}) == "k1"
    assert caller({"type": "http", "headers": [(b"authorization", b"Bearer k2")]}) == "Bearer k2"
    assert caller({"type": "http", "headers": []}) == ""
