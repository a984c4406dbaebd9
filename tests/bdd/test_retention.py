import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.errors import ValidationFailed
from domain.message import EmbeddingStatus, Message, Role
from domain.retention import RetentionFacts, RetentionPolicy, decide, parse_roles

scenarios("retention.feature")

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def case() -> dict[str, Any]:
    return {}


def days(text: str) -> float | None:
    return None if text.startswith("never") else float(text.split()[-2])


@given(
    parsers.re(
        r"a policy that (?P<archive>archives after \d+ days|never archives), "
        r"(?P<delete>deletes after \d+ days|never deletes), below importance (?P<threshold>[\d.]+), "
        r"protecting (?P<roles>\w+)"
    )
)
def a_policy(case: dict[str, Any], archive: str, delete: str, threshold: str, roles: str) -> None:
    case["policy"] = RetentionPolicy(
        archive_after_days=days(archive),
        delete_after_days=days(delete),
        importance_threshold=float(threshold),
        protected_roles=frozenset() if roles == "nothing" else parse_roles(roles),
    )


def facts(role: str, age: str, importance: float, **extra: Any) -> RetentionFacts:
    return RetentionFacts(
        message_id=uuid.uuid4(),
        role=Role(role),
        created_at=NOW - timedelta(days=float(age)),
        importance=importance,
        pinned=extra.pop("pinned", False),
        **extra,
    )


@given(
    parsers.re(
        r"an? (?P<role>\w+) message (?P<age>\d+) days old with importance (?P<importance>[\d.]+), "
        r"pinned (?P<pinned>yes|no), archived (?P<archived>yes|no)"
    )
)
def a_message(case: dict[str, Any], role: str, age: str, importance: str, pinned: str, archived: str) -> None:
    case["message"] = facts(
        role,
        age,
        float(importance),
        pinned=pinned == "yes",
        archived_at=NOW - timedelta(days=1) if archived == "yes" else None,
    )


@given(parsers.re(r"a (?P<role>\w+) message (?P<age>\d+) days old with explicit importance (?P<explicit>[\d.]+)"))
def an_explicit_message(case: dict[str, Any], role: str, age: str, explicit: str) -> None:
    message = Message(
        id=uuid.uuid4(),
        tenant_id="t",
        conversation_id="c",
        role=Role(role),
        content="x",
        metadata={},
        created_at=NOW - timedelta(days=float(age)),
        importance=float(explicit),
        explicit_importance=float(explicit),
        embedding_status=EmbeddingStatus.EMBEDDED,
    )
    case["message"] = RetentionFacts.of(message)


@given(
    parsers.re(
        r"a (?P<role>\w+) message (?P<age>\d+) days old with importance (?P<importance>[\d.]+), "
        r"restored (?P<restored>\d+) days ago"
    )
)
def a_restored_message(case: dict[str, Any], role: str, age: str, importance: str, restored: str) -> None:
    case["message"] = facts(role, age, float(importance), restored_at=NOW - timedelta(days=float(restored)))


@when("the policy decides")
def decides(case: dict[str, Any]) -> None:
    case["decision"] = decide(case["policy"], case["message"], NOW)


@then(parsers.re(r'the action is (?P<action>\w+) because "(?P<reason>.*)"'))
def action_is(case: dict[str, Any], action: str, reason: str) -> None:
    assert (case["decision"].action.value, case["decision"].reason) == (action, reason)


@when(parsers.re(r"a policy is made with (?P<field>\w+) set to (?P<value>-?[\d.]+)"))
def made_with(case: dict[str, Any], field: str, value: str) -> None:
    defaults = {"archive_after_days": 30.0, "delete_after_days": 90.0, "importance_threshold": 0.35}
    try:
        RetentionPolicy(**{**defaults, field: float(value)})
    except ValidationFailed as refusal:
        case["refusal"] = refusal


@then(parsers.re(r'it is refused naming "(?P<field>\w+)"'))
def refused(case: dict[str, Any], field: str) -> None:
    assert [p.field for p in case["refusal"].problems] == [field]
