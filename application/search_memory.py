"""Find the past messages that matter for a query, best first."""

from __future__ import annotations

import enum
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry import trace

from application.ports import (
    Clock,
    Embedder,
    KeywordHit,
    MessageRepository,
    Metrics,
    SearchFilters,
    VectorHit,
    VectorIndex,
)
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.fusion import reciprocal_rank_fusion
from domain.message import EmbeddingStatus, Role, check_id, instant_problem, metadata_problem
from domain.ranking import RankedMessage, RankingWeights, rank

MAX_TOP_K = 100

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
    mode: str | None = None  # semantic | keyword | hybrid; None: the service's default
    metadata: dict[str, Any] | None = None


class SearchMode(enum.StrEnum):
    SEMANTIC = "semantic"  # nearest vectors: meaning, whatever the words
    KEYWORD = "keyword"  # PostgreSQL full-text search: shared words
    HYBRID = "hybrid"  # both, fused by rank


@dataclass(frozen=True, slots=True)
class SearchSettings:
    weights: RankingWeights
    default_mode: SearchMode = SearchMode.HYBRID  # measured best on LoCoMo: bench/results/quality.md
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
        mode = SearchMode(query.mode) if query.mode else self._settings.default_mode
        started = time.perf_counter()
        ranked = await self._search(query, filters, mode)
        self._metrics.search_finished(mode.value, time.perf_counter() - started)
        return ranked

    async def _search(self, query: SearchQuery, filters: SearchFilters, mode: SearchMode) -> list[RankedMessage]:
        k = max(query.top_k, self._settings.candidates)
        semantic: list[VectorHit] = []
        keyword: list[KeywordHit] = []
        if mode != SearchMode.KEYWORD:
            with tracer.start_as_current_span("search.embed_query"):
                vector = await self._embedder.embed_query(query.query)
            with tracer.start_as_current_span("search.vector_index") as span:
                semantic = await self._index.search(query.tenant_id, vector, k, filters)
                span.set_attribute("memorymesh.hits", len(semantic))
        if mode != SearchMode.SEMANTIC:
            with tracer.start_as_current_span("search.keyword") as span:
                keyword = await self._messages.keyword_search(query.tenant_id, query.query, k, filters)
                span.set_attribute("memorymesh.hits", len(keyword))
        parts = relevance_parts(semantic, keyword)
        if mode == SearchMode.SEMANTIC:
            relevance = {h.message_id: h.similarity for h in semantic}
        elif mode == SearchMode.KEYWORD:
            relevance = {h.message_id: parts[h.message_id]["keyword"] for h in keyword}
        else:
            relevance = reciprocal_rank_fusion([[h.message_id for h in semantic], [h.message_id for h in keyword]])
            for message_id, fused in relevance.items():
                parts[message_id]["fused"] = fused
        if not relevance:
            return []
        found_by_words = {h.message_id for h in keyword}
        # The system of record has the last word: an index (Qdrant) may still hold a vector
        # whose message is no longer embedded, archived, or not what the filters ask for.
        found = [
            m
            for m in await self._messages.get_many(query.tenant_id, list(relevance))
            if m.archived_at is None
            and (m.id in found_by_words or m.embedding_status == EmbeddingStatus.EMBEDDED)
            and contains(m.metadata, filters.metadata)
        ]
        return rank(
            ((m, relevance[m.id]) for m in found),
            now=self._clock.now(),
            weights=self._settings.weights,
            top_k=query.top_k,
            relevance=parts,
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
        if query.mode is not None and query.mode not in set(SearchMode):
            problems.append(FieldProblem("mode", f"must be one of {', '.join(m.value for m in SearchMode)}"))
        if query.metadata is not None and (problem := metadata_problem(query.metadata)) is not None:
            problems.append(problem)
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
            metadata=query.metadata or None,
            conversation_id=query.conversation_id,
            role=role,
            since=query.since,
            until=query.until,
            min_importance=query.min_importance,
        )


def relevance_parts(semantic: list[VectorHit], keyword: list[KeywordHit]) -> dict[uuid.UUID, dict[str, float]]:
    """Per candidate, what each way of searching said of it: score and rank (1 = best)."""
    parts: dict[uuid.UUID, dict[str, float]] = defaultdict(dict)
    for position, hit in enumerate(semantic, start=1):
        parts[hit.message_id].update(semantic=hit.similarity, semantic_rank=position)
    best = max((h.rank for h in keyword), default=0.0) or 1.0
    for position, found in enumerate(keyword, start=1):
        parts[found.message_id].update(keyword=found.rank / best, keyword_rank=position)
    return parts


def contains(metadata: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    """JSON containment, as PostgreSQL's @>: every key of `wanted` holds a value contained in ours."""
    if not wanted:
        return True
    return all(key in metadata and contained(value, metadata[key]) for key, value in wanted.items())


def contained(wanted: Any, value: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(value, dict) and contains(value, wanted)
    if isinstance(wanted, list):
        return isinstance(value, list) and all(any(contained(w, v) for v in value) for w in wanted)
    return bool(wanted == value and type(wanted) is type(value))
