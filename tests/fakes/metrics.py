"""Metrics kept in the process, for use-case tests: what was counted, readable as plain data."""

from __future__ import annotations

from collections import Counter

from application.ports.observability import Metrics


class InMemoryMetrics(Metrics):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.timings: list[tuple[str, float]] = []

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
