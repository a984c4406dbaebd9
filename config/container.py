"""The one composition root: every pool, client, adapter and use case is built here.

Pools and models are Resources (started in `init_resources`, closed in
`shutdown_resources`), adapters Singletons, use cases Factories. Nothing is built at
import time, and heavy libraries are imported only by the backend that needs them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.keys import ChainedApiKeys, SettingsApiKeys
from adapters.postgres.api_keys import PgApiKeyStore
from adapters.postgres.database import DatabaseOptions, PgTransactions, open_database
from adapters.postgres.message_repository import PgMessageRepository
from adapters.postgres.vector_index import PgVectorIndex
from application.bootstrap import EnsureAdminKey
from application.get_message import GetMessage
from application.ports import Embedder
from application.search_memory import SearchMemory, SearchSettings
from application.store_message import StoreMessage
from config.settings import Settings
from domain.message import ContentLimits
from domain.ranking import RankingWeights


async def resolved(value: Any) -> Any:
    """A provider's value: awaited when it depends on an async resource."""
    return await value if inspect.isawaitable(value) else value


async def open_sentence_transformer(settings: Settings) -> AsyncIterator[Embedder]:
    from adapters.embeddings.sentence_transformers import (
        SentenceTransformerEmbedder,
        bundled_model_path,
        load_model,
    )

    path = settings.embedding_model or bundled_model_path()
    model = await asyncio.to_thread(load_model, path, settings.embedding_device)
    embedder = SentenceTransformerEmbedder(
        model,
        model_name=str(settings.embedding_model or "all-MiniLM-L6-v2"),
        batch_size=settings.embedding_batch_size,
        max_concurrency=settings.embedding_max_concurrency,
        max_pending=settings.embedding_max_pending,
    )
    try:
        yield embedder
    finally:
        embedder.close()


def database_options(settings: Settings) -> DatabaseOptions:
    return DatabaseOptions(
        url=settings.database_url,
        data_dir=settings.data_dir,
        pool_min_size=settings.db_pool_min_size,
        pool_max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout_seconds,
        auto_migrate=settings.auto_migrate,
    )


def ranking_weights(settings: Settings) -> RankingWeights:
    return RankingWeights(
        similarity=settings.ranking_similarity_weight,
        importance=settings.ranking_importance_weight,
        recency=settings.ranking_recency_weight,
        half_life=timedelta(days=settings.ranking_half_life_days),
    )


def search_settings(settings: Settings) -> SearchSettings:
    return SearchSettings(
        weights=ranking_weights(settings),
        candidates=settings.search_candidates,
        max_query_chars=settings.max_query_chars,
    )


def settings_api_keys(settings: Settings) -> SettingsApiKeys:
    return SettingsApiKeys(settings.configured_keys())


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)

    embedder = providers.Selector(
        settings.provided.embedding_provider,
        sentence_transformers=providers.Resource(open_sentence_transformer, settings=settings),
    )

    database = providers.Resource(
        open_database,
        options=providers.Callable(database_options, settings),
        dimensions=embedder.provided.dimensions,
    )

    transactions = providers.Singleton(PgTransactions, database=database)
    messages = providers.Singleton(PgMessageRepository, database=database)
    vector_index = providers.Singleton(PgVectorIndex, database=database)
    key_store = providers.Singleton(PgApiKeyStore, database=database)
    settings_keys = providers.Singleton(settings_api_keys, settings)
    api_keys = providers.Singleton(ChainedApiKeys, settings_keys, key_store)

    store_message = providers.Factory(
        StoreMessage,
        messages=messages,
        index=vector_index,
        embedder=embedder,
        transactions=transactions,
        clock=clock,
        limits=providers.Singleton(lambda s: ContentLimits(max_content_chars=s.max_content_chars), settings),
    )
    get_message = providers.Factory(GetMessage, messages=messages)
    search_memory = providers.Factory(
        SearchMemory,
        messages=messages,
        index=vector_index,
        embedder=embedder,
        clock=clock,
        settings=providers.Singleton(search_settings, settings),
    )
    ensure_admin_key = providers.Factory(
        EnsureAdminKey,
        store=key_store,
        keys_configured=providers.Callable(lambda s: bool(s.configured_keys()), settings),
    )
