"""Find the past messages that matter for a query, best first."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import trace

from application.ports import Clock, Embedder, MessageRepository, Metrics, SearchFilters, VectorIndex
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.message import EmbeddingStatus, Role, check_id, instant_problem
from domain.ranking import RankedMessage, RankingWeights, rank

MAX_TOP_K = 100
SEMANTIC = "semantic"  # the one search mode so far

# OpenTelemetry's API (a no-op until an entrypoint installs a tracer provider).
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    tenant_id: str
    query: str
    top_k: int = 5
    conversation_id: str | None = None
    role: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None


@dataclass(frozen=True, slots=True)
class SearchSettings:
    weights: RankingWeights
    # How many nearest neighbours the index returns for re-ranking; at least top_k.
    candidates: int = 100
    max_query_chars: int = 4_000


class SearchMemory:
    def __init__(
        self,
        messages: MessageRepository,
        index: VectorIndex,
        embedder: Embedder,
        clock: Clock,
        settings: SearchSettings,
        metrics: Metrics,
    ) -> None:
        self._messages = messages
        self._index = index
        self._embedder = embedder
        self._clock = clock
        self._settings = settings
        self._metrics = metrics

    async def __call__(self, principal: Principal, query: SearchQuery) -> list[RankedMessage]:
        filters = self._validate(query)
        principal.require_tenant(query.tenant_id)
        started = time.perf_counter()
        ranked = await self._search(query, filters)
        self._metrics.search_finished(SEMANTIC, time.perf_counter() - started)
        return ranked

    async def _search(self, query: SearchQuery, filters: SearchFilters) -> list[RankedMessage]:
        with tracer.start_as_current_span("search.embed_query"):
            vector = await self._embedder.embed_query(query.query)
        with tracer.start_as_current_span("search.vector_index") as span:
            hits = await self._index.search(
                query.tenant_id, vector, max(query.top_k, self._settings.candidates), filters
            )
            span.set_attribute("memorymesh.hits", len(hits))
        if not hits:
            return []
        similarity = {hit.message_id: hit.similarity for hit in hits}
        # The system of record has the last word: an index (Qdrant) may still hold a vector
        # whose message is no longer embedded or searchable there.
        found = [
            m
            for m in await self._messages.get_many(query.tenant_id, list(similarity))
            if m.embedding_status == EmbeddingStatus.EMBEDDED and m.archived_at is None
        ]
        return rank(
            ((m, similarity[m.id]) for m in found),
            now=self._clock.now(),
            weights=self._settings.weights,
            top_k=query.top_k,
        )

    def _validate(self, query: SearchQuery) -> SearchFilters:
        problems: list[FieldProblem] = []
        check_id("tenant_id", query.tenant_id)
        if not query.query.strip():
            problems.append(FieldProblem("query", "must not be empty"))
        elif len(query.query) > self._settings.max_query_chars:
            problems.append(
                FieldProblem(
                    "query", f"is {len(query.query)} characters; the limit is {self._settings.max_query_chars}"
                )
            )
        if not 1 <= query.top_k <= MAX_TOP_K:
            problems.append(FieldProblem("top_k", f"must be between 1 and {MAX_TOP_K}"))
        if query.conversation_id is not None:
            try:
                check_id("conversation_id", query.conversation_id)
            except ValidationFailed as error:
                problems.extend(error.problems)
        role = None
        if query.role is not None:
            try:
                role = Role(query.role)
            except ValueError:
                problems.append(FieldProblem("role", f"must be one of {', '.join(r.value for r in Role)}"))
        if query.min_importance is not None and not 0.0 <= query.min_importance <= 1.0:
            problems.append(FieldProblem("min_importance", "must be between 0 and 1"))
        for name, moment in (("since", query.since), ("until", query.until)):
            if (problem := instant_problem(name, moment)) is not None:
                problems.append(problem)
        if not problems and query.since and query.until and query.since > query.until:
            problems.append(FieldProblem("since", "must not be after until"))
        if problems:
            raise ValidationFailed(problems)
        return SearchFilters(
            conversation_id=query.conversation_id,
            role=role,
            since=query.since,
            until=query.until,
            min_importance=query.min_importance,
        )
