"""An embedder that remembers the query vectors it made (documents pass straight through).

Applications ask the same things again ("what did I say about my diet?"), and a query's
vector is the most expensive part of a search (bench/results/search.md). The key is the
model's name and the text, hashed, so a change of model never answers from old vectors.
A cache that cannot answer (Redis down) costs a miss, never a failed search.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence

from application.ports import CacheUnavailable, Embedder, Metrics, QueryVectorCache

logger = logging.getLogger(__name__)


class CachedQueryEmbedder(Embedder):
    def __init__(self, inner: Embedder, cache: QueryVectorCache, metrics: Metrics) -> None:
        self._inner = inner
        self._cache = cache
        self._metrics = metrics

    @property
    def model_name(self) -> str:
        return self._inner.model_name

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._inner.embed_documents(texts)

    async def embed_query(self, text: str) -> list[float]:
        key = hashlib.sha256(f"{self.model_name}\x00{self.dimensions}\x00{text}".encode()).hexdigest()
        try:
            vector = await self._cache.get(key)
        except CacheUnavailable as error:
            self._metrics.query_cache("error")
            logger.warning("query cache unavailable", extra={"error": str(error)})
            return await self._inner.embed_query(text)
        if vector is not None and len(vector) == self.dimensions:
            self._metrics.query_cache("hit")
            return vector
        self._metrics.query_cache("miss")
        vector = await self._inner.embed_query(text)
        with contextlib.suppress(CacheUnavailable):  # counted on the next get
            await self._cache.put(key, vector)
        return vector

    async def check(self) -> None:
        await self._inner.check()
