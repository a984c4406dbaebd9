import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.message import EmbeddingStatus, Message, Role
from domain.ranking import RankingWeights, rank, recency

scenarios("ranking.feature")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def case() -> dict[str, Any]:
    return {"candidates": [], "names": {}}


def message(importance: float, age_days: float) -> Message:
    return Message(
        id=uuid.uuid4(),
        tenant_id="t",
        conversation_id="c",
        role=Role.USER,
        content="x",
        metadata={},
        created_at=NOW - timedelta(days=age_days),
        importance=importance,
        explicit_importance=None,
        embedding_status=EmbeddingStatus.EMBEDDED,
    )


@given(
    parsers.re(
        r"the ranking weights similarity (?P<sim>[\d.]+), importance (?P<imp>[\d.]+), "
        r"recency (?P<rec>[\d.]+) and a half-life of (?P<days>\d+) days"
    )
)
def weights(case: dict[str, Any], sim: str, imp: str, rec: str, days: str) -> None:
    case["weights"] = RankingWeights(float(sim), float(imp), float(rec), timedelta(days=int(days)))


@given(
    parsers.re(
        r'message "(?P<name>\w+)" with similarity (?P<sim>[\d.]+), '
        r"importance (?P<imp>[\d.]+) and age (?P<age>\d+) days"
    )
)
def candidate(case: dict[str, Any], name: str, sim: str, imp: str, age: str) -> None:
    m = message(float(imp), float(age))
    case["names"][m.id] = name
    case["candidates"].append((m, float(sim)))


@when("the messages are ranked")
def ranked(case: dict[str, Any]) -> None:
    case["ranked"] = rank(case["candidates"], NOW, case["weights"], top_k=10)


@when(parsers.re(r"the messages are ranked keeping the top (?P<k>\d+)"))
def ranked_top(case: dict[str, Any], k: str) -> None:
    case["ranked"] = rank(case["candidates"], NOW, case["weights"], top_k=int(k))


@then(parsers.re(r'the order is "(?P<order>[\w,]+)"'))
def order_is(case: dict[str, Any], order: str) -> None:
    assert [case["names"][r.message.id] for r in case["ranked"]] == order.split(",")


@then(parsers.re(r"a message (?P<age>-?\d+) days old has recency (?P<expected>[\d.]+)"))
def recency_is(case: dict[str, Any], age: str, expected: str) -> None:
    created = NOW - timedelta(days=int(age))
    assert recency(created, NOW, case["weights"].half_life) == pytest.approx(float(expected))


@then(
    parsers.re(
        r'message "(?P<name>\w+)" scores similarity (?P<sim>[\d.]+), importance (?P<imp>[\d.]+), '
        r"recency (?P<rec>[\d.]+) and final (?P<final>[\d.]+)"
    )
)
def scores_are(case: dict[str, Any], name: str, sim: str, imp: str, rec: str, final: str) -> None:
    (found,) = [r for r in case["ranked"] if case["names"][r.message.id] == name]
    assert found.scores.similarity == pytest.approx(float(sim))
    assert found.scores.importance == pytest.approx(float(imp))
    assert found.scores.recency == pytest.approx(float(rec))
    assert found.scores.final == pytest.approx(float(final))
