"""Failures of the use cases themselves (the domain's are in domain/errors.py)."""

from domain.errors import DomainError


class NotFound(DomainError):
    code = "not_found"
