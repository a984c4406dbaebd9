"""Where the service is and which key to send: arguments first, then MEMORY_URL / MEMORY_API_KEY."""

from __future__ import annotations

import os

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 30.0
API_KEY_HEADER = "x-api-key"
USER_AGENT = "memorymesh-client/0.1.0"


def base_url(url: str | None) -> str:
    return (url or os.environ.get("MEMORY_URL") or DEFAULT_URL).rstrip("/")


def headers(api_key: str | None) -> dict[str, str]:
    key = api_key or os.environ.get("MEMORY_API_KEY")
    return {"user-agent": USER_AGENT, **({API_KEY_HEADER: key} if key else {})}
