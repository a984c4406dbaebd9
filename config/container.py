"""The one composition root: every pool, client, adapter and use case is built here.

Pools and models are Resources (started in `init_resources`, closed in
`shutdown_resources`), adapters Singletons, use cases Factories. Nothing is built at
import time, and heavy libraries are imported only by the backend that needs them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.inprocess.job_queue import InProcessJobQueue
from adapters.inprocess.query_cache import InProcessQueryCache
from adapters.inprocess.rate_limiter import InProcessRateLimiter
from adapters.keys import ChainedApiKeys, SettingsApiKeys
from adapters.postgres.api_keys import PgApiKeyStore
from adapters.postgres.database import DatabaseOptions, PgTransactions, open_database
from adapters.postgres.embedding_models import PgEmbeddingModels
from adapters.postgres.embedding_queue import PgEmbeddingQueue
from adapters.postgres.locks import PgLocks
from adapters.postgres.messages import PgMessageCatalog, PgMessageRepository
from adapters.postgres.retention import PgRetentionCandidates, PgRetentionPolicyStore, PgRetentionRuns
from adapters.postgres.tenant_limits import PgTenantLimitStore
from adapters.postgres.text_search import PgTextSearch
from adapters.postgres.vector_index import PgVectorIndex
from adapters.prometheus.metrics import PrometheusMetrics
from application.api_keys import ManageApiKeys
from application.bootstrap import EnsureAdminKey
from application.delete_messages import DeleteMessage, EraseMessages
from application.embed_pending import EmbeddingCounters, EmbeddingWorkSettings, EmbedPendingMessages, SweepEmbeddings
from application.fair_share import FairShareSettings, TenantShares
from application.get_message import GetMessage
from application.list_conversation import ListConversation
from application.ports.embedder import Embedder, EmbedderUnavailable
from application.ports.embedding_models import EmbeddingModel, EmbeddingModels
from application.ports.job_queue import JobQueue, QueueUnavailable
from application.ports.limits import RateLimiter
from application.ports.observability import Metrics
from application.ports.query_cache import QueryVectorCache
from application.ports.storage import StorageUnavailable
from application.ports.text_search import KeywordLimits
from application.ports.vectors import VectorIndex
from application.queue_status import QueueStatus, RequeueFailed
from application.reembed import Reembed
from application.reindex import Reindex
from application.restore_message import RestoreMessage
from application.retention import RunRetention, TenantRetention
from application.search_memory import SearchMemory, SearchMode, SearchSettings
from application.store_messages import EmbeddingMode, StoreMessages, StoreSettings
from application.tenant_limits import CachedTenantLimits, TenantLimits
from application.throttle import FailureMode, Throttle, ThrottleCounters, ThrottleSettings
from application.update_message import UpdateMessage
from application.wait_for_embedding import WaitForEmbedding
from config.settings import Settings
from domain.message import ContentLimits
from domain.ranking import RankingWeights
from domain.rate_limit import RateLimit
from domain.retry import RetryPolicy


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


async def open_sentence_transformer(settings: Settings, metrics: Metrics) -> AsyncIterator[Embedder]:
    from adapters.embeddings.sentence_transformers import (
        SentenceTransformerEmbedder,
        bundled_model_path,
        load_model,
        model_identity,
    )

    path = settings.embedding_model or bundled_model_path()
    label = Path(settings.embedding_model).name if settings.embedding_model else "all-MiniLM-L6-v2"
    if settings.embedding_threads:
        import torch

        torch.set_num_threads(settings.embedding_threads)
    model = await asyncio.to_thread(load_model, path, settings.embedding_device)
    embedder = SentenceTransformerEmbedder(
        model,
        model_name=await asyncio.to_thread(model_identity, path, label),
        batch_size=settings.embedding_encode_batch_size,
        max_concurrency=settings.embedding_max_concurrency,
        max_pending=settings.embedding_max_pending,
        metrics=metrics,
    )
    try:
        if settings.embedding_dimensions not in (None, embedder.dimensions):
            raise EmbedderUnavailable(
                f"MEMORY_EMBEDDING_DIMENSIONS={settings.embedding_dimensions}, but {embedder.model_name} makes "
                f"vectors of {embedder.dimensions} dimensions: unset it, or pick a model of that dimension"
            )
        yield embedder
    finally:
        embedder.close()


async def open_gemini_embedder(settings: Settings) -> AsyncIterator[Embedder]:
    """Probes the API once: a refused key fails readiness (with the reason) rather than the start."""
    from adapters.embeddings.gemini import DEFAULT_DIMENSIONS, GeminiEmbedder, gemini_client

    client = gemini_client(
        api_key=settings.gemini_api_key or "",  # settings refuse google_gemini without it
        base_url=settings.gemini_base_url,
        timeout_seconds=settings.gemini_timeout_seconds,
        max_retries=settings.gemini_max_retries,
    )
    embedder = GeminiEmbedder(
        client,
        settings.gemini_model,
        settings.embedding_dimensions or DEFAULT_DIMENSIONS,
        deadline_seconds=settings.embedding_lease_seconds * 0.8,  # done, or given up, inside the batch's lease
    )
    try:
        await embedder.start()
        yield embedder
    finally:
        await embedder.aclose()


async def open_arq_queue(settings: Settings) -> AsyncIterator[JobQueue]:
    from arq.connections import RedisSettings, create_pool

    from adapters.arq.job_queue import ArqJobQueue

    try:
        url = settings.redis_url or ""  # settings refuse MEMORY_QUEUE=arq without it
        redis = await create_pool(RedisSettings.from_dsn(url), default_queue_name=settings.queue_name)
    except Exception as error:  # whatever keeps Redis away, startup names it
        raise QueueUnavailable(f"cannot reach Redis at MEMORY_REDIS_URL: {type(error).__name__}: {error}") from error
    queue = ArqJobQueue(redis, settings.queue_name)
    try:
        yield queue
    finally:
        await queue.close()
        await redis.aclose()


async def open_redis_query_cache(settings: Settings) -> AsyncIterator[QueryVectorCache]:
    from redis.asyncio import Redis

    from adapters.redis.query_cache import RedisQueryCache

    # Short timeouts: a cache that does not answer at once is a miss, not a slow search.
    client = Redis.from_url(settings.redis_url or "", socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        yield RedisQueryCache(client, settings.query_cache_ttl_seconds)
    finally:
        await client.aclose()


def query_cache_kind(settings: Settings) -> str:
    if settings.query_cache_size == 0:
        return "off"
    return "redis" if settings.redis_url else "memory"


async def open_redis_rate_limiter(settings: Settings) -> AsyncIterator[RateLimiter]:
    from redis.asyncio import Redis

    from adapters.redis.rate_limiter import RedisRateLimiter

    # Short timeouts: a request must not hang on an unreachable Redis (failure mode decides).
    client = Redis.from_url(settings.redis_url or "", socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        yield RedisRateLimiter(client)
    finally:
        await client.aclose()


def fair_share_settings(settings: Settings) -> FairShareSettings:
    return FairShareSettings(max_in_flight=settings.tenant_max_in_flight, wait_seconds=settings.http_queue_wait_seconds)


def throttle_settings(settings: Settings) -> ThrottleSettings:
    return ThrottleSettings(
        key_limit=RateLimit.parse(settings.global_rate_limit) if settings.global_rate_limit else None,
        tenant_limit=RateLimit.parse(settings.tenant_rate_limit) if settings.tenant_rate_limit else None,
        message_limit=(
            RateLimit.parse(settings.tenant_message_rate_limit) if settings.tenant_message_rate_limit else None
        ),
        failure_mode=FailureMode(settings.rate_limit_failure_mode),
    )


async def claim_embedding_model(models: EmbeddingModels, embedder: Embedder) -> int:
    """The record of the model that made the stored vectors, which must be this process's:
    refuses to start, naming the fix, when another model made them."""
    return await models.claim(EmbeddingModel(embedder.model_name, embedder.dimensions))


def qdrant_collection(settings: Settings, model_id: int) -> str:
    """The first recorded model's vectors live in MEMORY_QDRANT_COLLECTION, each later model's
    in a collection of its own: after a model change no process reads the old model's."""
    return settings.qdrant_collection if model_id == 1 else f"{settings.qdrant_collection}_m{model_id}"


async def open_qdrant_index(settings: Settings, dimensions: int, model_id: int) -> AsyncIterator[VectorIndex]:
    """`model_id`: the record of the model that made the stored vectors (checked at start)."""
    from qdrant_client import AsyncQdrantClient

    from adapters.qdrant.vector_index import QdrantVectorIndex, prepare_collection

    if settings.qdrant_url:
        client = AsyncQdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=10)
    else:
        path = settings.qdrant_path or settings.data_dir / "qdrant"
        path.mkdir(parents=True, exist_ok=True)
        client = AsyncQdrantClient(path=str(path))
    collection = qdrant_collection(settings, model_id)
    try:
        try:
            await prepare_collection(client, collection, dimensions)
        except Exception as error:  # unreachable server, bad key, wrong collection: startup says which
            raise StorageUnavailable(f"cannot use Qdrant: {type(error).__name__}: {error}") from error
        yield QdrantVectorIndex(client, collection)
    finally:
        await client.close()


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


def keyword_limits(settings: Settings) -> KeywordLimits:
    return KeywordLimits(max_terms=settings.search_keyword_max_terms, max_ranked=settings.search_keyword_max_ranked)


def search_settings(settings: Settings) -> SearchSettings:
    return SearchSettings(
        weights=ranking_weights(settings),
        candidates=settings.search_candidates,
        default_mode=SearchMode(settings.search_default_mode),
        max_query_chars=settings.max_query_chars,
        keyword_weight=settings.search_keyword_weight,
        neighbour_weight=settings.search_neighbour_weight,
        max_response_bytes=settings.max_response_bytes,
    )


def store_settings(settings: Settings) -> StoreSettings:
    return StoreSettings(
        mode=EmbeddingMode(settings.embedding_mode),
        limits=ContentLimits(
            max_content_chars=settings.max_content_chars, max_metadata_bytes=settings.max_metadata_bytes
        ),
        max_batch=settings.max_batch_messages,
    )


def embedding_work_settings(settings: Settings) -> EmbeddingWorkSettings:
    return EmbeddingWorkSettings(
        batch_size=settings.embedding_batch_size,
        lease=timedelta(seconds=settings.embedding_lease_seconds),
        retry=RetryPolicy(
            max_attempts=settings.embedding_max_attempts,
            base_delay=timedelta(seconds=settings.embedding_retry_base_seconds),
            max_delay=timedelta(seconds=settings.embedding_retry_max_seconds),
        ),
    )


def settings_api_keys(settings: Settings) -> SettingsApiKeys:
    return SettingsApiKeys(settings.configured_keys())


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)

    metrics = providers.Singleton(PrometheusMetrics)

    embedder = providers.Selector(
        settings.provided.embedding_provider,
        sentence_transformers=providers.Resource(open_sentence_transformer, settings=settings, metrics=metrics),
        google_gemini=providers.Resource(open_gemini_embedder, settings=settings),
    )

    database = providers.Resource(
        open_database,
        options=providers.Callable(database_options, settings),
        dimensions=embedder.provided.dimensions,
    )

    transactions = providers.Singleton(PgTransactions, database=database)
    messages = providers.Singleton(PgMessageRepository, database=database)
    message_catalog = providers.Singleton(PgMessageCatalog, database=database)
    embedding_queue = providers.Singleton(PgEmbeddingQueue, database=database)
    retention_candidates = providers.Singleton(PgRetentionCandidates, database=database)
    text_search = providers.Singleton(
        PgTextSearch, database=database, keyword_limits=providers.Callable(keyword_limits, settings)
    )
    embedding_models = providers.Singleton(PgEmbeddingModels, database=database)
    locks = providers.Singleton(PgLocks, database=database)
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
    list_conversation = providers.Factory(
        ListConversation, messages=messages, max_response_bytes=settings.provided.max_response_bytes
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
        memory=providers.Singleton(InProcessQueryCache, max_entries=settings.provided.query_cache_size),
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


async def start(container: Container, *needs: providers.Provider[Any]) -> None:
    """Start exactly what `needs` (providers named on the class, as `Container.search_memory`)
    depend on: the first resolution of each starts its resources, and only the backends the
    settings chose. Then settle: from here on providers hand out plain objects. Idempotent."""
    for need in needs:
        await resolved(provider_in(container, need)())
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
