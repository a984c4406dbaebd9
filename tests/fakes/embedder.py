"""A fast, repeatable embedder for tests: hashed bag of words, L2-normalised.

Texts that share words are similar; texts that share none are orthogonal. It knows
nothing of meaning, so tests that need meaning use the real model.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from application.ports.embedder import Embedder

_WORD = re.compile(r"\w+", re.UNICODE)


class DeterministicEmbedder(Embedder):
    def __init__(self, dimensions: int = 384) -> None:
        self._dimensions = dimensions

    @property
    def model_name(self) -> str:
        return f"deterministic-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, text: str) -> list[float]:
        vector = [0.0] * self._dimensions
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0:
            vector[0], norm = 1.0, 1.0
        return [x / norm for x in vector]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed(t) for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self.embed(text)

    async def check(self) -> None:
        return None
