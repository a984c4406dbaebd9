import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from adapters.tokenizers.bpe_openai import BpeOpenAiTokenizer
from domain.context import CUT_MARK, ContextBudget, build_context
from domain.message import EmbeddingStatus, Message, Role
from domain.ranking import RankedMessage, ScoreParts

scenarios("context.feature")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOKENIZER = BpeOpenAiTokenizer("o200k_base")
WORDS = (
    "tram castle river bread coffee museum tile azulejo harbour bridge market fish sardine wine "
    "port hill view sunset ferry train station ticket hotel room breakfast street music fado guitar "
    "night walk garden church tower square lunch dinner friend sister brother cousin uncle school "
    "work office meeting laptop phone camera photo album beach sand wave surf board rain sun cloud "
    "wind cold warm"
)
VOCABULARY = WORDS.split()


def message(content: str, at: datetime, conversation: str = "trip", role: Role = Role.USER) -> Message:
    return Message(
        id=uuid.uuid4(),
        tenant_id="t",
        conversation_id=conversation,
        role=role,
        content=content,
        metadata={},
        created_at=at,
        importance=0.5,
        explicit_importance=None,
        embedding_status=EmbeddingStatus.EMBEDDED,
    )


def found(m: Message, position: int) -> RankedMessage:
    similarity = 1.0 / position
    return RankedMessage(
        m,
        ScoreParts(similarity, 0.5, 0.9, 0.7 * similarity + 0.19),
        {"semantic": similarity, "semantic_rank": position},
    )


def some_words(seed: int, n: int) -> str:
    return " ".join(random.Random(seed).choices(VOCABULARY, k=n))


@pytest.fixture
def case() -> dict[str, Any]:
    return {"window": [], "found": [], "share": 0.5}


@given(parsers.parse("a conversation of {n:d} turns about a trip to Lisbon"))
def conversation(case: dict[str, Any], n: int) -> None:
    case["window"] = [
        message(f"Turn {i}: about Lisbon, {some_words(100 + i, 6)}", NOW - timedelta(minutes=n - i), role=role)
        for i, role in zip(range(1, n + 1), [Role.USER, Role.ASSISTANT] * n, strict=False)
    ]


@given("an empty conversation")
def empty(case: dict[str, Any]) -> None:
    case["window"] = []


@given(parsers.parse("each turn is about {n:d} words long"))
def long_turns(case: dict[str, Any], n: int) -> None:
    case["window"] = [
        message(f"Turn {i}: {some_words(200 + i, n)}", m.created_at, role=m.role)
        for i, m in enumerate(case["window"], start=1)
    ]


@given(parsers.parse("the newest turn is {n:d} words long"))
def long_newest(case: dict[str, Any], n: int) -> None:
    newest = case["window"][-1]
    case["window"][-1] = message(some_words(7, n), newest.created_at, role=newest.role)


@given(parsers.parse("the recent turns get {share:f} of the budget"))
def share(case: dict[str, Any], share: float) -> None:
    case["share"] = share


def add_found(case: dict[str, Any], m: Message) -> None:
    case["found"].append(found(m, len(case["found"]) + 1))


def older(text: str, days: int = 30) -> Message:
    return message(text, NOW - timedelta(days=days), conversation="earlier")


@given(parsers.parse('search found the conversation\'s turn {turn:d} and an older memory "{text}"'))
def found_turn_and_memory(case: dict[str, Any], turn: int, text: str) -> None:
    add_found(case, case["window"][turn - 1])
    add_found(case, older(text))


@given(parsers.parse('search found an older memory "{text}" from {day}'))
def found_dated(case: dict[str, Any], text: str, day: str) -> None:
    add_found(case, message(text, datetime.fromisoformat(day).replace(tzinfo=UTC, hour=9), conversation="earlier"))


@given("search found the older memories:")
def found_table(case: dict[str, Any], datatable: list[list[str]]) -> None:
    for (text,) in datatable[1:]:
        add_found(case, older(text.strip()))


@given("search found an older memory repeating the newest turn")
def found_repeat(case: dict[str, Any]) -> None:
    add_found(case, older(case["window"][-1].content.upper() + "."))


@given(parsers.parse("search found {n:d} older memories of about {size:d} words each"))
def found_many(case: dict[str, Any], n: int, size: int) -> None:
    for i in range(n):
        add_found(case, older(f"Memory {i}: {some_words(i, size)}", days=30 + i))


@given(parsers.parse('search found an older memory "{text}" of this conversation'))
def found_here(case: dict[str, Any], text: str) -> None:
    add_found(case, message(text, NOW - timedelta(days=30)))


@given(
    parsers.parse(
        "search found an older memory of {long:d} words, then {n:d} older memories of about {size:d} words each"
    )
)
def found_long_then_short(case: dict[str, Any], long: int, n: int, size: int) -> None:
    add_found(case, older(f"Long memory: {some_words(1, long)}"))
    for i in range(n):
        add_found(case, older(f"Short memory {i}: {some_words(10 + i, size)}", days=40 + i))


@when(parsers.parse("the context is built with a budget of {budget:d} tokens"))
def built(case: dict[str, Any], budget: int) -> None:
    case["context"] = build_context(case["window"], case["found"], ContextBudget(budget, case["share"]), TOKENIZER)


@then(parsers.parse('the memories are "{texts}"'))
def memories_are(case: dict[str, Any], texts: str) -> None:
    assert [e.message.content for e in case["context"].memories] == texts.split("|")


@then(parsers.parse("turn {turn:d} is among the memories and not among the recent turns"))
def turn_is_a_memory(case: dict[str, Any], turn: int) -> None:
    wanted = case["window"][turn - 1].id
    context = case["context"]
    assert wanted in {e.message.id for e in context.memories}
    assert wanted not in {e.message.id for e in context.recent}


@then("there are no memories")
def no_memories(case: dict[str, Any]) -> None:
    assert case["context"].memories == ()


@then("some memories are kept")
def some_memories(case: dict[str, Any]) -> None:
    assert case["context"].memories


@then(parsers.parse("{n:d} repeat is counted as dropped"))
def dropped(case: dict[str, Any], n: int) -> None:
    assert case["context"].repeats_dropped == n


@then(parsers.parse('the first memory\'s reason says "{words}"'))
def reason_says(case: dict[str, Any], words: str) -> None:
    assert words in case["context"].memories[0].reason


@then("no message appears twice in the prompt")
def once(case: dict[str, Any]) -> None:
    context = case["context"]
    ids = [e.message.id for e in (*context.recent, *context.memories)]
    assert len(ids) == len(set(ids))
    for entry in (*context.recent, *context.memories):
        assert context.prompt.count(entry.message.content) == 1


@then(parsers.parse("the prompt counts at most {budget:d} tokens with the real tokenizer"))
def within(case: dict[str, Any], budget: int) -> None:
    context = case["context"]
    assert TOKENIZER.count(context.prompt) == context.total_tokens <= budget == context.budget


@then("the newest turn is kept")
def newest_kept(case: dict[str, Any]) -> None:
    assert case["context"].recent[-1].message == case["window"][-1]


@then("the newest turn is kept, cut and marked as cut")
def newest_cut(case: dict[str, Any]) -> None:
    (entry,) = [e for e in case["context"].recent if e.message == case["window"][-1]]
    assert entry.cut and entry.line.endswith(CUT_MARK) and entry.message.content.startswith(entry.content)
    assert TOKENIZER.truncate(entry.message.content, TOKENIZER.count(entry.content)) == entry.content  # a boundary


@then(parsers.parse("all {n:d} turns are in the recent turns"))
def all_recent(case: dict[str, Any], n: int) -> None:
    assert [e.message for e in case["context"].recent] == case["window"][-n:]
    assert not any(e.cut for e in case["context"].recent)


@then(parsers.parse("the recent turns take at most {n:d} tokens"))
def recent_at_most(case: dict[str, Any], n: int) -> None:
    assert 0 < case["context"].recent_tokens <= n


@then(parsers.parse("the memories take at least {n:d} tokens"))
def memories_at_least(case: dict[str, Any], n: int) -> None:
    assert case["context"].memory_tokens >= n


@then(parsers.parse('the prompt shows "{text}"'))
def shows(case: dict[str, Any], text: str) -> None:
    assert text in case["context"].prompt


@then("the prompt is empty and counts 0 tokens")
def empty_prompt(case: dict[str, Any]) -> None:
    context = case["context"]
    assert context.prompt == "" and context.total_tokens == 0 and not context.recent and not context.memories


@then(parsers.parse("the {n:d} short memories are kept whole"))
def short_kept(case: dict[str, Any], n: int) -> None:
    short = [e for e in case["context"].memories if e.message.content.startswith("Short memory")]
    assert len(short) == n and not any(e.cut for e in short)


@then("the long memory is kept first among the memories, cut and marked as cut")
def long_cut_first(case: dict[str, Any]) -> None:
    first = case["context"].memories[0]
    assert first.message.content.startswith("Long memory") and first.cut and first.line.endswith(CUT_MARK)
    assert first.ranked is not None and "search result 1 " in first.reason


@then(parsers.parse('the line of "{text}" names no conversation'))
def names_no_conversation(case: dict[str, Any], text: str) -> None:
    (line,) = [line for line in case["context"].prompt.splitlines() if text in line]
    assert "conversation" not in line
