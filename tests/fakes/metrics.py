"""Metrics kept in the process, for use-case tests: what was counted, readable as plain data."""

from __future__ import annotations

from collections import Counter

from application.ports.embedding_queue import QueueStats
from application.ports.observability import OperatorMetrics


class InMemoryMetrics(OperatorMetrics):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.timings: list[tuple[str, float]] = []
        self.gauges: dict[str, float] = {}
        self.served_on: list[int] = []

    def messages_stored(self, count: int, mode: str) -> None:
        self.counts[f"stored:{mode}"] += count

    def search_finished(self, mode: str, seconds: float) -> None:
        self.counts[f"search:{mode}"] += 1
        self.timings.append((f"search:{mode}", seconds))

    def embedding_batch(self, size: int, seconds: float, embedded: int, failed: int) -> None:
        self.counts["embedding_batches"] += 1
        self.counts["embedded"] += embedded
        self.counts["embedding_failed"] += failed
        self.timings.append(("embedding_batch", seconds))

    def retention_applied(self, archived: int, deleted: int) -> None:
        self.counts["archived"] += archived
        self.counts["deleted"] += deleted

    def retention_failed(self) -> None:
        self.counts["retention_failed"] += 1

    def rate_limited(self, scope: str) -> None:
        self.counts[f"rate_limited:{scope}"] += 1

    def rate_limiter_unavailable(self, failure_mode: str) -> None:
        self.counts[f"rate_limiter_unavailable:{failure_mode}"] += 1

    def embedding_truncated(self, kind: str, count: int) -> None:
        self.counts[f"embedding_truncated:{kind}"] += count

    def query_cache(self, result: str) -> None:
        self.counts[f"query_cache:{result}"] += 1

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.counts[f"http:{method} {route}:{status}"] += 1
        self.timings.append((f"http:{method} {route}", seconds))

    def http_in_flight(self, count: int) -> None:
        self.gauges["http_in_flight"] = count

    def http_shed(self) -> None:
        self.counts["http_shed"] += 1

    def http_deadline_exceeded(self) -> None:
        self.counts["http_deadline_exceeded"] += 1

    def queue_state(self, stats: QueueStats, oldest_age_seconds: float | None) -> None:
        self.gauges["queue_oldest_age_seconds"] = -1.0 if oldest_age_seconds is None else oldest_age_seconds

    def queue_read_failed(self) -> None:
        self.counts["queue_read_failed"] += 1

    def pool_state(self, in_use: int, idle: int) -> None:
        self.gauges["pool_in_use"] = in_use
        self.gauges["pool_idle"] = idle

    def exposition(self) -> tuple[bytes, str]:
        """Every count and gauge as `name value` lines."""
        lines = [f"{name} {value}" for name, value in sorted({**self.counts, **self.gauges}.items())]
        return "\n".join(lines).encode(), "text/plain"

    def serve(self, port: int) -> None:
        self.served_on.append(port)
