"""What every area's JSON shapes share: strict JSON bodies, ids, times, the tenant argument, the problem body."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from domain.message import ID_PATTERN

RoleName = Literal["user", "assistant", "system", "tool"]


# Ids are checked by the domain, which names the rule when one breaks it; the pattern is here
# for the published document (clients, schemathesis), not for pydantic to enforce.
AN_ID: dict[str, Any] = {"pattern": ID_PATTERN.pattern}


# JSON bodies are strict: a bool is a JSON bool, a number a JSON number (an integer will do
# where a float is wanted), a time an ISO 8601 string with an offset. Loosely, "pinned": "yes"
# was stored as true and "importance": true as 1.0. Query strings are text by nature: their
# models (the ...Args) convert.
JSON_BODY = ConfigDict(extra="forbid", strict=True)


ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def iso_text(value: object) -> object:
    """A time only as ISO 8601 text: pydantic would take a number (or a string of digits) as a
    Unix time, and 253402300800 as one in 1978."""
    if isinstance(value, str) and ISO_DATE_TIME.match(value):
        return value
    raise ValueError("must be an ISO 8601 date and time with an offset, as a string, e.g. 2026-05-01T09:30:00Z")


# A time in a JSON body, parsed from its text (strict mode takes a datetime object only).
JsonInstant = Annotated[AwareDatetime, Strict(False), BeforeValidator(iso_text)]


class TenantArgs(BaseModel):
    tenant_id: str = Field(json_schema_extra=AN_ID)


class Problem(BaseModel):
    type: str
    title: str
    status: int
    code: str
    detail: str
    errors: list[dict[str, str]] | None = None
