"""The Gemini embedder through the real google-genai SDK, against a local fake of the API
(tests/gemini_fake.py): no internet. Retry delays are a millisecond here."""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from google.genai.errors import APIError

from adapters.embeddings.gemini import GeminiEmbedder, gemini_client
from adapters.inprocess.job_queue import InProcessJobQueue
from application.embed_pending import EmbeddingCounters, EmbeddingWorkSettings, EmbedPendingMessages
from application.ports.embedder import EmbedderUnavailable
from config.resources import open_gemini_embedder
from config.settings import Settings
from domain.message import EmbeddingStatus
from domain.retry import RetryPolicy
from tests.fakes.clock import FixedClock
from tests.fakes.embedding_queue import InMemoryEmbeddingQueue
from tests.fakes.messages import EmbeddingWork, InMemoryMessageTable
from tests.fakes.metrics import InMemoryMetrics
from tests.fakes.transactions import InMemoryTransactions
from tests.fakes.vector_index import InMemoryVectorIndex
from tests.gemini_fake import (
    BAD_KEY,
    BAD_TEXT,
    INTERNAL,
    NO_EMBEDDINGS,
    NOT_FINITE,
    NOT_JSON,
    OK,
    QUOTA,
    UNAVAILABLE,
    FakeGemini,
    Reply,
    error_body,
    fake_vector,
    unit,
)
from tests.support import make

MODEL = "gemini-embedding-001"
KEY = "test-gemini-key-0001"
BATCH_PATH = f"/v1beta/models/{MODEL}:batchEmbedContents"


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def embedder_on(
    fake: FakeGemini, dimensions: int = 768, max_retries: int = 2, timeout: float = 5.0, max_concurrency: int = 4
) -> GeminiEmbedder:
    client = gemini_client(KEY, fake.base_url, timeout, max_retries, retry_initial_delay=0.001, retry_max_delay=0.01)
    return GeminiEmbedder(client, MODEL, dimensions, max_concurrency=max_concurrency)


@pytest.fixture
async def gemini(fake: FakeGemini) -> AsyncIterator[GeminiEmbedder]:
    embedder = embedder_on(fake)
    yield embedder
    await embedder.aclose()


def assert_unit_vectors_of(vectors: list[list[float]], texts: list[str], dimensions: int) -> None:
    assert len(vectors) == len(texts)
    for vector, text in zip(vectors, texts, strict=True):
        assert len(vector) == dimensions
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-9)
        assert vector == pytest.approx(unit(fake_vector(text, dimensions)), abs=1e-9)  # its own text's, in order


async def test_documents_go_out_as_the_api_expects_and_come_back_normalised(fake, gemini):
    texts = ["my flight is on 12 May", "I am allergic to peanuts"]

    vectors = await gemini.embed_documents(texts)

    (sent,) = fake.received
    assert sent.path == BATCH_PATH
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.texts == texts
    for request in sent.requests:
        assert request["model"] == f"models/{MODEL}"
        assert request["taskType"] == "RETRIEVAL_DOCUMENT"
        assert request["outputDimensionality"] == 768
    assert_unit_vectors_of(vectors, texts, 768)
    assert (gemini.model_name, gemini.dimensions) == (MODEL, 768)


async def test_a_query_is_embedded_as_a_query(fake, gemini):
    vector = await gemini.embed_query("when is my flight?")

    (sent,) = fake.received
    assert [r["taskType"] for r in sent.requests] == ["RETRIEVAL_QUERY"]
    assert sent.requests[0]["outputDimensionality"] == 768
    assert_unit_vectors_of([vector], ["when is my flight?"], 768)


async def test_another_dimension_is_asked_for_and_normalised_too(fake):
    embedder = embedder_on(fake, dimensions=1536)
    try:
        vectors = await embedder.embed_documents(["hello"])
    finally:
        await embedder.aclose()
    assert fake.received[0].requests[0]["outputDimensionality"] == 1536
    assert_unit_vectors_of(vectors, ["hello"], 1536)


async def test_more_than_100_texts_go_in_requests_of_at_most_100_and_keep_their_order(fake):
    texts = [f"note {i}" for i in range(250)]
    embedder = embedder_on(fake, dimensions=8)
    try:
        vectors = await embedder.embed_documents(texts)
    finally:
        await embedder.aclose()

    assert sorted(len(r.texts) for r in fake.received) == [50, 100, 100]
    assert sorted(t for r in fake.received for t in r.texts) == sorted(texts)  # each text sent once
    sent = [request for r in fake.received for request in r.requests]
    assert {(r["taskType"], r["outputDimensionality"]) for r in sent} == {("RETRIEVAL_DOCUMENT", 8)}
    assert_unit_vectors_of(vectors, texts, 8)


async def test_a_newer_multimodal_model_still_gets_one_vector_per_text(fake):
    """The SDK folds plain strings into one content for its multimodal embedding models."""
    client = gemini_client(KEY, fake.base_url, 5.0, 0, retry_initial_delay=0.001, retry_max_delay=0.01)
    embedder = GeminiEmbedder(client, "models/gemini-embedding-2", 768)
    try:
        texts = ["first", "second", "third"]
        assert_unit_vectors_of(await embedder.embed_documents(texts), texts, 768)
    finally:
        await embedder.aclose()
    assert embedder.model_name == "gemini-embedding-2"  # recorded the same, with or without "models/"


async def test_requests_at_once_are_bounded(fake):
    fake.always(Reply(delay=0.1))
    embedder = embedder_on(fake, dimensions=8, max_concurrency=3)
    try:
        vectors = await embedder.embed_documents([f"note {i}" for i in range(1000)])  # ten requests
    finally:
        await embedder.aclose()
    assert len(vectors) == 1000 and len(fake.received) == 10
    assert 1 < fake.most_in_flight <= 3


async def test_a_quota_refusal_is_retried_and_then_answers(fake, gemini):
    fake.script(QUOTA, QUOTA)

    vectors = await gemini.embed_documents(["hello"])

    assert len(fake.received) == 3  # two refused, the third answered
    assert_unit_vectors_of(vectors, ["hello"], 768)


async def test_a_quota_exhausted_for_good_is_unavailable_after_every_try(fake, gemini):
    fake.always(QUOTA)

    with pytest.raises(EmbedderUnavailable, match="quota"):
        await gemini.embed_documents(["hello"])

    assert len(fake.received) == 3  # max_retries=2: three tries in all
    await gemini.check()  # quota is no reason to take the service out of rotation


async def test_a_search_gives_up_after_one_quick_retry_not_the_workers_backoff(fake):
    fake.always(QUOTA)
    embedder = embedder_on(fake, max_retries=4)  # background batches: five tries
    started = time.monotonic()
    try:
        with pytest.raises(EmbedderUnavailable, match="quota"):
            await embedder.embed_query("where did we park?")
    finally:
        await embedder.aclose()

    assert len(fake.received) == 2 and time.monotonic() - started < 2.0


async def test_a_batch_gives_up_inside_its_deadline_whatever_the_retries(fake):
    """Past the worker's lease its messages would be claimed again while this call still runs."""
    fake.always(QUOTA)
    client = gemini_client(KEY, fake.base_url, 5.0, 10, retry_initial_delay=0.2, retry_max_delay=0.2)
    embedder = GeminiEmbedder(client, MODEL, 768, deadline_seconds=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(EmbedderUnavailable, match=r"no answer within 0.5 s, retries included"):
            await embedder.embed_documents(["hello"])
    finally:
        await embedder.aclose()
    assert time.monotonic() - started < 1.5 and 1 < len(fake.received) < 11


async def test_a_search_does_not_wait_behind_batches_backing_off(fake):
    fake.script(*[QUOTA] * 4)  # the batch's four requests are refused, then sleep before retrying
    client = gemini_client(KEY, fake.base_url, 5.0, 2, retry_initial_delay=2.0, retry_max_delay=2.0)
    embedder = GeminiEmbedder(client, MODEL, 768, max_concurrency=4)
    try:
        batch = asyncio.create_task(embedder.embed_documents([f"text {i}" for i in range(400)]))
        for _ in range(500):  # until every request slot of documents is taken, backing off
            if len(fake.received) >= 4:
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        assert len(await embedder.embed_query("where did we park?")) == 768
        assert time.monotonic() - started < 1.0  # not after the batch's two-second backoff
        assert len(await batch) == 400
    finally:
        await embedder.aclose()


@pytest.mark.parametrize("reply", [INTERNAL, UNAVAILABLE], ids=["500", "503"])
async def test_a_server_error_for_good_is_unavailable_after_every_try(fake, gemini, reply):
    fake.always(reply)

    with pytest.raises(EmbedderUnavailable, match=rf"unavailable .*{reply.status}"):
        await gemini.embed_documents(["hello"])

    assert len(fake.received) == 3


async def test_no_answer_in_time_is_unavailable_within_a_bounded_time(fake):
    fake.always(Reply(delay=10))
    embedder = embedder_on(fake, timeout=0.3, max_retries=1)
    started = time.monotonic()
    try:
        with pytest.raises(EmbedderUnavailable, match="Timeout"):
            await embedder.embed_documents(["hello"])
    finally:
        await embedder.aclose()
    assert time.monotonic() - started < 2.0  # two tries of 0.3 s, not the fake's 10 s
    assert len(fake.received) == 2


async def test_no_server_at_all_is_unavailable(fake):
    client = gemini_client(KEY, "http://127.0.0.1:9", 1.0, 1, retry_initial_delay=0.001)  # the discard port
    embedder = GeminiEmbedder(client, MODEL)
    try:
        with pytest.raises(EmbedderUnavailable, match="no answer from the Gemini API"):
            await embedder.embed_query("hello")
    finally:
        await embedder.aclose()


@pytest.mark.parametrize(
    ("reply", "texts", "problem"),
    [
        (NOT_JSON, ["a"], "malformed"),
        (NO_EMBEDDINGS, ["a"], "0 vectors for 1 texts"),
        (Reply(count_offset=-1), ["a", "b"], "1 vectors for 2 texts"),
        (Reply(dimensions=5), ["a"], "5 dimensions, not 3"),
        (NOT_FINITE, ["a"], "not finite"),
    ],
    ids=["not-json", "no-embeddings", "too-few-vectors", "wrong-dimension", "nan"],
)
async def test_a_malformed_answer_is_unavailable_not_the_messages_fault(fake, reply, texts, problem):
    fake.always(reply)
    embedder = embedder_on(fake, dimensions=3)
    try:
        with pytest.raises(EmbedderUnavailable, match=problem):
            await embedder.embed_documents(texts)
    finally:
        await embedder.aclose()


async def test_a_bad_key_is_unavailable_fails_readiness_with_the_reason_then_recovers(fake, gemini):
    fake.always(BAD_KEY)

    with pytest.raises(EmbedderUnavailable, match="MEMORY_GEMINI_API_KEY"):
        await gemini.embed_documents(["hello"])
    assert len(fake.received) == 1  # a 400 is not retried
    with pytest.raises(EmbedderUnavailable, match="API key not valid"):
        await gemini.check()

    fake.always(OK)  # the key works again (re-enabled, billing fixed)
    await gemini.embed_query("hello")
    await gemini.check()


async def test_an_unknown_model_fails_readiness_naming_the_setting(fake, gemini):
    fake.always(Reply(404, error_body(404, "NOT_FOUND", f"models/{MODEL} is not found for API version v1beta")))

    with pytest.raises(EmbedderUnavailable, match="MEMORY_GEMINI_MODEL"):
        await gemini.embed_query("hello")
    with pytest.raises(EmbedderUnavailable, match="MEMORY_GEMINI_MODEL"):
        await gemini.check()


async def test_a_text_the_api_refuses_is_that_messages_own_failure(fake, gemini):
    fake.script(BAD_TEXT)

    with pytest.raises(ValueError, match="refused the text: 400 INVALID_ARGUMENT"):
        await gemini.embed_documents(["a text the API will not take"])
    await gemini.check()  # nothing wrong with the service


@pytest.mark.parametrize(
    ("replies", "error", "message"),
    [((BAD_TEXT,), ValueError, "refused the text"), ((QUOTA,) * 10, EmbedderUnavailable, "quota")],
    ids=["refused-text", "quota"],
)
async def test_a_failure_in_one_of_several_requests_is_raised_as_itself(fake, gemini, replies, error, message):
    fake.script(*replies)

    with pytest.raises(error, match=message) as raised:  # not an ExceptionGroup: the worker acts on the type
        await gemini.embed_documents([f"note {i}" for i in range(150)])

    assert isinstance(raised.value.__cause__, APIError)  # the SDK's error stays in the traceback


def gemini_settings(fake: FakeGemini, **fields: object) -> Settings:
    return Settings(
        _env_file=None,
        embedding_provider="google_gemini",
        gemini_api_key=KEY,
        gemini_base_url=fake.base_url,
        **fields,
    )


@pytest.mark.parametrize(("dimensions", "expected"), [(None, 768), (1536, 1536)])
async def test_the_container_opens_it_from_settings_and_probes_once(fake, dimensions, expected):
    resource = open_gemini_embedder(gemini_settings(fake, gemini_model=MODEL, embedding_dimensions=dimensions))
    embedder = await anext(resource)
    try:
        (probe,) = fake.received
        assert probe.path == BATCH_PATH and probe.headers["x-goog-api-key"] == KEY
        assert probe.requests[0]["taskType"] == "RETRIEVAL_QUERY"
        assert probe.requests[0]["outputDimensionality"] == expected
        assert (embedder.model_name, embedder.dimensions) == (MODEL, expected)
        await embedder.check()
        await embedder.check()
        assert len(fake.received) == 1  # readiness does not call the API
    finally:
        await resource.aclose()
    with pytest.raises(EmbedderUnavailable, match="shut down"):
        await embedder.check()


async def test_a_bad_key_at_start_fails_readiness_not_the_start(fake):
    fake.always(BAD_KEY)
    resource = open_gemini_embedder(gemini_settings(fake))
    embedder = await anext(resource)  # starts
    try:
        with pytest.raises(EmbedderUnavailable, match=r"MEMORY_GEMINI_API_KEY.*API key not valid"):
            await embedder.check()
    finally:
        await resource.aclose()


async def test_quota_at_start_neither_stops_it_nor_fails_readiness(fake):
    fake.always(QUOTA)
    started = time.monotonic()
    resource = open_gemini_embedder(gemini_settings(fake))  # MEMORY_GEMINI_MAX_RETRIES=4, 1 s backoff
    embedder = await anext(resource)
    try:
        assert len(fake.received) == 1 and time.monotonic() - started < 1.0  # the probe is tried once
        await embedder.check()
    finally:
        await resource.aclose()


async def test_the_worker_keeps_messages_pending_while_the_quota_is_exhausted_then_embeds_them(fake, gemini):
    clock = FixedClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    table = InMemoryMessageTable(clock)
    index = InMemoryVectorIndex()
    counters = EmbeddingCounters()
    retry = RetryPolicy(max_attempts=2, base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=1))
    worker = EmbedPendingMessages(
        InMemoryEmbeddingQueue(table),
        index,
        gemini,
        InMemoryTransactions(table, index),
        InProcessJobQueue(),
        EmbeddingWorkSettings(batch_size=10, lease=timedelta(minutes=1), retry=retry),
        counters,
        InMemoryMetrics(),
    )
    messages = [make("acme", f"note {i}") for i in range(3)]
    for message in messages:
        table.rows[message.id] = message
        table.work[message.id] = EmbeddingWork(stored_at=clock.now(), ready_at=clock.now())
    fake.always(QUOTA)

    for _ in range(4):  # twice max_attempts
        assert await worker() == 0
        clock.current += timedelta(seconds=10)

    assert len(fake.received) == 4 * 3  # each run tried the API three times (max_retries=2)
    for message in messages:
        assert table.rows[message.id].embedding_status is EmbeddingStatus.PENDING
        assert table.work[message.id].attempts == 0  # no try counted
    assert counters.postponed == 12 and counters.failed == 0 and counters.retried == 0

    fake.always(OK)
    assert await worker() == 3

    assert {m.id for m in messages} == set(index.records)
    for message in messages:
        assert table.rows[message.id].embedding_status is EmbeddingStatus.EMBEDDED
        assert index.records[message.id].vector == pytest.approx(unit(fake_vector(message.content, 768)))
