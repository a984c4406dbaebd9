from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.importance import score_importance
from domain.message import Role

scenarios("importance.feature")


@pytest.fixture
def case() -> dict[str, Any]:
    return {"explicit": None}


@given(parsers.re(r'a (?P<role>\w+) message "(?P<content>.*)"'))
def a_message(case: dict[str, Any], role: str, content: str) -> None:
    case["role"], case["content"] = Role(role), content


@given(parsers.re(r"the client states importance (?P<explicit>-?[\d.]+)"))
def explicit_importance(case: dict[str, Any], explicit: str) -> None:
    case["explicit"] = float(explicit)


@when("its importance is scored")
def scored(case: dict[str, Any]) -> None:
    case["score"] = score_importance(case["role"], case["content"], case["explicit"])


@then(parsers.re(r"the importance is (?P<expected>[\d.]+)"))
def importance_is(case: dict[str, Any], expected: str) -> None:
    assert case["score"].value == pytest.approx(float(expected))
