"""Keyword search on PostgreSQL: a word common in the tenant's messages ranks but does not match
alone, no query text is read as tsquery syntax, and what one search costs is bounded."""

import string
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.text_search import PgTextSearch
from application.ports.filters import SearchFilters
from application.ports.text_search import KeywordLimits
from tests.support import make


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def test_common_words_count_in_the_rank_but_only_rarer_ones_make_a_match(empty_database):
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    tenant = new_tenant()
    common = [make(tenant, f"the weather today, note {i}") for i in range(300)]
    both = [make(tenant, "the weather and the kettle"), make(tenant, "kettle weather")]
    rare = make(tenant, "a kettle on the stove")
    await repository.add_many([*common, *both, rare])

    hits = await search.keyword_search(tenant, "weather kettle", 400, SearchFilters())
    assert {h.message_id for h in hits[:2]} == {m.id for m in both}  # both words: first
    assert [h.message_id for h in hits[2:]] == [rare.id]  # the common word alone does not match

    only_common = await search.keyword_search(tenant, "what was the weather", 400, SearchFilters())
    assert len(only_common) == 302  # a query of common words only still matches on them


async def test_a_small_tenant_matches_on_every_word(empty_database):
    """Under COMMON_MIN_MESSAGES messages holding it, no word is common: all of them match."""
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    tenant = new_tenant()
    messages = [make(tenant, f"the weather today, note {i}") for i in range(9)] + [make(tenant, "a kettle")]
    await repository.add_many(messages)
    assert len(await search.keyword_search(tenant, "weather kettle", 50, SearchFilters())) == 10


async def test_another_tenants_writes_never_change_my_results(empty_database):
    """Which words are common is read from the tenant's own messages, not the whole table."""
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    mine, loud = new_tenant(), new_tenant()
    falcon = make(mine, "the falcon landed on the roof")
    await repository.add_many([falcon, *(make(mine, f"note {i} about lunch") for i in range(20))])
    before = await search.keyword_search(mine, "falcon zqxjv", 10, SearchFilters())

    await repository.add_many([make(loud, f"falcon sighting number {i}") for i in range(300)])
    await empty_database.pool.execute("ANALYZE messages")
    fresh = PgTextSearch(empty_database)  # nothing cached from before
    after = await fresh.keyword_search(mine, "falcon zqxjv", 10, SearchFilters())
    assert [h.message_id for h in after] == [h.message_id for h in before] == [falcon.id]


# Query text that PostgreSQL's tsquery parser would read as syntax if it were handed over as is.
SYNTAX = ["check out example.com/deals!", "https://en.wikipedia.org/wiki/Python_(programming_language)"]
SYNTAX += ["see github.com/org/repo/blob/main/app.py:10", "zzz.org/apple:*", "a & b | !c <-> (d) :* 'e' \\ f"]
SYNTAX += ["O'Brien's", "'''", "\\'", "x:*A", "(((", "<2>", "!!", "apple:*B & pie"]


@pytest.mark.parametrize("query", SYNTAX)
async def test_no_query_text_is_read_as_tsquery_syntax(empty_database, query):
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    tenant = new_tenant()
    await repository.add_many([make(tenant, "example.com/apple-pie-recipe"), make(tenant, query)])
    hits = await search.keyword_search(tenant, query, 10, SearchFilters())
    has_words = await empty_database.pool.fetchval("SELECT length(to_tsvector('english', $1)) > 0", query)
    assert bool(hits) == has_words  # the message holding the very words is found: no error, no lost word


async def test_a_prefix_operator_in_the_query_matches_nothing_by_prefix(empty_database):
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    tenant = new_tenant()
    await repository.add_many([make(tenant, "example.com/apple-pie-recipe")])
    assert await search.keyword_search(tenant, "zzz.org/apple:*", 10, SearchFilters()) == []


PUNCTUATION = "'’:*&|!()<>\\/.-_@"
WORD = st.text(alphabet=string.ascii_letters + string.digits + PUNCTUATION, min_size=1, max_size=20)
# Hosts and paths are what the parser keeps whole, with their punctuation, as one lexeme.
URL = st.builds(lambda host, path: f"{host}.com/{path}", WORD, WORD)
# NUL and lone surrogates never get this far: the search use case refuses them with a 422.
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
QUERY_TEXT = st.lists(st.one_of(WORD, URL, ANY_TEXT), max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERY_TEXT)
async def test_any_query_text_is_answered(empty_database, query):
    """Generated text of every punctuation PostgreSQL's parsers know: never an error."""
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    tenant = "fuzz"
    if not await empty_database.pool.fetchval("SELECT count(*) FROM messages WHERE tenant_id = $1", tenant):
        await repository.add_many([make(tenant, "example.com/apple-pie-recipe at 10:30 (O'Brien)")])
    await search.keyword_search(tenant, query, 10, SearchFilters())
    await search.keyword_search(tenant, query, 10, SearchFilters(conversation_id="c1"))


async def test_only_the_first_max_terms_words_of_a_query_are_used(empty_database):
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database, KeywordLimits(max_terms=3, max_ranked=100))
    tenant = new_tenant()
    first, late = make(tenant, "alpha"), make(tenant, "delta")
    await repository.add_many([first, late])
    hits = await search.keyword_search(tenant, "alpha bravo charlie delta", 10, SearchFilters())
    assert [h.message_id for h in hits] == [first.id]  # delta is the fourth word: not used


async def test_at_most_max_ranked_matches_are_ranked_the_newest(empty_database):
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database, KeywordLimits(max_terms=32, max_ranked=5))
    tenant = new_tenant()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    messages = [make(tenant, f"kettle number {i}", created_at=start + timedelta(hours=i)) for i in range(8)]
    await repository.add_many(messages)
    hits = await search.keyword_search(tenant, "kettle", 10, SearchFilters())
    assert {h.message_id for h in hits} == {m.id for m in messages[3:]}


async def test_a_query_of_many_words_over_many_matches_is_bounded(empty_database):
    """514 words, each in many of the tenant's messages: the query uses 32 and ranks 2,000."""
    repository = PgMessageRepository(empty_database)
    search = PgTextSearch(empty_database)
    tenant = new_tenant()
    vocabulary = [f"w{i:03d}x" for i in range(514)]
    await repository.add_many(
        [make(tenant, " ".join(vocabulary[(i * 7 + j) % 514] for j in range(40))) for i in range(2_500)]
    )
    used = await empty_database.pool.fetchval(
        "SELECT cardinality(ARRAY(SELECT w.lexeme FROM unnest(to_tsvector('english', $1)) AS w "
        "ORDER BY w.positions[1] LIMIT $2))",
        " ".join(vocabulary),
        KeywordLimits().max_terms,
    )
    assert used == 32
    hits = await search.keyword_search(tenant, " ".join(vocabulary), 100, SearchFilters())
    assert len(hits) == 100
