"""Embeddings from Google's Gemini API (gemini-embedding-001), through the google-genai SDK.

What the API answers decides what the embedding worker does with a message:
- over quota (429), a server error (5xx), no answer in time, no connection, a malformed
  answer: EmbedderUnavailable once the SDK's retries are spent. Not the message's fault:
  it waits, its tries not counted.
- a key, project or model the API refuses (a bad key, a permission, an unknown model):
  EmbedderUnavailable too, and readiness fails with the reason until a call succeeds.
- any other 4xx: ValueError, the message's own failure, counted against its tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
from collections.abc import Sequence
from typing import Any

from google import genai
from google.genai import errors, types

from application.ports.embedder import Embedder, EmbedderUnavailable

logger = logging.getLogger(__name__)

DEFAULT_DIMENSIONS = 768  # the smallest size Google recommends for gemini-embedding-001 (768, 1536, 3072)
MAX_TEXTS_PER_REQUEST = 100  # batchEmbedContents takes at most 100 requests
MAX_CONCURRENT_REQUESTS = 4
RETRIED_STATUSES = [408, 429, 500, 502, 503, 504]
PROBE_TEXT = "memorymesh readiness probe"
# A search waits for its query vector: one quick retry, then a 503 the client may retry,
# rather than the whole backoff a background batch can afford (about a minute by default).
QUERY_RETRIES = types.HttpRetryOptions(
    attempts=2, initial_delay=0.25, max_delay=0.25, exp_base=2, jitter=0.25, http_status_codes=RETRIED_STATUSES
)
PROBE_RETRIES = types.HttpRetryOptions(attempts=1)

# Answers that say the key, its project or the model is wrong: no message is to blame.
REFUSED_CODES = {401, 403, 404}
REFUSED_STATUSES = {"UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION", "NOT_FOUND"}
KEY_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"}


def _transport_errors() -> tuple[type[Exception], ...]:
    """What the SDK's HTTP clients raise when no answer came (timeouts, refused connections):
    httpx2 by default, httpx or aiohttp when installed and chosen."""
    found: list[type[Exception]] = [TimeoutError, OSError]
    for module, name in (("httpx2", "RequestError"), ("httpx", "RequestError"), ("aiohttp", "ClientError")):
        with contextlib.suppress(ImportError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


def gemini_client(
    api_key: str,
    base_url: str | None,
    timeout_seconds: float,
    max_retries: int,
    retry_initial_delay: float = 1.0,
    retry_max_delay: float = 30.0,
) -> genai.Client:
    """A client for the Gemini Developer API whose every request gives up after
    `timeout_seconds` and is retried up to `max_retries` times on 408, 429 and 5xx, on
    timeouts and on failed connections, with exponential backoff and jitter.

    The SDK's own retries (tenacity, on the async path too: tests/integration/test_gemini.py
    counts the requests a fake server receives), so no retry loop of ours.
    """
    return genai.Client(
        api_key=api_key,
        vertexai=False,
        http_options=types.HttpOptions(
            base_url=base_url,
            # The version the embeddings reference documents, whatever GOOGLE_GENAI_API_VERSION says.
            api_version="v1beta",
            timeout=max(1, round(timeout_seconds * 1000)),  # milliseconds
            retry_options=types.HttpRetryOptions(
                attempts=max_retries + 1,
                initial_delay=retry_initial_delay,
                max_delay=retry_max_delay,
                exp_base=2,
                jitter=retry_initial_delay,
                http_status_codes=RETRIED_STATUSES,
            ),
        ),
    )


class GeminiEmbedder(Embedder):
    """Texts go out in requests of at most 100, at most `max_concurrency` requests of
    documents at once and as many of queries; vectors come back in order, checked and
    L2-normalised (gemini-embedding-001 gives unit vectors only at 3072 dimensions).

    `check()` never calls the API: `start()` probes it once, and every call after that
    keeps readiness up to date (a refused key fails it, a successful call clears it).
    """

    def __init__(
        self,
        client: genai.Client,
        model: str,
        dimensions: int = DEFAULT_DIMENSIONS,
        max_concurrency: int = MAX_CONCURRENT_REQUESTS,
        deadline_seconds: float | None = None,
    ) -> None:
        self._client = client
        self._model = model.removeprefix("models/")  # the name the stored vectors record, either way it is written
        self._dimensions = dimensions
        # Documents and queries wait in separate lines: a batch backing off after a 429 holds
        # its request slots through the SDK's sleeps, and a search must not wait behind that.
        self._documents = asyncio.Semaphore(max_concurrency)
        self._queries = asyncio.Semaphore(max_concurrency)
        # A batch's tries, sleeps included, end before this: past the worker's lease its
        # messages would be claimed again while this call still runs.
        self._deadline = deadline_seconds
        self._refusal: str | None = None
        self._closed = False

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def start(self) -> None:
        """One small call, tried once, so a refused key shows in readiness from the start.
        Quota, server errors and timeouts do not stop the service: calls retry later."""
        try:
            await self._embed([PROBE_TEXT], "RETRIEVAL_QUERY", PROBE_RETRIES)
        except EmbedderUnavailable as error:
            if self._refusal is None:
                logger.warning("the Gemini API could not answer the startup probe", extra={"reason": str(error)})
        except ValueError as error:  # a 400 for a text that is fine: the settings are wrong
            self._refusal = f"the Gemini API refused the startup probe: {error}"
            logger.error("the Gemini API refused the startup probe", extra={"reason": str(error)})

    async def aclose(self) -> None:
        self._closed = True
        await self._client.aio.aclose()
        self._client.close()

    async def check(self) -> None:
        if self._closed:
            raise EmbedderUnavailable("the Gemini embedder has been shut down")
        if self._refusal is not None:
            raise EmbedderUnavailable(self._refusal)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            async with asyncio.timeout(self._deadline):
                return await self._embed_documents(texts)
        except TimeoutError as error:
            raise EmbedderUnavailable(
                f"the Gemini API gave no answer within {self._deadline:g} s, retries included"
            ) from error

    async def _embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        chunks = [list(texts[i : i + MAX_TEXTS_PER_REQUEST]) for i in range(0, len(texts), MAX_TEXTS_PER_REQUEST)]
        if len(chunks) <= 1:
            return await self._embed(chunks[0], "RETRIEVAL_DOCUMENT") if chunks else []
        try:
            async with asyncio.TaskGroup() as group:  # one chunk failing cancels the others
                tasks = [group.create_task(self._embed(c, "RETRIEVAL_DOCUMENT")) for c in chunks]
        except BaseExceptionGroup as failed:  # the worker expects one exception, not a group
            chosen = first_failure(failed)
            raise chosen from chosen.__cause__
        return [vector for task in tasks for vector in task.result()]

    async def embed_query(self, text: str) -> list[float]:
        (vector,) = await self._embed([text], "RETRIEVAL_QUERY", QUERY_RETRIES)
        return vector

    async def _embed(
        self, texts: list[str], task_type: str, retries: types.HttpRetryOptions | None = None
    ) -> list[list[float]]:
        """`retries`: this call's own, instead of the client's."""
        config = types.EmbedContentConfig(
            task_type=task_type,
            output_dimensionality=self._dimensions,
            http_options=types.HttpOptions(retry_options=retries) if retries is not None else None,
        )
        tries = "tried once" if retries is PROBE_RETRIES else "retries spent"
        # One Content per text: plain strings may be folded into one content (one vector) for
        # the SDK's multimodal embedding models.
        contents: list[types.ContentUnion] = [types.Content(parts=[types.Part(text=t)]) for t in texts]
        async with self._queries if task_type == "RETRIEVAL_QUERY" else self._documents:
            try:
                response = await self._client.aio.models.embed_content(
                    model=self._model, contents=contents, config=config
                )
            except errors.APIError as error:
                raise self._failure(error, tries) from error
            except TRANSPORT_ERRORS as error:
                detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                raise EmbedderUnavailable(f"no answer from the Gemini API ({tries}): {detail}") from error
            except ValueError as error:  # the body is not JSON, or not the shape of an answer
                raise EmbedderUnavailable(f"the Gemini API sent a malformed answer: {error}"[:300]) from error
        vectors = unit_vectors(response, len(texts), self._dimensions)
        if self._refusal is not None:
            logger.info("the Gemini API answers again", extra={"was": self._refusal})
            self._refusal = None
        return vectors

    def _failure(self, error: errors.APIError, tries: str) -> Exception:
        """The exception the worker acts on: EmbedderUnavailable unless the text is to blame."""
        what = f"{error.code} {error.status or 'error'}: {error.message or error.details}"
        if error.code == 429:
            return EmbedderUnavailable(f"the Gemini API quota is exhausted ({tries}): {what}")
        if error.code in RETRIED_STATUSES or not 400 <= error.code < 500:
            return EmbedderUnavailable(f"the Gemini API is unavailable ({tries}): {what}")
        if refused_key(error):
            return self._refuse(f"the Gemini API refused MEMORY_GEMINI_API_KEY: {what}")
        if error.code == 404 or error.status == "NOT_FOUND":
            return self._refuse(f"the Gemini API has no model {self._model!r} (MEMORY_GEMINI_MODEL): {what}")
        if error.code in REFUSED_CODES or error.status in REFUSED_STATUSES:
            return self._refuse(f"the Gemini API refused this key's project or region (MEMORY_GEMINI_API_KEY): {what}")
        return ValueError(f"the Gemini API refused the text: {what}")

    def _refuse(self, reason: str) -> EmbedderUnavailable:
        """Remember why, for readiness, until a call succeeds."""
        if self._refusal != reason:
            logger.error("the Gemini API refuses this service's settings", extra={"reason": reason})
        self._refusal = reason
        return EmbedderUnavailable(reason)


def refused_key(error: errors.APIError) -> bool:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
    if error.code == 401 or error.status == "UNAUTHENTICATED":
        return True
    return bool(KEY_REASONS & error_reasons(error.details)) or "API key not valid" in (error.message or "")


def error_reasons(details: Any) -> set[str]:
    """The `reason` of each google.rpc.ErrorInfo in an error body."""
    body = details.get("error", details) if isinstance(details, dict) else {}
    infos = body.get("details") if isinstance(body, dict) else None
    return {i["reason"] for i in infos or [] if isinstance(i, dict) and isinstance(i.get("reason"), str)}


def unit_vectors(response: types.EmbedContentResponse, count: int, dimensions: int) -> list[list[float]]:
    """The answer's vectors, L2-normalised; EmbedderUnavailable, naming the fault, when the
    answer is not one finite vector of `dimensions` per text."""
    embeddings = response.embeddings or []
    if len(embeddings) != count:
        raise EmbedderUnavailable(f"the Gemini API sent {len(embeddings)} vectors for {count} texts")
    vectors = []
    for embedding in embeddings:
        values = embedding.values or []
        if len(values) != dimensions:
            raise EmbedderUnavailable(f"the Gemini API sent a vector of {len(values)} dimensions, not {dimensions}")
        norm = math.sqrt(math.fsum(x * x for x in values))
        if not math.isfinite(norm) or norm == 0:
            raise EmbedderUnavailable("the Gemini API sent a vector that is not finite or is zero")
        vectors.append([x / norm for x in values])
    return vectors


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Of several chunks' failures, the one the worker should act on: the API cannot work
    now (EmbedderUnavailable) before a text it refused."""
    unavailable, rest = group.split(EmbedderUnavailable)
    chosen: BaseException = unavailable or rest or group
    while isinstance(chosen, BaseExceptionGroup):
        chosen = chosen.exceptions[0]
    return chosen
