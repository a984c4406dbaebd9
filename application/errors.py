"""Failures of the use cases themselves (the domain's are in domain/errors.py)."""

from domain.errors import DomainError


class NotFound(DomainError):
    code = "not_found"


class IdempotencyConflict(DomainError):
    """A client_message_id (or Idempotency-Key) sent again with a different message."""

    code = "idempotency_conflict"
