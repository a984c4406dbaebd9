"""The one composition root: every pool, client, adapter and use case is built here.

Pools and models are Resources, adapters Singletons, use cases Factories. An entrypoint
starts what it uses with `start` (or `running`) and stops it with `stop`. Nothing is built
at import time, and heavy libraries are imported only by the backend that needs them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.inprocess.job_queue import InProcessJobQueue
from adapters.inprocess.query_cache import InProcessQueryCache
from adapters.inprocess.rate_limiter import InProcessRateLimiter
from adapters.keys import ChainedApiKeys
from adapters.postgres.api_keys import PgApiKeyStore
from adapters.postgres.database import PgTransactions, open_database
from adapters.postgres.directory import PgTenantDirectory
from adapters.postgres.embedding_models import PgEmbeddingModels
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageCatalog, PgMessageRepository
from adapters.postgres.retention import PgRetentionCandidates, PgRetentionPolicyStore, PgRetentionRuns
from adapters.postgres.schema import PgSchema
from adapters.postgres.statistics import statistics_upkeep
from adapters.postgres.tenant_limits import PgTenantLimitStore
from adapters.postgres.text_search import PgTextSearch
from adapters.postgres.users import PgUserMessages
from adapters.postgres.vector_index import PgVectorIndex
from adapters.prometheus.metrics import PrometheusMetrics
from adapters.tokenizers.bpe_openai import BpeOpenAiTokenizer
from application.api_keys import ManageApiKeys
from application.bootstrap import EnsureAdminKey
from application.browse_tenants import BrowseTenants
from application.build_context import BuildContext
from application.delete_messages import DeleteMessage, EraseMessages
from application.embed_pending import EmbeddingCounters, EmbedPendingMessages, SweepEmbeddings
from application.fair_share import TenantShares
from application.get_message import GetMessage
from application.list_conversation import ListConversation
from application.queue_status import QueueStatus, RequeueFailed
from application.reembed import Reembed
from application.reindex import Reindex
from application.restore_message import ArchiveMessage, RestoreMessage
from application.retention import RunRetention, TenantRetention
from application.search_memory import SearchMemory
from application.store_messages import StoreMessages
from application.tenant_limits import CachedTenantLimits, TenantLimits
from application.throttle import Throttle, ThrottleCounters
from application.update_message import UpdateMessage
from application.users import EraseUser, ExportUser, ListUserMessages
from application.wait_for_embedding import WaitForEmbedding
from config.resources import (
    claim_embedding_model,
    context_settings,
    database_options,
    embedding_work_settings,
    fair_share_settings,
    keyword_limits,
    local_runtime,
    model_dimensions,
    open_arq_queue,
    open_database_server,
    open_gemini_embedder,
    open_onnx_embedder,
    open_qdrant_index,
    open_redis_query_cache,
    open_redis_rate_limiter,
    open_sentence_transformer,
    query_cache_kind,
    report_pool_state,
    search_settings,
    settings_api_keys,
    store_settings,
    throttle_settings,
)
from config.settings import Settings


async def resolved(value: Any) -> Any:
    """A provider's value: awaited when it depends on an async resource."""
    return await value if inspect.isawaitable(value) else value


def settle(container: containers.Container) -> None:
    """Call once every async resource has started: from then on providers hand out plain
    objects. Otherwise each injection of a use case costs a future and a gather per
    request (about a sixth of a write's CPU, measured), and a request cancelled by its
    client trips dependency-injector's future callbacks (InvalidStateError in the log).
    Shutting resources down still awaits them.
    """
    provider: providers.Provider[Any]
    for provider in container.traverse():
        provider.disable_async_mode()


def unsettle(container: containers.Container) -> None:
    """Undo `settle` before starting more: providers find out again whether they are async."""
    provider: providers.Provider[Any]
    for provider in container.traverse():
        provider.reset_async_mode()


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)

    metrics = providers.Singleton(PrometheusMetrics)

    embedder = providers.Selector(
        settings.provided.embedding_provider,
        sentence_transformers=providers.Selector(
            providers.Singleton(local_runtime, settings),
            torch=providers.Resource(open_sentence_transformer, settings=settings, metrics=metrics),
            onnx=providers.Resource(open_onnx_embedder, settings=settings, metrics=metrics),
        ),
        google_gemini=providers.Resource(open_gemini_embedder, settings=settings),
    )

    database_config = providers.Singleton(database_options, settings)
    # Asked only when a migration must run: a command that needs no model loads none.
    vector_dimensions = providers.Callable(model_dimensions, embedder.provider)
    database = providers.Resource(open_database, options=database_config, dimensions=vector_dimensions)
    database_server = providers.Resource(open_database_server, options=database_config)
    schema = providers.Singleton(PgSchema, options=database_config, dimensions=vector_dimensions)

    transactions = providers.Singleton(PgTransactions, database=database)
    statistics = providers.Resource(
        statistics_upkeep, database=database, after_rows=settings.provided.analyze_after_rows
    )
    messages = providers.Singleton(PgMessageRepository, database=database, statistics=statistics)
    message_catalog = providers.Singleton(PgMessageCatalog, database=database)
    user_messages = providers.Singleton(PgUserMessages, database=database)
    tenant_directory = providers.Singleton(PgTenantDirectory, database=database)
    embedding_queue = providers.Singleton(PgEmbeddingQueue, database=database, statistics=statistics)
    retention_candidates = providers.Singleton(PgRetentionCandidates, database=database)
    text_search = providers.Singleton(
        PgTextSearch, database=database, keyword_limits=providers.Callable(keyword_limits, settings)
    )
    embedding_models = providers.Singleton(PgEmbeddingModels, database=database)
    locks = providers.Singleton(PgLocks, database=database)
    report_pool = providers.Callable(report_pool_state, database=database, metrics=metrics)
    # Resolved with the vector index: no process reads or writes vectors of another model.
    embedding_model_id = providers.Resource(claim_embedding_model, models=embedding_models, embedder=embedder)
    vector_index = providers.Selector(
        settings.provided.vector_store,
        pgvector=providers.Singleton(PgVectorIndex, database=database, model_id=embedding_model_id),
        qdrant=providers.Resource(
            open_qdrant_index,
            settings=settings,
            dimensions=embedder.provided.dimensions,
            model_id=embedding_model_id,
        ),
    )
    key_store = providers.Singleton(PgApiKeyStore, database=database)
    settings_keys = providers.Singleton(settings_api_keys, settings)
    api_keys = providers.Singleton(ChainedApiKeys, settings_keys, key_store)

    job_queue = providers.Selector(
        settings.provided.queue,
        inprocess=providers.Singleton(InProcessJobQueue),
        arq=providers.Resource(open_arq_queue, settings=settings),
    )
    embedding_counters = providers.Singleton(EmbeddingCounters)

    store_config = providers.Singleton(store_settings, settings)
    store_messages = providers.Factory(
        StoreMessages,
        messages=messages,
        index=vector_index,
        embedder=embedder,
        transactions=transactions,
        queue=job_queue,
        clock=clock,
        settings=store_config,
        metrics=metrics,
    )
    update_message = providers.Factory(
        UpdateMessage,
        messages=messages,
        index=vector_index,
        embedder=embedder,
        transactions=transactions,
        queue=job_queue,
        settings=store_config,
    )
    delete_message = providers.Factory(DeleteMessage, messages=messages, index=vector_index, transactions=transactions)
    restore_message = providers.Factory(
        RestoreMessage, messages=messages, index=vector_index, transactions=transactions, clock=clock
    )
    archive_message = providers.Factory(
        ArchiveMessage, messages=messages, index=vector_index, transactions=transactions, clock=clock
    )
    list_conversation = providers.Factory(
        ListConversation, messages=messages, max_response_bytes=settings.provided.max_response_bytes
    )
    list_user_messages = providers.Factory(
        ListUserMessages, users=user_messages, max_response_bytes=settings.provided.max_response_bytes
    )
    export_user = providers.Factory(ExportUser, users=user_messages)
    browse_tenants = providers.Factory(BrowseTenants, directory=tenant_directory)
    erase_user = providers.Factory(
        EraseUser,
        messages=messages,
        users=user_messages,
        index=vector_index,
        transactions=transactions,
        batch_size=settings.provided.retention_batch_size,
    )
    wait_for_embedding = providers.Factory(
        WaitForEmbedding, messages=messages, timeout_seconds=settings.provided.embedding_wait_seconds
    )
    embed_pending = providers.Factory(
        EmbedPendingMessages,
        embedding_queue=embedding_queue,
        index=vector_index,
        embedder=embedder,
        transactions=transactions,
        queue=job_queue,
        settings=providers.Singleton(embedding_work_settings, settings),
        counters=embedding_counters,
        metrics=metrics,
    )
    sweep_embeddings = providers.Factory(
        SweepEmbeddings,
        embedding_queue=embedding_queue,
        queue=job_queue,
        grace=providers.Callable(lambda s: timedelta(seconds=s.embedding_sweep_seconds), settings),
        max_attempts=settings.provided.embedding_max_attempts,
    )
    requeue_failed = providers.Factory(RequeueFailed, embedding_queue=embedding_queue, queue=job_queue)
    reindex = providers.Factory(
        Reindex,
        catalog=message_catalog,
        index=vector_index,
        embedder=embedder,
        page_size=settings.provided.embedding_batch_size,
    )
    reembed = providers.Factory(
        Reembed,
        models=embedding_models,
        embedder=embedder,
        locks=locks,
        page_size=settings.provided.embedding_batch_size,
    )
    queue_status = providers.Factory(
        QueueStatus, embedding_queue=embedding_queue, queue=job_queue, clock=clock, counters=embedding_counters
    )
    get_message = providers.Factory(GetMessage, messages=messages)
    query_cache = providers.Selector(
        providers.Callable(query_cache_kind, settings),
        off=providers.Object(None),
        inprocess=providers.Singleton(InProcessQueryCache, max_entries=settings.provided.query_cache_size),
        redis=providers.Resource(open_redis_query_cache, settings=settings),
    )
    search_memory = providers.Factory(
        SearchMemory,
        messages=messages,
        text_search=text_search,
        index=vector_index,
        embedder=embedder,
        clock=clock,
        settings=providers.Singleton(search_settings, settings),
        metrics=metrics,
        query_vectors=query_cache,
    )
    # Loads its encoding's ranks once (about a second), when the API starts.
    tokenizer = providers.Singleton(BpeOpenAiTokenizer, encoding=settings.provided.context_tokenizer)
    build_context = providers.Factory(
        BuildContext,
        messages=messages,
        search=search_memory,
        tokenizer=tokenizer,
        settings=providers.Singleton(context_settings, settings),
    )
    manage_api_keys = providers.Factory(ManageApiKeys, store=key_store)

    rate_limiter = providers.Selector(
        providers.Callable(lambda s: "redis" if s.redis_url else "inprocess", settings),
        inprocess=providers.Singleton(InProcessRateLimiter),
        redis=providers.Resource(open_redis_rate_limiter, settings=settings),
    )
    tenant_limit_store = providers.Singleton(PgTenantLimitStore, database=database)
    tenant_limit_overrides = providers.Singleton(
        CachedTenantLimits, store=tenant_limit_store, ttl_seconds=settings.provided.tenant_limits_cache_seconds
    )
    throttle_config = providers.Singleton(throttle_settings, settings)
    throttle = providers.Singleton(
        Throttle,
        limiter=rate_limiter,
        overrides=tenant_limit_overrides,
        settings=throttle_config,
        counters=providers.Singleton(ThrottleCounters),
        metrics=metrics,
    )
    tenant_shares = providers.Singleton(
        TenantShares, settings=providers.Callable(fair_share_settings, settings), metrics=metrics
    )
    tenant_limits = providers.Factory(
        TenantLimits,
        overrides=tenant_limit_overrides,
        default=throttle_config.provided.tenant_limit,
    )
    retention_policies = providers.Singleton(PgRetentionPolicyStore, database=database)
    retention_runs = providers.Singleton(PgRetentionRuns, database=database)
    tenant_retention = providers.Factory(
        TenantRetention,
        store=retention_policies,
        default=providers.Callable(lambda s: s.retention_policy(), settings),
    )
    run_retention = providers.Factory(
        RunRetention,
        messages=messages,
        catalog=message_catalog,
        candidates=retention_candidates,
        index=vector_index,
        transactions=transactions,
        policies=tenant_retention,
        runs=retention_runs,
        locks=locks,
        clock=clock,
        batch_size=settings.provided.retention_batch_size,
        metrics=metrics,
    )
    erase_messages = providers.Factory(
        EraseMessages,
        messages=messages,
        catalog=message_catalog,
        index=vector_index,
        transactions=transactions,
        retention=retention_policies,
        limits=tenant_limit_store,
        batch_size=settings.provided.retention_batch_size,
    )
    ensure_admin_key = providers.Factory(
        EnsureAdminKey,
        store=key_store,
        keys_configured=providers.Callable(lambda s: bool(s.configured_keys()), settings),
    )


def provider_in(container: Container, need: providers.Provider[Any]) -> providers.Provider[Any]:
    """The container's own copy of a provider named on the class (`Container.run_retention`)."""
    for name, provider in Container.providers.items():
        if provider is need:
            return container.providers[name]
    raise LookupError(f"{need!r} is not a provider of Container")


def loads_model(container: Container, need: providers.Provider[Any]) -> bool:
    """Whether resolving `need` loads the model: it depends on the embedder otherwise than to
    size a migration's vector column (which asks for the model only when one must run)."""
    seen: set[int] = set()
    stack = [need]
    while stack:
        provider = stack.pop()
        if provider is container.embedder:
            return True
        if provider is container.vector_dimensions or id(provider) in seen:
            continue
        seen.add(id(provider))
        stack.extend(provider.related)
    return False


async def start(container: Container, *needs: providers.Provider[Any]) -> None:
    """Start exactly what `needs` (providers named on the class, as `Container.search_memory`)
    depend on: the first resolution of each starts its resources, and only the backends the
    settings chose. Then settle: from here on providers hand out plain objects. Idempotent.

    The model loads first, before the database starts, whenever a need uses it: resolved side
    by side (dependency-injector gathers a factory's async arguments), the model's load and
    the embedded PostgreSQL's start made the server drop its first connections."""
    wanted = [provider_in(container, need) for need in needs]
    unsettle(container)  # a need not started yet must start its resources, not be handed coroutines
    if any(loads_model(container, provider) for provider in wanted):
        await resolved(container.embedder())
    for provider in wanted:
        await resolved(provider())
    settle(container)


async def stop(container: Container) -> None:
    """Stop every resource started, in reverse order."""
    await resolved(container.shutdown_resources())


@asynccontextmanager
async def running(settings: Settings, *needs: providers.Provider[Any]) -> AsyncIterator[Container]:
    """A container for one entrypoint: `needs` started on entry, everything stopped on exit."""
    container = Container(settings=settings)
    try:
        await start(container, *needs)
        yield container
    finally:
        await stop(container)
