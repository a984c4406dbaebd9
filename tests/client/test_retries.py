"""The client's retry rules, against httpx's mock transport: nothing sleeps for real (the
sleep and the clock are the test's), and every answer is scripted."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator

import httpx
import pytest
from memorymesh_client import (
    AsyncMemoryMesh,
    Conflict,
    MemoryMesh,
    MemoryMeshError,
    NotFound,
    Overloaded,
    RateLimited,
    Retries,
    ServerError,
    Unreachable,
    ValidationError,
)

Answer = httpx.Response | Exception
MESSAGE = {"id": "m-1", "tenant_id": "acme", "conversation_id": "c", "role": "user", "content": "hi"}


def problem(status: int, code: str, headers: dict[str, str] | None = None, **extra: object) -> httpx.Response:
    body = {"type": f"urn:memorymesh:problem:{code}", "status": status, "code": code, "detail": code, **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json", **(headers or {})})


class Script:
    """Answers requests in order (the last one again once the script runs out) and keeps them."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    """A clock that moves only when the client sleeps; the sleeps are kept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def highest(low: float, high: float) -> float:
    return high


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> Iterator[Callable[..., tuple[MemoryMesh, Script]]]:
    made: list[MemoryMesh] = []

    def make(*answers: Answer, retries: Retries | None = None) -> tuple[MemoryMesh, Script]:
        script = Script(*answers)
        memory = MemoryMesh(
            "http://memory.test",
            "key",
            transport=httpx.MockTransport(script),
            retries=retries or Retries(uniform=highest),
            sleep=clock.sleep,
            clock=clock,
        )
        made.append(memory)
        return memory, script

    yield make
    for memory in made:
        memory.close()


def test_backoff_is_full_jitter_under_an_exponential_ceiling_and_the_cap() -> None:
    ceiling = Retries(base_seconds=0.5, cap_seconds=20, uniform=highest)
    assert [ceiling.backoff(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 20, 20]
    assert [Retries(uniform=lambda low, high: low).backoff(n) for n in range(8)] == [0] * 8
    jittered = Retries(base_seconds=0.5, cap_seconds=20, uniform=random.Random(7).uniform)
    for attempt in range(12):
        draws = [jittered.backoff(attempt) for _ in range(200)]
        bound = min(20, 0.5 * 2**attempt)
        assert all(0 <= d <= bound for d in draws)
        assert max(draws) > bound / 2 and min(draws) < bound / 2  # spread over the range, not a fixed wait
    assert ceiling.backoff(5000) == 20  # no overflow on a long run


def test_a_503_is_retried_with_growing_sleeps_until_it_succeeds(client, clock: Clock) -> None:
    memory, script = client(problem(503, "overloaded"), problem(503, "overloaded"), httpx.Response(200, json=MESSAGE))
    assert memory.get_message("acme", "m-1") == MESSAGE
    assert len(script.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_retry_after_is_a_floor_never_a_ceiling(client, clock: Clock) -> None:
    memory, _ = client(
        problem(429, "rate_limited", {"Retry-After": "7"}),
        problem(503, "overloaded", {"Retry-After": "0"}),
        httpx.Response(200, json=MESSAGE),
    )
    memory.get_message("acme", "m-1")
    assert clock.sleeps == [7.5, 1.0]  # the jitter (at its ceiling here: 0.5, then 1.0) on top of the floor


def test_clients_refused_with_the_same_retry_after_come_back_spread_out() -> None:
    retries = Retries(uniform=random.Random(3).uniform)
    sleeps = [retries.delay(0, 0.0, 2.0) for _ in range(160)]
    assert all(2.0 <= s <= 2.5 for s in sleeps)  # never sooner than asked
    assert len({round(s, 2) for s in sleeps}) > 40  # not one instant: the herd the overload bench saw


def test_it_gives_up_after_the_attempt_bound_with_the_last_problem(client, clock: Clock) -> None:
    memory, script = client(problem(503, "storage_unavailable", {"Retry-After": "1"}))
    with pytest.raises(Overloaded) as raised:
        memory.get_message("acme", "m-1")
    assert len(script.requests) == 5 and len(clock.sleeps) == 4
    assert raised.value.status == 503 and raised.value.code == "storage_unavailable"
    assert raised.value.retry_after == 1


def test_it_gives_up_rather_than_sleep_past_the_total_time(client, clock: Clock) -> None:
    memory, script = client(
        problem(429, "rate_limited", {"Retry-After": "25", "RateLimit-Reset": "40"}),
        retries=Retries(attempts=10, total_seconds=60, uniform=highest),
    )
    with pytest.raises(RateLimited) as raised:
        memory.search("acme", "peanuts")
    assert clock.sleeps == [25.5, 26.0]  # the floor plus the jitter; a third sleep (27 s) would end past 60 s
    assert len(script.requests) == 3
    assert raised.value.retry_after == 25 and raised.value.reset == 40 and raised.value.code == "rate_limited"


def test_a_single_write_keeps_one_idempotency_key_across_its_retries(client) -> None:
    memory, script = client(
        problem(503, "overloaded"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("no answer"),
        httpx.Response(202, json=MESSAGE),
    )
    assert memory.store_message("acme", "c", "user", "hi") == MESSAGE
    keys = [request.headers["Idempotency-Key"] for request in script.requests]
    assert len(keys) == 4 and len(set(keys)) == 1
    assert len({request.content for request in script.requests}) == 1
    memory.store_message("acme", "c", "user", "hi again")
    assert script.requests[-1].headers["Idempotency-Key"] != keys[0]  # a new write, a new key


def test_a_write_with_its_own_client_message_id_sends_it_as_the_key(client) -> None:
    memory, script = client(httpx.Response(202, json=MESSAGE))
    memory.store_message("acme", "c", "user", "hi", client_message_id="turn-1")
    assert script.requests[0].headers["Idempotency-Key"] == "turn-1"
    assert json.loads(script.requests[0].content)["client_message_id"] == "turn-1"


def test_each_batch_message_without_an_id_is_given_one_kept_across_retries(client) -> None:
    memory, script = client(problem(503, "overloaded"), httpx.Response(202, json={"messages": [MESSAGE, MESSAGE]}))
    memory.store_messages(
        [
            {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": "one"},
            {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": "two", "client_message_id": "t2"},
        ]
    )
    first, second = (json.loads(request.content)["messages"] for request in script.requests)
    assert first == second
    assert first[1]["client_message_id"] == "t2" and first[0]["client_message_id"] not in (None, "t2")
    assert "Idempotency-Key" not in script.requests[0].headers  # the service refuses it on a batch


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (problem(422, "validation_failed", errors=[{"field": "role", "message": "must be one of"}]), ValidationError),
        (problem(404, "not_found"), NotFound),
        (problem(409, "idempotency_conflict"), Conflict),
    ],
)
def test_a_4xx_other_than_429_is_raised_at_once(client, clock: Clock, answer: httpx.Response, error: type) -> None:
    memory, script = client(answer, httpx.Response(202, json=MESSAGE))
    with pytest.raises(error) as raised:
        memory.store_message("acme", "c", "user", "hi")
    assert len(script.requests) == 1 and clock.sleeps == []
    assert raised.value.status == answer.status_code
    if error is ValidationError:
        assert raised.value.fields == {"role": "must be one of"}


def test_a_write_that_is_unsafe_to_repeat_is_retried_only_when_nothing_was_done(client) -> None:
    created = httpx.Response(201, json={"id": "k1", "key": "mm_x"})
    memory, script = client(httpx.ConnectError("refused"), problem(503, "overloaded"), created)
    assert memory.create_api_key("bot", ["acme"])["id"] == "k1"  # never sent, then shed: retried
    assert len(script.requests) == 3

    memory, script = client(httpx.ReadTimeout("sent, no answer"), created)
    with pytest.raises(Unreachable):
        memory.create_api_key("bot", ["acme"])  # it may have made a key: not made twice
    memory, script = client(problem(503, "storage_unavailable"), created)
    with pytest.raises(Overloaded):
        memory.create_api_key("bot", ["acme"])
    assert len(script.requests) == 1


def test_no_answer_at_all_is_unreachable_after_the_bound(client, clock: Clock) -> None:
    memory, script = client(httpx.ConnectError("refused"), retries=Retries(attempts=3, uniform=highest))
    with pytest.raises(Unreachable) as raised:
        memory.health()
    assert len(script.requests) == 3 and clock.sleeps == [0.5, 1.0]
    assert raised.value.status is None and "ConnectError" in raised.value.detail


def test_retry_after_as_an_http_date_is_read() -> None:
    response = problem(503, "overloaded", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert Retries(uniform=highest).after_response(response, True, 0, 0) == pytest.approx(0.5)


async def test_the_async_client_follows_the_same_rules(clock: Clock) -> None:
    script = Script(
        problem(429, "tenant_busy", {"Retry-After": "3"}),
        httpx.ConnectError("refused"),
        httpx.Response(202, json=MESSAGE),
    )
    async with AsyncMemoryMesh(
        "http://memory.test",
        "key",
        transport=httpx.MockTransport(script),
        retries=Retries(uniform=highest),
        sleep=clock.asleep,
        clock=clock,
    ) as memory:
        assert await memory.store_message("acme", "c", "user", "hi") == MESSAGE
        assert clock.sleeps == [3.5, 1.0]
        assert len({request.headers["Idempotency-Key"] for request in script.requests}) == 1
        script.answers = [problem(422, "validation_failed")]
        with pytest.raises(ValidationError):
            await memory.search("acme", "x")
        assert len(script.requests) == 4


def test_a_504_is_retried_only_for_a_call_safe_to_repeat(client) -> None:
    memory, script = client(problem(504, "deadline_exceeded"), httpx.Response(202, json=MESSAGE))
    memory.store_message("acme", "c", "user", "hi")  # its Idempotency-Key makes the repeat safe
    assert len(script.requests) == 2
    memory, script = client(problem(504, "deadline_exceeded"), httpx.Response(201, json={"id": "k1"}))
    with pytest.raises(ServerError) as raised:
        memory.create_api_key("bot", ["acme"])  # the key may have been made
    assert len(script.requests) == 1 and raised.value.code == "deadline_exceeded"


def test_url_and_key_come_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(200, json={"status": "ok"}))
    monkeypatch.setenv("MEMORY_URL", "http://from-env.test:9000/")
    monkeypatch.setenv("MEMORY_API_KEY", "env-key")
    with MemoryMesh(transport=httpx.MockTransport(script)) as memory:
        memory.health()
    with MemoryMesh("http://given.test", "given-key", transport=httpx.MockTransport(script)) as memory:
        memory.health()
    assert [str(r.url) for r in script.requests] == [
        "http://from-env.test:9000/v1/admin/health",
        "http://given.test/v1/admin/health",
    ]
    assert [r.headers["x-api-key"] for r in script.requests] == ["env-key", "given-key"]
    monkeypatch.delenv("MEMORY_URL")
    with MemoryMesh(transport=httpx.MockTransport(script)) as memory:
        assert memory.url == "http://127.0.0.1:8000"


class BrokenExport(httpx.SyncByteStream):
    """Two whole NDJSON lines, then the connection drops (`drop`) or a line is cut in half."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop

    def __iter__(self) -> Iterator[bytes]:
        for i in (1, 2):
            yield (json.dumps({"id": f"m-{i}", "content": f"message {i}"}) + "\n").encode()
        if self.drop:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        yield b'{"id": "m-3", "cont'


@pytest.mark.parametrize("drop", [True, False], ids=["connection dropped", "line cut in half"])
def test_an_export_cut_short_raises_unreachable_after_what_came(drop: bool) -> None:
    answer = httpx.Response(200, headers={"content-type": "application/x-ndjson"}, stream=BrokenExport(drop))
    transport = httpx.MockTransport(lambda request: answer)
    got = []
    with (
        MemoryMesh("http://memory.test", "key", transport=transport) as memory,
        pytest.raises(Unreachable, match="cut short"),
    ):
        for message in memory.export_user("acme", "alice"):
            got.append(message["id"])
    assert got == ["m-1", "m-2"]


def test_a_listing_whose_cursor_does_not_move_on_is_an_error_not_a_loop() -> None:
    page = {"messages": [MESSAGE], "next_cursor": "c-1"}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=page))
    with (
        MemoryMesh("http://memory.test", "key", transport=transport) as memory,
        pytest.raises(MemoryMeshError, match="same next_cursor twice"),
    ):
        list(memory.conversation_messages("acme", "support-42"))
