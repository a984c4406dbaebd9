"""The record of which model made the stored vectors, and the switch to another."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from application.ports.storage import StorageUnavailable
from domain.message import Message


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """A model and the dimension of its vectors: the vectors of two models are never compared."""

    name: str
    dimensions: int

    def __post_init__(self) -> None:
        if not self.name or self.dimensions < 1:
            raise ValueError(f"an embedding model needs a name and a dimension, not {self.name!r}, {self.dimensions}")

    def __str__(self) -> str:
        return f"{self.name} ({self.dimensions} dimensions)"


class EmbeddingModelChanged(StorageUnavailable):
    """The stored vectors were made by another model than this process's."""

    code = "embedding_model_changed"


class EmbeddingModels(Protocol):
    """The record of which model made the stored vectors, and the re-embedding of every
    message with another model beside them (`memorymesh reembed`)."""

    async def claim(self, model: EmbeddingModel) -> int:
        """The id of the record of `model`: the active one, or the one a reembed is building
        (its process serves once the switch is made). A database with no record yet records
        `model` as active. Raises EmbeddingModelChanged, naming the fix, when another model
        made the stored vectors."""
        ...

    async def active(self) -> EmbeddingModel | None: ...

    async def start_build(self, model: EmbeddingModel) -> None:
        """Make room for `model`'s vectors beside the active ones; a build of the same model
        left unfinished is taken up where it stopped, a build of another is dropped."""
        ...

    async def abandon_build(self) -> bool:
        """Drop an unfinished build and its vectors; False when there was none."""
        ...

    async def unbuilt(self, after: uuid.UUID | None, limit: int) -> list[Message]:
        """Messages, in id order after `after`, whose vector exists in the active model only."""
        ...

    async def count_unbuilt(self) -> int: ...

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int:
        """Store new-model vectors; one whose message changed since it was read is left out
        (it shows up as unbuilt again). Returns how many were stored."""
        ...

    async def index_build(self) -> None:
        """Build the search index over the new vectors (search still reads the old ones)."""
        ...

    def switch(self, model: EmbeddingModel) -> AbstractAsyncContextManager[ModelSwitch]:
        """Hold off every vector write, let the caller build the last few, then make the
        vectors built for `model` the searched ones, all in one transaction: a search sees
        either every old vector or every new one."""
        ...


class ModelSwitch(Protocol):
    """The last steps of a model change, inside the switch's transaction."""

    async def unbuilt(self) -> list[Message]: ...

    async def put_built(self, vectors: Sequence[tuple[Message, list[float]]]) -> int: ...

    async def requeue(self, message_ids: Sequence[uuid.UUID]) -> None:
        """Messages the new model could not embed: pending again, to be retried by workers."""
        ...
