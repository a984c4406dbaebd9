"""Errors the domain raises. Each carries a stable code the HTTP edge maps to a status."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


class ValidationFailed(DomainError):
    """One or more fields break a domain rule."""

    code = "validation_failed"

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
