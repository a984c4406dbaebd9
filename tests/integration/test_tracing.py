"""The span tree of one search, through the real app on PostgreSQL, with the in-memory exporter."""

from collections.abc import Iterator

import httpx
import pytest
from dependency_injector import providers
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from config.container import Container
from config.settings import Settings
from entrypoints.http.app import create_app
from tests.conftest import DIMENSIONS, new_database
from tests.fakes.embedder import DeterministicEmbedder

KEY = "tracing-admin-key-00001"


class WhileActive(SimpleSpanProcessor):
    """Exports only while a test wants spans: the provider outlives the test (OpenTelemetry
    allows one per process), and the other tests' spans must not pile up in memory."""

    active = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            super().on_end(span)


MEMORY = InMemorySpanExporter()
PROCESSOR = WhileActive(MEMORY)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(PROCESSOR)
        trace.set_tracer_provider(provider)
    PROCESSOR.active = True
    yield MEMORY
    PROCESSOR.active = False
    MEMORY.clear()


async def test_one_search_is_one_trace_down_to_the_database(exporter, pg_dsn, tmp_path):
    async with new_database(pg_dsn) as dsn:
        settings = Settings(
            _env_file=None,
            database_url=dsn,
            data_dir=tmp_path,
            admin_api_keys=KEY,
            embedding_mode="inline",
            retention_schedule_seconds=0,
        )
        container = Container(settings=settings)
        container.embedder.override(providers.Object(DeterministicEmbedder(DIMENSIONS)))
        app = create_app(container)
        async with app.test_app():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://memorymesh") as client:
                headers = {"x-api-key": KEY}
                body = {"tenant_id": "t", "conversation_id": "c", "role": "user", "content": "green tea"}
                assert (await client.post("/v1/messages", json=body, headers=headers)).status_code == 201
                exporter.clear()
                caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                found = await client.get(
                    "/v1/memory/search",
                    params={"tenant_id": "t", "query": "tea"},
                    headers={**headers, "traceparent": caller},
                )
                assert found.status_code == 200

    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}
    root = by_name["GET /v1/memory/search"]
    embed, search = by_name["search.embed_query"], by_name["search.vector_index"]
    index_query = by_name["db PgVectorIndex.search"]
    rows = by_name["db PgMessageRepository.get_many"]

    assert {s.context.trace_id for s in spans} == {0x0AF7651916CD43DD8448EB211C80319C}  # the caller's trace
    assert root.parent.span_id == 0xB7AD6B7169203331
    assert root.attributes["http.route"] == "/v1/memory/search"
    assert embed.parent.span_id == root.context.span_id
    assert search.parent.span_id == root.context.span_id
    assert index_query.parent.span_id == search.context.span_id
    assert rows.parent.span_id == root.context.span_id
    assert index_query.attributes["db.system"] == "postgresql"
    assert "tea" not in str([dict(s.attributes or {}) for s in spans])  # no query text in the spans
