"""A call: one request to the service, described as data, with how to read its answer.

The operations (`operations.py`) build calls and the clients (`sync.py`, `aio.py`) only send
them, so the sync and the async client share every rule but the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

R = TypeVar("R")

IDEMPOTENCY_HEADER = "Idempotency-Key"

# Every operation the client has, "METHOD /path/{param}" as the service's /openapi.json names
# it, and the client method that calls it (tests/client/test_client_e2e.py holds the two together).
OPERATIONS: dict[str, str] = {}


def operation(method: str, path: str, name: str | None = None) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Declare that the decorated builder (or the client method named `name`) calls `method path`."""

    def declare(build: Callable[..., R]) -> Callable[..., R]:
        OPERATIONS[f"{method} {path}"] = name or build.__name__
        return build

    return declare


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """One request: `safe` says whether repeating it can do nothing twice (reads, idempotent
    writes, writes carrying their idempotency key); `accept` lists the statuses that are answers
    rather than problems (2xx by default)."""

    method: str
    path: str
    read: Callable[[httpx.Response], R]
    params: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    safe: bool = True
    accept: frozenset[int] = frozenset()
    stream: bool = False

    def accepts(self, status: int) -> bool:
        return 200 <= status < 300 or status in self.accept

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The same request every try (same idempotency key): built from the call, never changed."""
        if self.body is None:
            return http.build_request(self.method, self.path, params=self.params, headers=dict(self.headers))
        return http.build_request(
            self.method, self.path, params=self.params, headers=dict(self.headers), json=self.body
        )


def path(template: str, **values: str) -> str:
    """`template` with each `{name}` filled by its value, percent-encoded."""
    return template.format(**{name: quote(str(value), safe="") for name, value in values.items()})


def querystring(**values: Any) -> dict[str, str]:
    """Query-string parameters: None left out, booleans as true/false, the rest as text."""
    params = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif hasattr(value, "isoformat"):
            params[name] = value.isoformat()
        else:
            params[name] = str(value)
    return params


def fields(**values: Any) -> dict[str, Any]:
    """A JSON body of the fields given (None left out); datetimes as ISO 8601."""
    return {
        name: value.isoformat() if hasattr(value, "isoformat") else value
        for name, value in values.items()
        if value is not None
    }


def json_body(response: httpx.Response) -> Any:
    return response.json()


def nothing(response: httpx.Response) -> None:
    return None


def text(response: httpx.Response) -> str:
    return response.text


class Unset(enum.Enum):
    """A field left as it is (a PATCH), where None sends JSON null (which clears it)."""

    UNSET = "unset"


UNSET = Unset.UNSET


def given(**values: Any) -> dict[str, Any]:
    """A JSON body of the fields not UNSET, None sent as null."""
    return {name: value for name, value in values.items() if value is not UNSET}
