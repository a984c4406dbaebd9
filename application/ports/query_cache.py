"""Query vectors already made."""

from __future__ import annotations

from typing import Protocol


class QueryVectorCache(Protocol):
    """Query vectors already made, by key (the model and the query text, hashed). A cache
    may forget anything at any time; a failure to reach it raises CacheUnavailable."""

    async def get(self, key: str) -> list[float] | None: ...

    async def put(self, key: str, vector: list[float]) -> None: ...


class CacheUnavailable(Exception):
    """The cache could not answer: a search carries on without it."""
