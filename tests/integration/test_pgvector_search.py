"""Search on the real PostgreSQL + pgvector, with the real all-MiniLM-L6-v2 model."""

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from adapters.postgres.database import SEARCH_SETTINGS, Database, PgTransactions, init_connection
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.text_search import PgTextSearch
from adapters.postgres.vector_index import search_statement
from application.ports.filters import SearchFilters
from application.ports.vectors import VectorRecord
from application.search_memory import SearchMemory, SearchQuery, SearchSettings
from application.store_messages import StoreMessageCommand
from domain.access import Principal
from domain.message import EmbeddingStatus, Message, Role
from domain.ranking import RankingWeights
from tests.conftest import TEST_MODEL_ID, pg_vector_index
from tests.fakes.clock import FixedClock
from tests.fakes.embedder import DeterministicEmbedder
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.vector_index import cosine
from tests.integration.conftest import DIMENSIONS
from tests.support import inline_store

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ADMIN = Principal("test", frozenset(), admin=True)

SUBJECTS = [
    "the quarterly budget",
    "our team offsite",
    "the new laptop",
    "the marketing launch",
    "the football match",
    "my running schedule",
    "the garden fence",
    "a jazz concert",
    "the server migration",
    "the book club",
]
VERBS = [
    "was discussed during",
    "got postponed until after",
    "needs a decision before",
    "came up again at",
    "was the main topic of",
    "should be reviewed at",
]
TIMES = [
    "Monday's standup",
    "the weekly sync",
    "lunch yesterday",
    "the board meeting",
    "Friday afternoon",
    "the planning session",
    "next sprint",
    "the retrospective",
    "dinner on Sunday",
    "the quarterly review",
]
FILLER = [f"{s} {v} {t}." for s, v, t in itertools.product(SUBJECTS, VERBS, TIMES)]  # 600 distinct sentences


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def use_cases(database, embedder):
    repository, index, clock = PgMessageRepository(database), pg_vector_index(database), FixedClock(NOW)
    store = inline_store(repository, index, embedder, PgTransactions(database), clock)
    search = SearchMemory(
        repository,
        PgTextSearch(database),
        index,
        embedder,
        clock,
        SearchSettings(weights=RankingWeights(), candidates=100),
        InMemoryMetrics(),
    )
    return store, search


async def bulk_store(store, tenant_id: str, contents: list[str]) -> list:
    return [
        await store(
            ADMIN, StoreMessageCommand(tenant_id, f"c{i % 7}", "user", text, created_at=NOW - timedelta(hours=i))
        )
        for i, text in enumerate(contents)
    ]


async def seed(database, embedder, tenant_id: str, contents: list[str]) -> list[Message]:
    """Many embedded messages at once: one model call, then plain inserts."""
    vectors = await embedder.embed_documents(contents)
    messages = [
        Message(
            uuid.uuid4(),
            tenant_id,
            f"c{i % 7}",
            Role.USER,
            text,
            {},
            NOW - timedelta(hours=i),
            0.5,
            None,
            EmbeddingStatus.PENDING,
        )
        for i, text in enumerate(contents)
    ]
    repository = PgMessageRepository(database)
    for message in messages:
        await repository.add(message)
    await pg_vector_index(database).upsert(
        [
            VectorRecord(m.id, m.tenant_id, m.conversation_id, m.role, m.created_at, m.importance, v)
            for m, v in zip(messages, vectors, strict=True)
        ]
    )
    await PgEmbeddingQueue(database).mark_embedded(tenant_id, [m.id for m in messages])
    return messages


async def test_a_relevant_message_is_found_among_a_thousand_others(database, minilm):
    store, search = use_cases(database, minilm)
    t = tenant()
    rng = random.Random(7)
    await seed(database, minilm, t, [rng.choice(FILLER) + f" (note {i})" for i in range(1000)])
    (target,) = await bulk_store(store, t, ["My daughter is severely allergic to peanuts."])

    results = await search(ADMIN, SearchQuery(t, "which foods must the kid never eat?", top_k=5))

    assert target.id in [r.message.id for r in results]
    assert results[0].message.id == target.id


async def test_another_tenants_identical_message_never_comes_back(database):
    store, search = use_cases(database, DeterministicEmbedder(DIMENSIONS))
    mine, theirs = tenant(), tenant()
    await bulk_store(store, theirs, ["the secret launch code is 1234"] * 20)
    own = await bulk_store(store, mine, ["a note about the launch"])

    results = await search(ADMIN, SearchQuery(mine, "the secret launch code is 1234", top_k=100))

    assert [r.message.id for r in results] == [own[0].id]
    assert {r.message.tenant_id for r in results} == {mine}


async def test_a_selective_filter_in_a_large_tenant_is_not_starved(database, pg_dsn):
    """HNSW alone visits ef_search neighbours and filters afterwards, so a filter that keeps
    one row in twenty would return about two of ten. Iterative scans keep walking; when
    they give up (hnsw.max_scan_tuples) the adapter falls back to an exact scan."""
    t = tenant()
    rng = random.Random(3)
    # One row in twenty is a tool's; five rows in all are the system's.
    roles = ["system" if i % 1000 == 0 else "tool" if i % 20 == 0 else "user" for i in range(5_000)]
    rows = [
        (
            uuid.uuid4(),
            t,
            "c1",
            roles[i],
            "filler",
            NOW,
            0.5,
            "embedded",
            [rng.gauss(0, 1) for _ in range(DIMENSIONS)],
        )
        for i in range(5_000)
    ]
    async with database.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 0")  # setup, past the pool's statement timeout
        await conn.copy_records_to_table(
            "messages",
            records=rows,
            columns=[
                "id",
                "tenant_id",
                "conversation_id",
                "role",
                "content",
                "created_at",
                "importance",
                "embedding_status",
                "embedding",
            ],
            timeout=120,
        )
    await database.pool.execute("ANALYZE messages")
    query = [rng.gauss(0, 1) for _ in range(DIMENSIONS)]
    filters = SearchFilters(role=Role.TOOL)
    sql, params = search_statement(t, query, 10, filters, TEST_MODEL_ID)
    plan = "\n".join(r[0] for r in await database.pool.fetch(f"EXPLAIN {sql}", *params))
    assert "messages_embedding_hnsw" in plan  # the adapter's own query takes the HNSW path

    hits = await pg_vector_index(database).search(t, query, 10, filters)
    assert len(hits) == 10
    assert {h.message_id for h in hits} <= {r[0] for r in rows if r[3] == "tool"}

    # Forced onto the HNSW path with a scan budget so small that the iterative scan gives
    # up before it finds the five system rows: the exact fallback still returns all five.
    starved_pool = await asyncpg.create_pool(
        pg_dsn,
        min_size=1,
        max_size=1,
        init=init_connection,
        server_settings={
            **SEARCH_SETTINGS,
            "hnsw.max_scan_tuples": "20",
            "enable_seqscan": "off",
            "enable_bitmapscan": "off",
            "enable_sort": "off",
        },
    )
    try:
        hits = await pg_vector_index(Database(pg_dsn, starved_pool)).search(
            t, query, 10, SearchFilters(role=Role.SYSTEM)
        )
    finally:
        await starved_pool.close()
    systems = sorted((r for r in rows if r[3] == "system"), key=lambda r: -cosine(query, r[8]))
    assert len(systems) == 5
    assert [h.message_id for h in hits] == [r[0] for r in systems]


async def test_filters_archived_and_pending_rows_are_applied_in_the_database(database):
    store, _ = use_cases(database, DeterministicEmbedder(DIMENSIONS))
    t = tenant()
    embedder = DeterministicEmbedder(DIMENSIONS)
    rows = {}
    for name, conversation, role, importance, age in [
        ("a", "c1", "user", 0.9, 1),
        ("b", "c2", "assistant", 0.2, 5),
        ("c", "c1", "assistant", 0.6, 20),
        ("archived", "c1", "user", 0.9, 1),
    ]:
        rows[name] = await store(
            ADMIN,
            StoreMessageCommand(
                t, conversation, role, f"tea {name}", importance=importance, created_at=NOW - timedelta(days=age)
            ),
        )
    await database.pool.execute("UPDATE messages SET archived_at = now() WHERE id = $1", rows["archived"].id)
    pending = uuid.uuid4()
    await database.pool.execute(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, content, created_at, importance, embedding) "
        "VALUES ($1, $2, 'c1', 'user', 'tea pending', now(), 0.9, $3)",
        pending,
        t,
        await embedder.embed_query("tea pending"),
    )
    index = pg_vector_index(database)
    query = await embedder.embed_query("tea")

    async def names(**filters) -> set[str]:
        hits = await index.search(t, query, 50, SearchFilters(**filters))
        by_id = {m.id: n for n, m in rows.items()}
        return {by_id.get(h.message_id, "pending") for h in hits}

    assert await names() == {"a", "b", "c"}
    assert await names(conversation_id="c1") == {"a", "c"}
    assert await names(role=Role.ASSISTANT) == {"b", "c"}
    assert await names(min_importance=0.5) == {"a", "c"}
    assert await names(since=NOW - timedelta(days=10)) == {"a", "b"}
    assert await names(until=NOW - timedelta(days=3)) == {"b", "c"}
    assert await names(conversation_id="c1", role=Role.USER, since=NOW - timedelta(days=2)) == {"a"}
