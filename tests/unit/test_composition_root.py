"""The composition root starts what an entrypoint names, and only that: the model before the
database whenever both are needed, and no model for what needs none (`memorymesh keys`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import providers

from config.container import Container, loads_model, start, stop
from config.settings import Settings
from tests.fakes.embedder import DeterministicEmbedder


def test_only_what_uses_the_model_loads_it() -> None:
    container = Container(settings=Settings(_env_file=None))  # type: ignore[call-arg]
    assert not loads_model(container, container.manage_api_keys)  # keys: the database, never the model
    assert not loads_model(container, container.database_server)
    assert loads_model(container, container.store_messages)
    assert loads_model(container, container.run_retention)  # through the vector index's model record


async def test_the_model_starts_before_the_database_and_keys_start_no_model() -> None:
    started: list[str] = []

    async def model() -> AsyncIterator[DeterministicEmbedder]:
        started.append("model")
        yield DeterministicEmbedder()

    class Unused:
        """Stands in for the database: the adapters built over it are never called here."""

        def __getattr__(self, name: str) -> None:
            return None

    async def database() -> AsyncIterator[Unused]:
        started.append("database")
        yield Unused()

    async def index() -> AsyncIterator[Unused]:
        started.append("index")
        yield Unused()

    container = Container(settings=Settings(_env_file=None))  # type: ignore[call-arg]
    container.embedder.override(providers.Resource(model))
    container.database.override(providers.Resource(database))
    container.vector_index.override(providers.Resource(index))
    try:
        await start(container, Container.manage_api_keys)
        assert started == ["database"]
        # A need that uses the model, after one that did not: its resources start too (after the
        # first start settled the container), rather than arriving as coroutines.
        await start(container, Container.reindex)
        assert started == ["database", "model", "index"]
    finally:
        await stop(container)

    started.clear()
    container = Container(settings=Settings(_env_file=None))  # type: ignore[call-arg]
    container.embedder.override(providers.Resource(model))
    container.database.override(providers.Resource(database))
    container.vector_index.override(providers.Resource(index))
    try:
        await start(container, Container.reindex)
        assert started[0] == "model"
        assert sorted(started) == ["database", "index", "model"]
    finally:
        await stop(container)
