"""Find the past messages that matter for a query, best first."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry import trace

from application.ports.clock import Clock
from application.ports.embedder import Embedder
from application.ports.filters import SearchFilters
from application.ports.messages import MessageRepository
from application.ports.observability import Metrics
from application.ports.query_cache import CacheUnavailable, QueryVectorCache
from application.ports.text_search import KeywordHit, TextSearch
from application.ports.vectors import VectorHit, VectorIndex
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.fusion import lenders, lent, min_max, weighted_sum, with_neighbours
from domain.instant import time_window
from domain.message import (
    EmbeddingStatus,
    Message,
    Role,
    check_id,
    fitting,
    id_problem,
    metadata_problem,
    text_problem,
)
from domain.ranking import RankedMessage, RankingWeights, rank

MAX_TOP_K = 100

logger = logging.getLogger(__name__)

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
    user_id: str | None = None


class SearchMode(enum.StrEnum):
    SEMANTIC = "semantic"  # nearest vectors: meaning, whatever the words
    KEYWORD = "keyword"  # PostgreSQL full-text search: shared words (of the content and its date)
    HYBRID = "hybrid"  # both, scores fused; the best hits lend to their neighbours (domain/fusion.py)


LENDERS = 20  # the best fused hits whose neighbours are looked up (as many more would add nothing measurable)


@dataclass(frozen=True, slots=True)
class SearchSettings:
    weights: RankingWeights
    default_mode: SearchMode = SearchMode.HYBRID  # measured best on LoCoMo: bench/results/quality.md
    # How many nearest neighbours the index returns for re-ranking; at least top_k.
    candidates: int = 100
    max_query_chars: int = 4_000
    # Hybrid: the keyword side's weight in the fusion (the semantic side has the rest), and
    # what a best hit lends to the messages just before and after it (0: nothing). Measured
    # on LoCoMo: bench/results/quality.md.
    keyword_weight: float = 0.6
    neighbour_weight: float = 0.3
    # The answer stops short of this many bytes (about): fewer than top_k results, the best.
    max_response_bytes: int = 1_048_576


class SearchMemory:
    def __init__(
        self,
        messages: MessageRepository,
        text_search: TextSearch,
        index: VectorIndex,
        embedder: Embedder,
        clock: Clock,
        settings: SearchSettings,
        metrics: Metrics,
        query_vectors: QueryVectorCache | None = None,
    ) -> None:
        self._messages = messages
        self._text_search = text_search
        self._index = index
        self._embedder = embedder
        self._query_vectors = query_vectors
        self._cache_warned_at = -math.inf
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
        return ranked[: fitting([r.message for r in ranked], self._settings.max_response_bytes)]

    async def _search(self, query: SearchQuery, filters: SearchFilters, mode: SearchMode) -> list[RankedMessage]:
        k = max(query.top_k, self._settings.candidates)
        # The full-text query runs in PostgreSQL while the model embeds the query.
        words = asyncio.create_task(self._keyword(query, k, filters)) if mode != SearchMode.SEMANTIC else None
        try:
            semantic = await self._semantic(query, k, filters) if mode != SearchMode.KEYWORD else []
        except BaseException:
            if words is not None:
                words.cancel()
                await asyncio.gather(words, return_exceptions=True)  # its own failure is not news
            raise
        keyword = await words if words is not None else []
        by_words = {h.message_id for h in keyword}

        def kept(m: Message) -> bool:
            """The system of record has the last word: an index (Qdrant) may still hold a
            vector whose message is no longer embedded, archived, or not what the filters ask
            for: Qdrant has no metadata, and keeps a time as float Unix seconds, which tell
            microseconds apart today but only about 8 of them at year 1 and 30 at year 9999."""
            if m.id in by_words:
                return m.archived_at is None
            embedded = m.archived_at is None and m.embedding_status == EmbeddingStatus.EMBEDDED
            return embedded and filters.admits(m)

        hits = {h.message_id for h in semantic} | by_words
        found = {m.id: m for m in await self._messages.get_many(query.tenant_id, list(hits)) if kept(m)}
        semantic = [h for h in semantic if h.message_id in found]
        keyword = [h for h in keyword if h.message_id in found]
        parts = relevance_parts(semantic, keyword)
        if mode == SearchMode.SEMANTIC:
            relevance = {h.message_id: h.similarity for h in semantic}
        elif mode == SearchMode.KEYWORD:
            relevance = {h.message_id: parts[h.message_id]["keyword"] for h in keyword}
        else:
            relevance = await self._fuse(query.tenant_id, semantic, keyword, parts, filters, found)
        return rank(
            ((m, relevance[m.id]) for m in found.values() if m.id in relevance),
            now=self._clock.now(),
            weights=self._settings.weights,
            top_k=query.top_k,
            relevance=parts,
        )

    async def _semantic(self, query: SearchQuery, k: int, filters: SearchFilters) -> list[VectorHit]:
        with tracer.start_as_current_span("search.embed_query"):
            vector = await self._query_vector(query.tenant_id, query.query)
        with tracer.start_as_current_span("search.vector_index") as span:
            hits = await self._index.search(query.tenant_id, vector, k, filters)
            span.set_attribute("memorymesh.hits", len(hits))
        return hits

    async def _query_vector(self, tenant_id: str, text: str) -> list[float]:
        """The query's vector, from the cache when this tenant asked the same before.

        Applications ask the same things again, and the vector is the costliest part of a
        search (bench/results/search.md). The key holds the tenant, so one tenant's searches
        never tell another anything (not even by being fast), and the model and dimension,
        so another model never answers from old vectors. A cache that cannot answer costs a
        miss, never the search."""
        if self._query_vectors is None:
            return await self._embedder.embed_query(text)
        model, dimensions = self._embedder.model_name, self._embedder.dimensions
        key = hashlib.sha256("\x00".join((tenant_id, model, str(dimensions), text)).encode()).hexdigest()
        try:
            vector = await self._query_vectors.get(key)
        except CacheUnavailable as error:
            self._cache_unavailable(error)
            return await self._embedder.embed_query(text)
        if vector is not None and len(vector) == dimensions:
            self._metrics.query_cache("hit")
            return vector
        self._metrics.query_cache("miss")
        vector = await self._embedder.embed_query(text)
        try:
            await self._query_vectors.put(key, vector)
        except CacheUnavailable as error:
            self._cache_unavailable(error)
        return vector

    def _cache_unavailable(self, error: CacheUnavailable) -> None:
        self._metrics.query_cache("error")
        if time.monotonic() - self._cache_warned_at >= 60:  # a warning a minute, not one a search
            self._cache_warned_at = time.monotonic()
            logger.warning("query-vector cache unavailable; searching without it", extra={"error": str(error)})

    async def _keyword(self, query: SearchQuery, k: int, filters: SearchFilters) -> list[KeywordHit]:
        with tracer.start_as_current_span("search.keyword") as span:
            hits = await self._text_search.keyword_search(query.tenant_id, query.query, k, filters)
            span.set_attribute("memorymesh.hits", len(hits))
        return hits

    async def _fuse(
        self,
        tenant_id: str,
        semantic: list[VectorHit],
        keyword: list[KeywordHit],
        parts: dict[uuid.UUID, dict[str, float]],
        filters: SearchFilters,
        found: dict[uuid.UUID, Message],
    ) -> dict[uuid.UUID, float]:
        """Fused relevance of the hits and of their neighbours; the neighbours it keeps are
        added to `found`."""
        weight = self._settings.keyword_weight
        sides = [  # each side min-max scaled over its own hits, once: for the fusion and for explain
            ("semantic", 1 - weight, min_max({h.message_id: h.similarity for h in semantic})),
            ("keyword", weight, min_max({h.message_id: h.rank for h in keyword})),
        ]
        fused = weighted_sum([(side_weight, scaled) for _, side_weight, scaled in sides])
        for side, _, scaled in sides:  # explain: fused = 0.4 * semantic_scaled + 0.6 * keyword_scaled
            for message_id, value in scaled.items():
                parts[message_id][f"{side}_scaled"] = value
        borrowed: dict[uuid.UUID, float] = {}
        if fused and self._settings.neighbour_weight > 0:
            with tracer.start_as_current_span("search.neighbours"):
                adjacent = await self._text_search.adjacent(tenant_id, lenders(fused, LENDERS))
                for neighbours in adjacent.values():
                    for m in neighbours:  # a neighbour came from no search: every filter is checked here
                        if m.id not in found and m.archived_at is None and filters.admits(m):
                            found[m.id] = m
            ids = {lender: [m.id for m in neighbours] for lender, neighbours in adjacent.items()}
            borrowed = {n: value for n, value in lent(fused, ids).items() if n in found}
        final = with_neighbours(fused, borrowed, self._settings.neighbour_weight)
        for message_id in final:  # explain: final = (fused + neighbour_weight * neighbour) / (1 + neighbour_weight)
            parts[message_id].update(fused=fused.get(message_id, 0.0), neighbour=borrowed.get(message_id, 0.0))
        return final

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
        elif (problem := text_problem("query", query.query)) is not None:  # PostgreSQL would refuse it (a 500)
            problems.append(problem)
        if query.mode is not None and query.mode not in set(SearchMode):
            problems.append(FieldProblem("mode", f"must be one of {', '.join(m.value for m in SearchMode)}"))
        if query.metadata is not None and (problem := metadata_problem(query.metadata)) is not None:
            problems.append(problem)
        if not 1 <= query.top_k <= MAX_TOP_K:
            problems.append(FieldProblem("top_k", f"must be between 1 and {MAX_TOP_K}"))
        for name, value in (("conversation_id", query.conversation_id), ("user_id", query.user_id)):
            if value is not None and (problem := id_problem(name, value)) is not None:
                problems.append(problem)
        role = None
        if query.role is not None:
            try:
                role = Role(query.role)
            except ValueError:
                problems.append(FieldProblem("role", f"must be one of {', '.join(r.value for r in Role)}"))
        if query.min_importance is not None and not 0.0 <= query.min_importance <= 1.0:
            problems.append(FieldProblem("min_importance", "must be between 0 and 1"))
        since = until = None
        try:
            since, until = time_window(query.since, query.until)
        except ValidationFailed as error:
            problems.extend(error.problems)
        if problems:
            raise ValidationFailed(problems)
        return SearchFilters(
            metadata=query.metadata or None,
            conversation_id=query.conversation_id,
            role=role,
            since=since,
            until=until,
            min_importance=query.min_importance,
            user_id=query.user_id,
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
