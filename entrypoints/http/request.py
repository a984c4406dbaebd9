"""A request whose JSON body fails with a 400 that says what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

from quart import Request

from entrypoints.http.errors import MalformedBody


def _reject_constant(name: str) -> Any:
    raise MalformedBody(f"the body is not valid JSON: {name} is not a JSON number")


BATCH_PATH_SUFFIX = "/batch"


class ApiRequest(Request):
    batch_max_bytes: int | None = None  # set per app by api_request_class

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        if self.batch_max_bytes is not None and path.endswith(BATCH_PATH_SUFFIX):
            kwargs["max_content_length"] = self.batch_max_bytes  # a batch may be larger than one message
        super().__init__(method, scheme, path, *args, **kwargs)

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            return None
        raw = await self.get_data(cache=cache, as_text=False)
        assert isinstance(raw, bytes)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedBody(f"the body is not valid UTF-8 (bad byte at offset {error.start})") from error
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            raise MalformedBody(
                f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
            ) from error
        except RecursionError as error:
            raise MalformedBody("the body nests JSON too deeply") from error
        except ValueError as error:  # e.g. an integer longer than Python will parse
            raise MalformedBody(f"the body is not acceptable JSON: {error}") from error


def api_request_class(batch_max_bytes: int) -> type[ApiRequest]:
    """The request class of one app: its batch body limit is the app's own setting."""
    return type("ApiRequest", (ApiRequest,), {"batch_max_bytes": batch_max_bytes})
