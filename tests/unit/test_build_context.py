"""BuildContext over in-memory fakes: the recent window, the search by scope, validation and
access; the rules themselves are features/context.feature."""

from datetime import timedelta

import pytest

from application.build_context import BuildContext, ContextRequest, ContextSettings
from application.search_memory import SearchMemory, SearchSettings
from domain.access import AccessDenied, Principal
from domain.errors import ValidationFailed
from domain.message import ContentLimits
from domain.ranking import RankingWeights
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.tokenizer import WordTokenizer
from tests.support import inline_store
from tests.unit.test_store_and_search import command

ACME = Principal(key_id="k1", tenants=frozenset({"acme"}))


@pytest.fixture
def store(repository, index, embedder, transactions, clock):
    return inline_store(repository, index, embedder, transactions, clock, ContentLimits(max_content_chars=1000))


@pytest.fixture
def build(repository, text_search, index, embedder, clock) -> BuildContext:
    search = SearchMemory(
        repository, text_search, index, embedder, clock, SearchSettings(weights=RankingWeights()), InMemoryMetrics()
    )
    return BuildContext(repository, search, WordTokenizer(), ContextSettings(max_tokens=5000, default_recent=4))


async def said(store, clock, conversation: str, *turns: str, tenant: str = "acme", user_id=None) -> None:
    for i, text in enumerate(turns):
        role = "user" if i % 2 == 0 else "assistant"
        at = clock.now() - timedelta(minutes=len(turns) - i)
        await store(
            Principal("k", frozenset({tenant})),
            command(text, tenant=tenant, conversation_id=conversation, role=role, created_at=at, user_id=user_id),
        )


def ask(**fields) -> ContextRequest:
    return ContextRequest(**{"tenant_id": "acme", "conversation_id": "now", "max_tokens": 1000, **fields})


async def test_the_latest_user_message_is_the_query_and_the_window_is_not_repeated(build, store, clock):
    await said(store, clock, "now", "my cat Tom hates the vet", "noted", "book the vet for Tom", "ok", "thanks")
    context = await build(ACME, ask(recent=4))
    assert [e.message.content for e in context.recent] == ["noted", "book the vet for Tom", "ok", "thanks"]
    # "book the vet for Tom" is found too, but it is in the window: only the turn before it is a memory.
    context = await build(ACME, ask(recent=4, query="vet"))
    assert [e.message.content for e in context.memories] == ["my cat Tom hates the vet"]


async def test_scope_tenant_finds_other_conversations_and_conversation_does_not(build, store, clock):
    await said(store, clock, "before", "my sister Ana lives in Porto")
    await said(store, clock, "now", "where does Ana live?")
    assert (await build(ACME, ask())).memories == ()
    context = await build(ACME, ask(scope="tenant"))
    assert [(e.message.conversation_id, e.message.content) for e in context.memories] == [
        ("before", "my sister Ana lives in Porto")
    ]
    assert "conversation before" in context.prompt and "search result 1" in context.memories[0].reason


async def test_scope_user_draws_on_the_persons_other_conversations_and_no_one_elses(build, store, clock):
    await said(store, clock, "monday", "my sister Ana lives in Porto", user_id="u-ana")
    await said(store, clock, "tuesday", "my sister Ana lives in Lisbon", user_id="u-bob")
    await said(store, clock, "now", "where does Ana live?", user_id="u-ana")
    for context in (await build(ACME, ask(user_id="u-ana")), await build(ACME, ask(user_id="u-ana", scope="user"))):
        assert [(e.message.conversation_id, e.message.content) for e in context.memories] == [
            ("monday", "my sister Ana lives in Porto")
        ]
    assert (await build(ACME, ask(user_id="u-ana", scope="conversation"))).memories == ()
    assert len((await build(ACME, ask(user_id="u-ana", scope="tenant"))).memories) == 2


async def test_another_tenants_messages_never_come_back(build, store, clock):
    await said(store, clock, "now", "my secret plan for Porto", tenant="globex")
    await said(store, clock, "now", "Porto plans?")
    context = await build(ACME, ask(scope="tenant", query="secret plan Porto"))
    assert all(e.message.tenant_id == "acme" for e in (*context.recent, *context.memories))
    with pytest.raises(AccessDenied):
        await build(ACME, ask(tenant_id="globex"))


async def test_an_empty_or_unknown_conversation_is_an_empty_context(build):
    context = await build(ACME, ask(conversation_id="nobody-said-anything"))
    assert (context.recent, context.memories, context.prompt, context.total_tokens) == ((), (), "", 0)


async def test_the_budget_holds_with_the_counting_given(build, store, clock):
    await said(store, clock, "now", *[f"turn {i} " + "word " * 30 for i in range(8)])
    for budget in (1, 10, 50, 120):
        context = await build(ACME, ask(max_tokens=budget))
        assert WordTokenizer().count(context.prompt) == context.total_tokens <= budget
        assert context.recent[-1].message.content.startswith("turn 7")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 5001}, "max_tokens"),
        ({"recent": 0}, "recent"),
        ({"scope": "user"}, "user_id"),  # whose memories: not said
        ({"user_id": "has space"}, "user_id"),
        ({"scope": "everything"}, "scope"),
        ({"conversation_id": "has space"}, "conversation_id"),
        ({"query": ""}, "query"),
    ],
)
async def test_bad_input_names_its_field(build, store, clock, fields, field):
    await said(store, clock, "now", "hello there")
    with pytest.raises(ValidationFailed) as raised:
        await build(ACME, ask(**fields))
    assert field in {p.field for p in raised.value.problems}


async def test_a_query_of_stop_words_is_answered(build, store, clock):
    await said(store, clock, "now", "the cat is on the mat", "yes")
    context = await build(ACME, ask(query="the of and a", mode="keyword"))
    assert context.recent and context.total_tokens <= 1000
