"""Metrics in the Prometheus text format, through prometheus-client.

prometheus-client rather than OpenTelemetry metrics: its multiprocess mode is what makes
one /metrics answer for several API processes sharing a port (MEMORY_PROCESSES > 1). The
parent of those processes sets PROMETHEUS_MULTIPROC_DIR before they start; each writes its
values there, and whichever process serves a scrape sums (or, for gauges, picks) them.

Labels come from small fixed sets only (route templates, methods, status codes, modes):
never a tenant, an id or a raw path, so the number of series stays flat.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from application.ports.embedding_queue import QueueStats
from application.ports.observability import OperatorMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
BATCH_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class PrometheusMetrics(OperatorMetrics):
    def __init__(self) -> None:
        # No `_created` series beside each counter and histogram: they double the series and
        # no dashboard reads them (a process-wide switch of prometheus-client's).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self._multiprocess = multiprocess_dir() is not None
        # A registry of its own (tests build several); in multiprocess mode the values go
        # to files whatever the registry, and a scrape reads them all back.
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "memorymesh_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.http_duration = Histogram(
            "memorymesh_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "memorymesh_http_requests_in_flight",
            "Requests being answered now (probes and scrapes aside)",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.shed = Counter(
            "memorymesh_http_shed",
            "Requests answered 503 overloaded: MEMORY_HTTP_MAX_IN_FLIGHT were in flight for the whole wait",
            registry=r,
        )
        self.past_deadline = Counter(
            "memorymesh_http_deadline_exceeded",
            "Requests answered 504: no answer within MEMORY_HTTP_REQUEST_DEADLINE_SECONDS",
            registry=r,
        )
        self.stored = Counter("memorymesh_messages_stored", "New messages accepted", ["mode"], registry=r)
        self.search_duration = Histogram(
            "memorymesh_search_duration_seconds", "Time a search took", ["mode"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "memorymesh_embedding_batch_size", "Messages per embedding claim", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_duration = Histogram(
            "memorymesh_embedding_batch_duration_seconds",
            "Time to embed one claim",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.embedded = Counter("memorymesh_messages_embedded", "Messages made searchable", registry=r)
        self.embedding_failures = Counter(
            "memorymesh_embedding_failures", "Messages whose embedding failed (retried, or failed for good)", registry=r
        )
        self.retention = Counter(
            "memorymesh_retention_messages", "Messages archived or deleted by retention", ["action"], registry=r
        )
        self.retention_failures = Counter(
            "memorymesh_retention_tenant_failures",
            "Tenants a retention run could not finish (each run records which, and why; the others are done)",
            registry=r,
        )
        self.refusals = Counter(
            "memorymesh_rate_limit_refusals", "Requests refused by a rate limit", ["scope"], registry=r
        )
        self.truncated = Counter(
            "memorymesh_embedding_truncated",
            "Texts longer than the model reads (the rest of each is not embedded), by kind: document | query",
            ["kind"],
            registry=r,
        )
        self.query_cache_lookups = Counter(
            "memorymesh_query_cache_lookups",
            "Query-vector cache lookups by result (hit | miss | error); hit ratio = hit / all",
            ["result"],
            registry=r,
        )
        self.limiter_unavailable = Counter(
            "memorymesh_rate_limiter_unavailable",
            "Rate-limit decisions the store could not make (open: let through; closed: refused)",
            ["failure_mode"],
            registry=r,
        )
        # Read from the database when scraped: every process sees the same queue.
        self.queue_pending = self._gauge("memorymesh_queue_pending", "Messages waiting for a worker")
        self.queue_claimed = self._gauge("memorymesh_queue_claimed", "Messages a worker is embedding")
        self.queue_failed = self._gauge("memorymesh_queue_failed", "Messages whose embedding failed")
        self.queue_oldest = self._gauge(
            "memorymesh_queue_oldest_pending_age_seconds", "How long the oldest pending message has waited"
        )
        self.queue_read_failures = Counter(
            "memorymesh_queue_read_failures",
            "Scrapes that could not read the queue in time (the queue gauges then show the last reading)",
            registry=r,
        )
        self.pool = Gauge(
            "memorymesh_db_pool_connections",
            "This process's database connections",
            ["state"],
            multiprocess_mode="livesum",
            registry=r,
        )

    def _gauge(self, name: str, documentation: str) -> Gauge:
        """A value read from the database at scrape time: the latest reading wins across processes."""
        return Gauge(name, documentation, multiprocess_mode="mostrecent", registry=self.registry)

    # The HTTP entrypoint's load shedding
    def http_in_flight(self, count: int) -> None:
        self.in_flight.set(count)

    def http_shed(self) -> None:
        self.shed.inc()

    def http_deadline_exceeded(self) -> None:
        self.past_deadline.inc()

    # The use cases' port
    def messages_stored(self, count: int, mode: str) -> None:
        if count:
            self.stored.labels(mode).inc(count)

    def search_finished(self, mode: str, seconds: float) -> None:
        self.search_duration.labels(mode).observe(seconds)

    def embedding_batch(self, size: int, seconds: float, embedded: int, failed: int) -> None:
        self.batch_size.observe(size)
        self.batch_duration.observe(seconds)
        self.embedded.inc(embedded)
        self.embedding_failures.inc(failed)

    def retention_applied(self, archived: int, deleted: int) -> None:
        self.retention.labels("archived").inc(archived)
        self.retention.labels("deleted").inc(deleted)

    def retention_failed(self) -> None:
        self.retention_failures.inc()

    def rate_limited(self, scope: str) -> None:
        self.refusals.labels(scope).inc()

    def rate_limiter_unavailable(self, failure_mode: str) -> None:
        self.limiter_unavailable.labels(failure_mode).inc()

    def embedding_truncated(self, kind: str, count: int) -> None:
        self.truncated.labels(kind).inc(count)

    def query_cache(self, result: str) -> None:
        self.query_cache_lookups.labels(result).inc()

    # The edge's
    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route, method, str(status)).observe(seconds)

    def queue_state(self, stats: QueueStats, oldest_age_seconds: float | None) -> None:
        self.queue_pending.set(stats.pending)
        self.queue_claimed.set(stats.claimed)
        self.queue_failed.set(stats.failed)
        self.queue_oldest.set(oldest_age_seconds or 0.0)

    def queue_read_failed(self) -> None:
        self.queue_read_failures.inc()

    def pool_state(self, in_use: int, idle: int) -> None:
        self.pool.labels("in_use").set(in_use)
        self.pool.labels("idle").set(idle)

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape gets, and its content type."""
        if not self._multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
