"""The model that turns text into vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.errors import DomainError


class EmbedderUnavailable(DomainError):
    """The embedding model cannot embed right now."""

    code = "embedder_unavailable"


class Embedder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...

    async def check(self) -> None:
        """Raise EmbedderUnavailable when the model cannot embed."""
        ...
