"""What the container builds things from: the functions that open pools and clients (its
Resources), and the value objects each part takes, read from the settings.

Heavy libraries are imported inside the function of the backend that needs them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from dependency_injector import providers

from adapters.keys import SettingsApiKeys
from adapters.postgres.database import Database, DatabaseOptions, reachable_server
from application.build_context import ContextSettings
from application.embed_pending import EmbeddingWorkSettings
from application.fair_share import FairShareSettings
from application.ports.embedder import Embedder, EmbedderUnavailable
from application.ports.embedding_models import EmbeddingModel, EmbeddingModels
from application.ports.job_queue import JobQueue, QueueUnavailable
from application.ports.limits import RateLimiter
from application.ports.observability import Metrics, StateMetrics
from application.ports.query_cache import QueryVectorCache
from application.ports.storage import StorageUnavailable
from application.ports.text_search import KeywordLimits
from application.ports.vectors import VectorIndex
from application.search_memory import SearchMode, SearchSettings
from application.store_messages import EmbeddingMode, StoreSettings
from application.throttle import FailureMode, ThrottleSettings
from config.settings import Settings
from domain.message import ContentLimits
from domain.ranking import RankingWeights
from domain.rate_limit import RateLimit
from domain.retry import RetryPolicy


def local_model(settings: Settings) -> tuple[Path, str]:
    """The local model's folder, and the label its vectors are recorded under."""
    from adapters.embeddings.sentence_transformers import bundled_model_path

    if settings.embedding_model:
        return Path(settings.embedding_model), Path(settings.embedding_model).name
    return bundled_model_path(), "all-MiniLM-L6-v2"


def onnx_cache_dir(settings: Settings) -> Path:
    """Where exports live: one per model digest, so every data dir (every test server, every
    instance on a host) shares the one made by `memorymesh model export` or the first start."""
    if settings.embedding_onnx_cache_dir:
        return settings.embedding_onnx_cache_dir
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "memorymesh" / "onnx"


def local_runtime(settings: Settings) -> str:
    """`onnx` or `torch`: auto is ONNX Runtime for a model it can run, torch for any other
    (said once in the log, with the reason)."""
    if settings.embedding_runtime != "auto":
        return settings.embedding_runtime
    from adapters.embeddings.onnx import runnable_on_onnx

    path, _ = local_model(settings)
    reason = runnable_on_onnx(path)
    if reason is None:
        return "onnx"
    logging.getLogger(__name__).warning("the local model runs on torch", extra={"model": str(path), "reason": reason})
    return "torch"


def export_local_model(settings: Settings) -> Path:
    """The ONNX file the configured model runs from, exported first if the cache has none
    (blocks for seconds: `memorymesh model export`, at install or an image's build)."""
    from adapters.embeddings.onnx import ensure_exported, exported_path
    from adapters.embeddings.sentence_transformers import model_identity

    if settings.embedding_provider != "sentence_transformers":
        raise EmbedderUnavailable(f"MEMORY_EMBEDDING_PROVIDER={settings.embedding_provider}: no local model to export")
    if local_runtime(settings) != "onnx":
        raise EmbedderUnavailable("the local model runs on torch (MEMORY_EMBEDDING_RUNTIME): nothing to export")
    path, label = local_model(settings)
    name = model_identity(path, label)
    cache = onnx_cache_dir(settings)
    int8 = settings.embedding_onnx_quantize == "int8"
    return ensure_exported(path, exported_path(cache, name), exported_path(cache, name, int8=True) if int8 else None)


def check_dimensions(settings: Settings, embedder: Embedder) -> None:
    if settings.embedding_dimensions not in (None, embedder.dimensions):
        raise EmbedderUnavailable(
            f"MEMORY_EMBEDDING_DIMENSIONS={settings.embedding_dimensions}, but {embedder.model_name} makes "
            f"vectors of {embedder.dimensions} dimensions: unset it, or pick a model of that dimension"
        )


async def open_sentence_transformer(settings: Settings, metrics: Metrics) -> AsyncIterator[Embedder]:
    from adapters.embeddings.sentence_transformers import SentenceTransformerEmbedder, load_model, model_identity

    path, label = local_model(settings)
    if importlib.util.find_spec("torch") is None:
        raise EmbedderUnavailable(
            f"the model at {path} needs torch, which is not installed (an image built without it: "
            "build it with WITH_TORCH=true), or a model ONNX Runtime can run (MEMORY_EMBEDDING_RUNTIME)"
        )
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
        check_dimensions(settings, embedder)
        yield embedder
    finally:
        embedder.close()


async def open_onnx_embedder(settings: Settings, metrics: Metrics) -> AsyncIterator[Embedder]:
    """The same model and the same vectors (so the same recorded name) as open_sentence_transformer."""
    from adapters.embeddings.onnx import load_onnx_embedder
    from adapters.embeddings.sentence_transformers import model_identity

    path, label = local_model(settings)
    embedder = await asyncio.to_thread(
        load_onnx_embedder,
        path,
        await asyncio.to_thread(model_identity, path, label),
        cache_dir=onnx_cache_dir(settings),
        threads=settings.embedding_onnx_threads,
        batch_size=settings.embedding_encode_batch_size,
        max_concurrency=settings.embedding_max_concurrency,
        max_pending=settings.embedding_max_pending,
        metrics=metrics,
        int8=settings.embedding_onnx_quantize == "int8",
    )
    try:
        check_dimensions(settings, embedder)
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
    return "redis" if settings.redis_url else "inprocess"


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


def model_dimensions(embedder: providers.Provider[Any]) -> Callable[[], Awaitable[int]]:
    """The size of the configured model's vectors, found when first asked: asking loads the
    model, which only a migration needs (it sizes the vector column). `embedder` is the
    provider itself (`Container.embedder.provider`), not the model."""

    async def dimensions() -> int:
        model = embedder()
        if inspect.isawaitable(model):
            model = await model
        return int(model.dimensions)

    return dimensions


async def open_database_server(options: DatabaseOptions) -> AsyncIterator[str]:
    """The URL of the configured server; the embedded one runs until the resource stops."""
    async with reachable_server(options) as url:
        yield url


def report_pool_state(database: Database | None, metrics: StateMetrics) -> None:
    """The database connections of this process, for /metrics (None: a test runs without one)."""
    if database is not None:
        database.report_pool(metrics)


def physical_memory() -> int:
    """The machine's RAM, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def embedded_postgres_settings(settings: Settings, ram: int | None = None) -> dict[str, str]:
    """The embedded PostgreSQL's memory settings: those set, and a share of `ram` for the rest.

    The embedded server shares the machine with the API process (its model) and whatever
    else runs there, so it takes less than a dedicated server would (pgtune's 25% / 75%):
    shared_buffers an eighth of RAM (128MB to 4GB), effective_cache_size half, work_mem
    RAM / 1536 (4MB to 64MB: 16MB at 24 GiB), and maintenance_work_mem an eighth (64MB to
    4GB), which an HNSW build wants the whole graph in (about 2 KB a 384-dimension vector:
    2GB for a million; past it the build goes on much slower, bench/results/search.md).
    """
    ram = ram if ram is not None else physical_memory()

    def share(part: float, low: int, high: int) -> str:
        return f"{max(low, min(high, int(ram * part / 2**20)))}MB"

    derived = {
        "shared_buffers": share(1 / 8, 128, 4096),
        "effective_cache_size": share(1 / 2, 512, 1_048_576),
        "maintenance_work_mem": share(1 / 8, 64, 4096),
        "work_mem": share(1 / 1536, 4, 64),
    }
    chosen = {
        "shared_buffers": settings.postgres_shared_buffers,
        "effective_cache_size": settings.postgres_effective_cache_size,
        "maintenance_work_mem": settings.postgres_maintenance_work_mem,
        "work_mem": settings.postgres_work_mem,
    }
    return {name: chosen[name] or value for name, value in derived.items()}


def database_options(settings: Settings) -> DatabaseOptions:
    return DatabaseOptions(
        url=settings.database_url,
        data_dir=settings.data_dir,
        pool_min_size=settings.db_pool_min_size,
        pool_max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout_seconds,
        auto_migrate=settings.auto_migrate,
        embedded_settings={} if settings.database_url else embedded_postgres_settings(settings),
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


def context_settings(settings: Settings) -> ContextSettings:
    return ContextSettings(
        max_tokens=settings.context_max_tokens,
        recent_share=settings.context_recent_share,
        default_recent=settings.context_recent_turns,
        max_recent=settings.context_max_recent_turns,
        memories=settings.context_memories,
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
