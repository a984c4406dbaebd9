"""Query vectors in this process: a bounded least-recently-used map."""

from __future__ import annotations

from collections import OrderedDict

from application.ports import QueryVectorCache


class LruQueryCache(QueryVectorCache):
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()

    async def get(self, key: str) -> list[float] | None:
        vector = self._vectors.get(key)
        if vector is not None:
            self._vectors.move_to_end(key)
        return vector

    async def put(self, key: str, vector: list[float]) -> None:
        self._vectors[key] = vector
        self._vectors.move_to_end(key)
        while len(self._vectors) > self._max_entries:
            self._vectors.popitem(last=False)
