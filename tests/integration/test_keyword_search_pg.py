"""Keyword search on PostgreSQL at scale: a word in many messages ranks but does not match alone."""

import uuid

from adapters.postgres.message_repository import COMMON_SHARE, PgMessageRepository
from application.ports import SearchFilters
from tests.contract.test_message_repository import make


async def test_common_words_count_in_the_rank_but_only_rarer_ones_make_a_match(empty_database):
    repository = PgMessageRepository(empty_database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    common = [make(tenant, f"the weather today, note {i}") for i in range(300)]
    both = [make(tenant, "the weather and the kettle"), make(tenant, "kettle weather")]
    rare = make(tenant, "a kettle on the stove")
    await repository.add_many([*common, *both, rare])

    # No statistics yet (never analysed): every word makes a match, as it always did.
    assert len(await repository.keyword_search(tenant, "weather kettle", 400, SearchFilters())) == 303

    await empty_database.pool.execute("ANALYZE messages")
    fresh = PgMessageRepository(empty_database)  # the statistics are read once in a while: a new reader
    share = await empty_database.pool.fetchval(
        "SELECT e.share FROM pg_stats s, unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) "
        "AS e(word, share) WHERE s.tablename = 'messages' AND s.attname = 'content_tsv' AND e.word = 'weather'"
    )
    assert share >= COMMON_SHARE  # 'weather' is in 302 of 303 messages

    hits = await fresh.keyword_search(tenant, "weather kettle", 400, SearchFilters())
    assert {h.message_id for h in hits[:2]} == {m.id for m in both}  # both words: first
    assert [h.message_id for h in hits[2:]] == [rare.id]  # the common word alone no longer matches

    only_common = await fresh.keyword_search(tenant, "what was the weather", 400, SearchFilters())
    assert len(only_common) == 302  # a query of common words only still matches on them
