"""What the use cases count and time for operators."""

from __future__ import annotations

from typing import Protocol

from application.ports.embedding_queue import QueueStats


class Metrics(Protocol):
    """What the use cases count and time for operators (exported at /metrics). Never a tenant,
    an id or any content as a label: label values come from small fixed sets."""

    def messages_stored(self, count: int, mode: str) -> None:
        """New messages accepted (replays not counted); mode: async | inline."""
        ...

    def search_finished(self, mode: str, seconds: float) -> None: ...

    def embedding_batch(self, size: int, seconds: float, embedded: int, failed: int) -> None:
        """One claim embedded: how many it held, how long it took, how it ended."""
        ...

    def retention_applied(self, archived: int, deleted: int) -> None: ...

    def retention_failed(self) -> None:
        """A tenant a retention run could not finish (the run went on with the others)."""
        ...

    def rate_limited(self, scope: str) -> None:
        """A request refused by a rate limit; scope: key | tenant."""
        ...

    def rate_limiter_unavailable(self, failure_mode: str) -> None:
        """A decision the rate-limit store could not make; failure_mode: open (let through) | closed."""
        ...

    def embedding_truncated(self, kind: str, count: int) -> None:
        """Texts longer than the model reads (the rest is not embedded); kind: document | query."""
        ...

    def query_cache(self, result: str) -> None:
        """A query-vector cache lookup; result: hit | miss | error (the cache could not answer)."""
        ...


class HttpMetrics(Protocol):
    """What the HTTP edge counts: requests by route template, the load it admits and sheds."""

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None: ...

    def http_in_flight(self, count: int) -> None: ...

    def http_shed(self) -> None:
        """A request refused at the door (MEMORY_HTTP_MAX_IN_FLIGHT)."""
        ...

    def http_deadline_exceeded(self) -> None: ...


class StateMetrics(Protocol):
    """Gauges read from the state of the process and its store, each time they are exported."""

    def queue_state(self, stats: QueueStats, oldest_age_seconds: float | None) -> None: ...

    def queue_read_failed(self) -> None:
        """The queue could not be read for a scrape (the gauges keep their last reading)."""
        ...

    def pool_state(self, in_use: int, idle: int) -> None:
        """This process's database connections."""
        ...


class MetricsExport(Protocol):
    """How operators read the metrics: a scrape's text, or a port of their own (a worker)."""

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape gets, and its content type."""
        ...

    def serve(self, port: int) -> None:
        """Answer scrapes on `port`, from a thread of its own."""
        ...


class OperatorMetrics(Metrics, HttpMetrics, StateMetrics, MetricsExport, Protocol):
    """Everything a process counts and exports: what the container hands the entrypoints."""
