"""Every setting is a MEMORY_* environment variable (or a line of .env), with a safe default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.keys import ConfiguredKey
from domain.errors import ValidationFailed
from domain.message import ID_PATTERN, ID_RULE
from domain.rate_limit import RateLimit
from domain.retention import RetentionPolicy, parse_roles

# Visible ASCII: a header carries other characters only as bytes of some encoding the client
# picks (Latin-1, most often), so a key holding them could match for one client and not another.
KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")
POSTGRES_SIZE = r"^[1-9][0-9]{0,9}(kB|MB|GB|TB)$"  # a PostgreSQL memory size, its unit stated


def parse_api_keys(text: str, *, admin: bool) -> list[ConfiguredKey]:
    """`key:tenantA|tenantB,key2:tenantC` (tenant keys) or `key1,key2` (admin keys)."""
    setting = "MEMORY_ADMIN_API_KEYS" if admin else "MEMORY_API_KEYS"
    keys = []
    for number, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        if admin:
            key, tenants = entry, frozenset[str]()
        else:
            key, sep, tenant_list = entry.partition(":")
            tenants = frozenset(t.strip() for t in tenant_list.split("|") if t.strip())
            if not sep or not tenants:
                raise ValueError("MEMORY_API_KEYS entries look like key:tenantA|tenantB")
            bad = sorted(t for t in tenants if not ID_PATTERN.fullmatch(t))
            if bad:
                raise ValueError(f"MEMORY_API_KEYS names invalid tenant ids {bad}: tenant ids are {ID_RULE}")
        if len(key) < 16:
            raise ValueError("API keys must be at least 16 characters long")
        if not KEY_CHARACTERS.fullmatch(key):  # never echo the key: this message is printed and logged
            raise ValueError(
                f"{setting} entry {number} holds a key with a character that is not visible ASCII (a space, an "
                "accented letter, any non-ASCII): HTTP headers carry keys as ASCII, so use letters, digits and "
                "punctuation only"
            )
        keys.append(ConfiguredKey(key=key, tenants=tenants, admin=admin))
    return keys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEMORY_", env_file=".env", extra="ignore")

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    processes: int = Field(1, ge=1, le=64)  # API processes sharing the port (each with its own model)
    reuse_port: bool = False  # set by the parent of several API processes: bind with SO_REUSEPORT
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # A client that sends nothing for this long (a slow loris, a stalled upload) is cut off.
    http_read_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    # A request still unanswered after this long gets 504 deadline_exceeded (its work goes on).
    # Below the read timeout, which would otherwise cut the connection with no answer.
    http_request_deadline_seconds: float = Field(25.0, gt=0, le=3600)
    # Load shedding: requests one API process works on at once; as many more may wait up to
    # the wait for a free slot, then get 503 + Retry-After. 0 = no bound.
    http_max_in_flight: int = Field(32, ge=0, le=100_000)
    http_queue_wait_seconds: float = Field(2.0, ge=0, le=600)
    max_batch_body_bytes: int = Field(16_777_216, ge=1024)  # POST /v1/messages/batch
    # The operator's console at /console (static pages calling this API with a key); false: 404.
    console_enabled: bool = True
    max_batch_messages: int = Field(500, ge=1, le=10_000)
    max_query_chars: int = Field(4_000, ge=1)
    max_content_chars: int = Field(32_000, ge=1)
    max_metadata_bytes: int = Field(16_384, ge=2, le=1_048_576)  # a message's metadata, as compact JSON
    # A conversation page or a search answer stops short of this (a page goes on with next_cursor).
    max_response_bytes: int = Field(1_048_576, ge=65_536, le=1_073_741_824)

    # Storage
    data_dir: Path = Path(".memorymesh")
    database_url: str | None = None
    db_pool_min_size: int = Field(1, ge=0)
    db_pool_max_size: int = Field(10, ge=1)
    db_command_timeout_seconds: float = Field(10.0, gt=0)
    auto_migrate: bool = True
    # The embedded PostgreSQL's memory, as PostgreSQL writes sizes ("512MB", "2GB"); unset,
    # each is a share of the machine's RAM (config/resources.py, embedded_postgres_settings).
    # Not applied to a server at MEMORY_DATABASE_URL: that one is its operator's to tune.
    postgres_shared_buffers: str | None = Field(None, pattern=POSTGRES_SIZE)
    postgres_effective_cache_size: str | None = Field(None, pattern=POSTGRES_SIZE)
    postgres_maintenance_work_mem: str | None = Field(None, pattern=POSTGRES_SIZE)
    postgres_work_mem: str | None = Field(None, pattern=POSTGRES_SIZE)
    # ANALYZE messages in the background once this many rows were written since the last one
    # (and a tenth of the table, autovacuum's rule), instead of waiting up to a minute for
    # autovacuum: searches right after a bulk import get plans for the table as it is (VACUUM
    # (ANALYZE) once dead rows pass a fifth of the table). 0 = off.
    analyze_after_rows: int = Field(1_000, ge=0)

    # Vector index: pgvector in the same PostgreSQL, or Qdrant (a server, or qdrant-client's local mode)
    vector_store: Literal["pgvector", "qdrant"] = "pgvector"
    qdrant_url: str | None = None
    qdrant_api_key: str | None = Field(None, repr=False)
    qdrant_path: Path | None = None  # local on-disk mode; unset (and no URL) = MEMORY_DATA_DIR/qdrant
    qdrant_collection: str = Field("memorymesh_messages", min_length=1)

    # Auth: never logged
    api_keys: str = Field("", repr=False)
    admin_api_keys: str = Field("", repr=False)

    # Embeddings
    embedding_provider: Literal["sentence_transformers", "google_gemini"] = "sentence_transformers"
    # The vectors' dimension, at most 2000 (pgvector's HNSW index). google_gemini: asked of the
    # API (unset = 768); sentence_transformers: when set, it must be the model's own.
    embedding_dimensions: int | None = Field(None, ge=1)
    embedding_model: str | None = None  # a local model folder; unset means the bundled all-MiniLM-L6-v2
    embedding_device: str = "cpu"
    embedding_threads: int = Field(0, ge=0, le=256)  # torch's CPU threads; 0 = torch's default (all cores)
    # What runs the local model: ONNX Runtime on an export of the same weights (same vectors, no
    # torch in the process; exported once into the cache dir, unset = the user's cache,
    # $XDG_CACHE_HOME/memorymesh/onnx, shared by every data dir since a file is keyed by the
    # model's digest), or torch (sentence-transformers). auto: ONNX for a model it can run (mean
    # pooling, a tokenizer.json), torch for any other. ONNX Runtime's threads per encode: 0 = its
    # default (all cores).
    embedding_runtime: Literal["auto", "onnx", "torch"] = "auto"
    embedding_onnx_cache_dir: Path | None = None
    embedding_onnx_threads: int = Field(2, ge=0, le=256)
    # int8: dynamic quantization of the export (per-channel scales), faster but other vectors
    # (cosine about 0.99 to fp32's): recorded as another model (`...-int8pc@digest`), so
    # switching to it is a reembed.
    embedding_onnx_quantize: Literal["none", "int8"] = "none"
    embedding_batch_size: int = Field(256, ge=1, le=4096)  # messages a worker claims and embeds in one call
    embedding_encode_batch_size: int = Field(32, ge=1, le=1024)  # texts per forward pass inside that call
    embedding_max_concurrency: int = Field(1, ge=1, le=64)
    embedding_max_pending: int = Field(256, ge=1)  # calls waiting for the model before 503s
    # google_gemini: Google's Gemini API through the google-genai SDK
    gemini_api_key: str | None = Field(None, repr=False)
    gemini_model: str = Field("gemini-embedding-001", min_length=1)
    gemini_base_url: str | None = None  # the API's root (a proxy, a regional endpoint); unset = Google's
    gemini_timeout_seconds: float = Field(10.0, gt=0, le=600)  # per request
    gemini_max_retries: int = Field(4, ge=0, le=10)  # on 408, 429, 5xx, timeouts (exponential backoff, jitter)

    # Background embedding
    embedding_mode: Literal["async", "inline"] = "async"
    embedding_wait_seconds: float = Field(10.0, gt=0, le=300)  # the longest ?wait=true waits
    embedding_workers: int = Field(2, ge=1, le=64)  # concurrent batches per process (in-process or arq worker)
    embedding_max_attempts: int = Field(5, ge=1, le=100)
    embedding_retry_base_seconds: float = Field(2.0, gt=0)
    embedding_retry_max_seconds: float = Field(300.0, gt=0)
    embedding_lease_seconds: float = Field(60.0, gt=0)  # a dead worker's batch is claimable again after this
    embedding_sweep_seconds: float = Field(5.0, gt=0)
    queue: Literal["inprocess", "arq"] = "inprocess"
    redis_url: str | None = Field(None, repr=False)  # set: rate limits are shared through Redis; arq needs it
    queue_name: str = Field("memorymesh:jobs", min_length=1)

    # Rate limits ("200/minute"; empty = no limit)
    global_rate_limit: str = ""  # per API key
    tenant_rate_limit: str = ""  # per tenant; PUT /v1/admin/tenants/{tenant}/limits overrides it
    tenant_message_rate_limit: str = ""  # messages written per tenant (a batch counts each message)
    rate_limit_failure_mode: Literal["open", "closed"] = "open"  # when Redis cannot answer
    tenant_limits_cache_seconds: float = Field(5.0, ge=0)
    # Searches and batch writes one tenant has in progress at once in one API process; as many
    # more wait up to MEMORY_HTTP_QUEUE_WAIT_SECONDS, the rest get 429 tenant_busy. 0 = no bound.
    tenant_max_in_flight: int = Field(4, ge=0, le=10_000)

    # Query vectors kept for repeated queries: in this process (LRU), or in Redis (shared)
    # when MEMORY_REDIS_URL is set. 0 entries: no cache.
    query_cache_size: int = Field(10_000, ge=0, le=10_000_000)
    query_cache_ttl_seconds: int = Field(86_400, ge=1)

    # Search and ranking
    search_candidates: int = Field(100, ge=1, le=1000)
    # What one keyword search may cost: distinct query words used, and matching messages ranked.
    search_keyword_max_terms: int = Field(32, ge=1, le=1000)
    search_keyword_max_ranked: int = Field(2_000, ge=1, le=1_000_000)
    # The mode of a search that names none: hybrid measures best (bench/results/quality.md).
    search_default_mode: Literal["semantic", "keyword", "hybrid"] = "hybrid"
    # Hybrid: the keyword side's share of the fused score, and what the best hits lend to
    # the messages next to them (0 turns that off). Measured on LoCoMo: bench/results/quality.md.
    search_keyword_weight: float = Field(0.6, ge=0, le=1)
    search_neighbour_weight: float = Field(0.3, ge=0, le=10)
    ranking_similarity_weight: float = Field(0.7, ge=0)
    ranking_importance_weight: float = Field(0.2, ge=0)
    ranking_recency_weight: float = Field(0.1, ge=0)
    ranking_half_life_days: float = Field(30.0, gt=0)

    # POST /v1/context: the largest token budget a call may ask; the recent turns' share of a
    # budget (what they leave unused goes to memories, and the other way round); the turns
    # considered when a call names none, and their bound; memories asked of the search; and
    # the tokenizer the budget is counted in (bundled with bpe-openai: nothing is downloaded).
    context_max_tokens: int = Field(32_000, ge=1, le=2_000_000)
    context_recent_share: float = Field(0.2, ge=0, le=1)
    context_recent_turns: int = Field(20, ge=1, le=10_000)
    context_max_recent_turns: int = Field(200, ge=1, le=10_000)
    context_memories: int = Field(20, ge=1, le=100)
    context_tokenizer: Literal["o200k_base", "cl100k_base", "p50k_base", "r50k_base"] = "o200k_base"

    # Retention: archive (kept, not searched) then maybe delete old unimportant messages.
    # PUT /v1/admin/tenants/{tenant}/retention overrides any of the policy's fields per tenant.
    retention_max_age_days: float | None = Field(30.0, gt=0)  # archive after; empty = never
    retention_delete_after_days: float | None = Field(None, gt=0)  # delete after; empty (default) = never
    retention_importance_threshold: float = Field(0.35, ge=0, le=1)  # messages at or above it are kept
    retention_protected_roles: str = "system"  # comma-separated roles always kept; empty = none
    retention_schedule_seconds: float = Field(86_400.0, ge=0, le=31_536_000)  # how often a run is due; 0 = only by hand
    retention_batch_size: int = Field(1_000, ge=1, le=100_000)  # messages per transaction (runs and erasures)

    # Metrics and traces. /metrics is served on the API's port; a worker serves its own here (unset: none).
    worker_metrics_port: int | None = Field(None, ge=1, le=65535)
    # The standard OpenTelemetry variables (no MEMORY_ prefix). Traces are off unless one is set.
    otel_exporter_otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_traces_exporter: Literal["", "otlp", "console", "none"] = Field("", validation_alias="OTEL_TRACES_EXPORTER")
    otel_service_name: str | None = Field(None, validation_alias="OTEL_SERVICE_NAME")

    # Logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url", "redis_url", "qdrant_url", "qdrant_api_key", "otel_exporter_otlp_endpoint")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("retention_max_age_days", "retention_delete_after_days", "worker_metrics_port", mode="before")
    @classmethod
    def _blank_days_is_never(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _retention_policy_holds(self) -> Settings:
        try:
            self.retention_policy()
        except ValidationFailed as error:
            names = {
                "archive_after_days": "MEMORY_RETENTION_MAX_AGE_DAYS",
                "delete_after_days": "MEMORY_RETENTION_DELETE_AFTER_DAYS",
                "importance_threshold": "MEMORY_RETENTION_IMPORTANCE_THRESHOLD",
                "protected_roles": "MEMORY_RETENTION_PROTECTED_ROLES",
            }
            raise ValueError("; ".join(f"{names[p.field]} {p.message}" for p in error.problems)) from error
        return self

    def retention_policy(self) -> RetentionPolicy:
        """The service-wide default policy (MEMORY_RETENTION_*)."""
        return RetentionPolicy(
            archive_after_days=self.retention_max_age_days,
            delete_after_days=self.retention_delete_after_days,
            importance_threshold=self.retention_importance_threshold,
            protected_roles=parse_roles(self.retention_protected_roles),
        )

    @field_validator("global_rate_limit", "tenant_rate_limit", "tenant_message_rate_limit")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        if value.strip():
            try:
                RateLimit.parse(value)
            except ValidationFailed as error:
                raise ValueError(error.problems[0].message) from error
        return value.strip()

    @model_validator(mode="after")
    def _a_whole_batch_fits_the_message_limit(self) -> Settings:
        if self.tenant_message_rate_limit:
            limit = RateLimit.parse(self.tenant_message_rate_limit).limit
            if limit < self.max_batch_messages:
                raise ValueError(
                    f"MEMORY_TENANT_MESSAGE_RATE_LIMIT allows {limit} messages at once, fewer than "
                    f"MEMORY_MAX_BATCH_MESSAGES ({self.max_batch_messages}): a full batch could never be stored"
                )
        return self

    @model_validator(mode="after")
    def _arq_needs_redis(self) -> Settings:
        if self.queue == "arq" and not self.redis_url:
            raise ValueError("MEMORY_QUEUE=arq needs MEMORY_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        return self

    @field_validator("api_keys")
    @classmethod
    def _tenant_keys_parse(cls, value: str) -> str:
        parse_api_keys(value, admin=False)
        return value

    @field_validator("admin_api_keys")
    @classmethod
    def _admin_keys_parse(cls, value: str) -> str:
        parse_api_keys(value, admin=True)
        return value

    @model_validator(mode="after")
    def _some_ranking_weight(self) -> Settings:
        weights = (self.ranking_similarity_weight, self.ranking_importance_weight, self.ranking_recency_weight)
        if sum(weights) <= 0:
            raise ValueError("at least one of MEMORY_RANKING_*_WEIGHT must be positive")
        return self

    @model_validator(mode="after")
    def _several_processes_need_a_port(self) -> Settings:
        if self.processes > 1 and self.port == 0:
            raise ValueError("MEMORY_PROCESSES > 1 needs a fixed MEMORY_PORT, not 0")
        return self

    @field_validator("embedding_dimensions", "gemini_api_key", "gemini_base_url", mode="before")
    @classmethod
    def _blank_embedding_setting_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _embedding_settings_fit(self) -> Settings:
        if self.embedding_provider == "google_gemini" and not self.gemini_api_key:
            raise ValueError("MEMORY_EMBEDDING_PROVIDER=google_gemini needs MEMORY_GEMINI_API_KEY (a Gemini API key)")
        if self.embedding_dimensions is not None and self.embedding_dimensions > 2000:
            raise ValueError(
                "MEMORY_EMBEDDING_DIMENSIONS must be at most 2000: pgvector's HNSW index takes no more "
                "(for gemini-embedding-001, 768 or 1536)"
            )
        return self

    @model_validator(mode="after")
    def _waits_fit_the_deadline(self) -> Settings:
        if self.http_request_deadline_seconds >= self.http_read_timeout_seconds:
            raise ValueError(
                f"MEMORY_HTTP_REQUEST_DEADLINE_SECONDS ({self.http_request_deadline_seconds:g}) must be less than "
                f"MEMORY_HTTP_READ_TIMEOUT_SECONDS ({self.http_read_timeout_seconds:g}): past the read timeout the "
                "server cuts the connection with no answer"
            )
        if self.embedding_wait_seconds >= self.http_request_deadline_seconds:
            raise ValueError(
                f"MEMORY_EMBEDDING_WAIT_SECONDS ({self.embedding_wait_seconds:g}) must be less than "
                f"MEMORY_HTTP_REQUEST_DEADLINE_SECONDS ({self.http_request_deadline_seconds:g}): a ?wait=true "
                "write would be answered 504 instead of 202"
            )
        return self

    @model_validator(mode="after")
    def _retry_cap_above_base(self) -> Settings:
        if self.embedding_retry_max_seconds < self.embedding_retry_base_seconds:
            raise ValueError("MEMORY_EMBEDDING_RETRY_MAX_SECONDS must be at least MEMORY_EMBEDDING_RETRY_BASE_SECONDS")
        return self

    @model_validator(mode="after")
    def _default_recent_within_its_bound(self) -> Settings:
        if self.context_recent_turns > self.context_max_recent_turns:
            raise ValueError("MEMORY_CONTEXT_RECENT_TURNS is at most MEMORY_CONTEXT_MAX_RECENT_TURNS")
        return self

    def configured_keys(self) -> list[ConfiguredKey]:
        return parse_api_keys(self.api_keys, admin=False) + parse_api_keys(self.admin_api_keys, admin=True)
