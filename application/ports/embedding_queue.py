"""The embedding work queue: pending messages claimed, embedded, retried."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.message import Message


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    message: Message
    attempts: int  # tries so far, this one included


@dataclass(frozen=True, slots=True)
class EmbeddingClaim:
    """Pending messages one worker holds until it completes, retries or releases them, or
    until the lease runs out and any worker may claim them again."""

    id: uuid.UUID
    messages: list[ClaimedMessage]


@dataclass(frozen=True, slots=True)
class EmbeddingRetry:
    message_id: uuid.UUID
    delay: timedelta | None  # None: no tries left, the message ends failed


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int  # waiting for a worker (including those backing off after a failure)
    claimed: int  # held by a worker right now
    failed: int  # given up: embedding_error says why
    oldest_pending_stored_at: datetime | None
