"""Query vectors in this process: a bounded least-recently-used map.

Vectors are kept as float32 arrays: about 1.5 KiB for 384 dimensions, against some 12 KiB
as a list of Python floats.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict

from application.ports.query_cache import QueryVectorCache


class InProcessQueryCache(QueryVectorCache):
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._vectors: OrderedDict[str, array[float]] = OrderedDict()

    async def get(self, key: str) -> list[float] | None:
        vector = self._vectors.get(key)
        if vector is None:
            return None
        self._vectors.move_to_end(key)
        return vector.tolist()

    async def put(self, key: str, vector: list[float]) -> None:
        self._vectors[key] = array("f", vector)
        self._vectors.move_to_end(key)
        while len(self._vectors) > self._max_entries:
            self._vectors.popitem(last=False)
