from datetime import timedelta
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.retry import RetryPolicy

scenarios("embedding_retry.feature")


@pytest.fixture
def case() -> dict[str, Any]:
    return {}


@given(
    parsers.re(
        r"at most (?P<tries>\d+) tries, a first wait of (?P<base>\d+) seconds and waits capped at (?P<cap>\d+) seconds"
    )
)
def policy(case: dict[str, Any], tries: str, base: str, cap: str) -> None:
    case["policy"] = RetryPolicy(int(tries), timedelta(seconds=int(base)), timedelta(seconds=int(cap)))


@when(parsers.re(r"try (?P<tries>\d+) has failed"))
def failed(case: dict[str, Any], tries: str) -> None:
    case["delay"] = case["policy"].delay_after(int(tries))


@then(parsers.re(r"the next try waits (?P<seconds>\d+) seconds"))
def waits(case: dict[str, Any], seconds: str) -> None:
    assert case["delay"] == timedelta(seconds=int(seconds))


@then("the message is given up as failed")
def given_up(case: dict[str, Any]) -> None:
    assert case["delay"] is None
