"""A local stand-in for the Gemini API's embedding endpoints: a real HTTP server on a thread.

It speaks what google-genai sends (seen by recording it, not guessed):
`POST /v1beta/models/{model}:batchEmbedContents` with
`{"requests": [{"model": "models/...", "content": {"parts": [{"text": ...}], "role": "user"},
"taskType": ..., "outputDimensionality": ...}]}`, answered `{"embeddings": [{"values": [...]}]}`;
and `POST /v1beta/models/{model}:embedContent` with one request's fields at the top level,
answered `{"embedding": {"values": [...]}}`.

Every request is recorded (path, headers, body). Replies are scripted per request, in order,
then `always` answers the rest: vectors by default, derived from each text's hash and of
length 2 to 3 (not unit length, so a client that forgets to normalise shows).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = re.compile(r"^/(?P<version>v1(?:beta)?)/models/(?P<model>[^/:]+):(?P<method>embedContent|batchEmbedContents)$")


def fake_vector(text: str, dimensions: int) -> list[float]:
    """The fake's vector for a text: repeatable, of length between 2 and 3."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in values))
    length = 2.0 + rng.random()
    return [x / norm * length for x in values]


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def error_body(code: int, status: str, message: str, reason: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        ]
    return json.dumps({"error": error}).encode()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | None = None  # None: a vector for each text asked
    delay: float = 0.0  # seconds before answering
    dimensions: int | None = None  # vectors of this length instead of the one asked for
    count_offset: int = 0  # this many vectors more (or fewer) than texts


OK = Reply()
QUOTA = Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."))
INTERNAL = Reply(500, error_body(500, "INTERNAL", "An internal error has occurred."))
UNAVAILABLE = Reply(503, error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
BAD_KEY = Reply(
    400,
    error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"),
)
BAD_TEXT = Reply(400, error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument."))
NOT_JSON = Reply(200, b"<html><body>502 from a proxy, served as 200</body></html>")
NO_EMBEDDINGS = Reply(200, b'{"usageMetadata": {}}')
NOT_FINITE = Reply(200, b'{"embeddings": [{"values": ["NaN", 1.0, 2.0]}]}')


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The body's requests, one per text (embedContent's single one as a list)."""
        return list(self.body["requests"]) if "requests" in self.body else [self.body]

    @property
    def texts(self) -> list[str]:
        return ["".join(p["text"] for p in r["content"]["parts"]) for r in self.requests]


class FakeGemini:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._script: deque[Reply] = deque()
        self._always = OK
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="fake-gemini", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order."""
        with self._lock:
            self._script.extend(replies)

    def always(self, reply: Reply) -> None:
        """Answer every request past the script with this."""
        with self._lock:
            self._always = reply

    def __enter__(self) -> FakeGemini:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()  # cuts delayed replies short
        self._server.shutdown()
        self._server.server_close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            return self._script.popleft() if self._script else self._always

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _answer(self, path: str, body: Any, reply: Reply) -> tuple[int, bytes]:
        if reply.body is not None:
            return reply.status, reply.body
        match = PATH.match(path)
        if not match:
            return 404, error_body(404, "NOT_FOUND", f"no such method: {path}")
        if match["method"] == "embedContent":
            return 200, json.dumps({"embedding": {"values": self._vector(body, reply)}}).encode()
        vectors = [{"values": self._vector(request, reply)} for request in body["requests"]]
        if reply.count_offset < 0:
            vectors = vectors[: reply.count_offset]
        else:
            vectors += vectors[: reply.count_offset]
        return 200, json.dumps({"embeddings": vectors}).encode()

    @staticmethod
    def _vector(request: dict[str, Any], reply: Reply) -> list[float]:
        text = "".join(p["text"] for p in request["content"]["parts"])
        return fake_vector(text, reply.dimensions or request.get("outputDimensionality") or 3072)


def _handler(fake: FakeGemini) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write: no delayed-ACK stall per request
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.loads(raw) if raw else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = fake._next(Received(self.path, headers, body))
            try:
                if reply.delay:
                    fake._stopping.wait(reply.delay)
                status, data = fake._answer(self.path, body, reply)
                kind = "application/json" if data.startswith((b"{", b"[")) else "text/html"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up waiting
                self.close_connection = True
            finally:
                fake._done()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
