"""What the use cases count and time for operators."""

from __future__ import annotations

from typing import Protocol


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
