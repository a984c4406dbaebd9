from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.rate_limit import RateLimit, gcra

scenarios("rate_limits.feature")


@pytest.fixture
def bucket() -> dict[str, Any]:
    return {"tat": None, "now": 1000.0, "decisions": []}


def request(bucket: dict[str, Any]) -> bool:
    decision, tat = gcra(bucket["tat"], bucket["now"], bucket["rate"])
    if tat is not None:
        bucket["tat"] = tat
    bucket["decisions"].append(decision)
    return decision.allowed


@given(parsers.parse("a limit of {text}"))
def a_limit(bucket: dict[str, Any], text: str) -> None:
    bucket["rate"] = RateLimit.parse(text)


@when(parsers.parse("{count:d} requests arrive at the same moment"))
def requests_arrive(bucket: dict[str, Any], count: int) -> None:
    bucket["decisions"] = []
    for _ in range(count):
        request(bucket)


@when(parsers.parse("{seconds:d} seconds pass"))
def time_passes(bucket: dict[str, Any], seconds: int) -> None:
    bucket["now"] += seconds


@then(parsers.parse("{allowed:d} are allowed and {refused:d} are refused"))
def counted(bucket: dict[str, Any], allowed: int, refused: int) -> None:
    outcomes = [d.allowed for d in bucket["decisions"]]
    assert (outcomes.count(True), outcomes.count(False)) == (allowed, refused)


@then(parsers.parse("the last refusal says to retry after {seconds:d} seconds"))
def retry_after(bucket: dict[str, Any], seconds: int) -> None:
    assert bucket["decisions"][-1].retry_after == pytest.approx(seconds)


@then("1 more request is allowed and the next is refused")
def one_more(bucket: dict[str, Any]) -> None:
    assert request(bucket) is True
    assert request(bucket) is False


@then(parsers.parse("{count:d} more requests are allowed"))
def more_allowed(bucket: dict[str, Any], count: int) -> None:
    assert all(request(bucket) for _ in range(count))
    assert bucket["decisions"][-1].remaining == 0


@then(parsers.parse('"{text}" means {limit:d} requests per {seconds:d} seconds'))
def parsed(text: str, limit: int, seconds: int) -> None:
    rate = RateLimit.parse(text)
    assert (rate.limit, rate.period.total_seconds()) == (limit, seconds)
