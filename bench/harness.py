"""What every bench shares: a memorymesh server or a bare PostgreSQL to measure, LoCoMo, and the figures.

A bench is run as `.venv/bin/python bench/<name>.py`, so bench/ is first on its path and
`from harness import ...` finds this module; the project's packages are installed
(editable). Nothing here is taken out of the test suite: the benches measure, the tests assert.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOCOMO = ROOT.parent / "shared" / "data" / "locomo10.json"
MEMORYMESH = Path(sys.executable).parent / "memorymesh"
START_TIMEOUT_SECONDS = 240
SETUP_TIMEOUT = 3_600.0  # seconds a set-up statement (a bulk load, an index build) may take

T = TypeVar("T")


# --- Waiting --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], T], bound_seconds: float, what: str) -> T:
    """Poll `condition` until it returns something true (returned); RuntimeError after the bound."""
    deadline = time.monotonic() + bound_seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {what} within {bound_seconds:g} s")
        time.sleep(0.05)
    return result


# --- A memorymesh server --------------------------------------------------------------------


def launcher(python: Path, directory: Path) -> Path:
    """An executable in `directory` that runs `memorymesh` with `python` (another checkout's
    interpreter: the baseline a bench measures beside this build)."""
    script = directory / "memorymesh-baseline"
    script.write_text(f"#!{python}\nimport sys\nfrom entrypoints.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


class ServerProcess:
    """`memorymesh serve` on `data_dir`, on a free port, its output in `<data_dir>.log`."""

    def __init__(self, data_dir: Path, executable: Path = MEMORYMESH, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.executable = executable
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")},
            "MEMORY_DATA_DIR": str(data_dir),
            "MEMORY_PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines(keepends=True)

    def start(self) -> ServerProcess:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [str(self.executable), "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
            )
        return self

    def wait_ready(self) -> ServerProcess:
        """Until its health route answers; RuntimeError, with its output, if it exits or takes too long."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v1/admin/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.25)
        raise RuntimeError(f"server not up after {START_TIMEOUT_SECONDS}s:\n{self.output}")

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; killed (and TimeoutExpired raised) if still there after 60 s."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"x-api-key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


BATCH_REQUEST = 500  # messages per POST /v1/messages/batch (the most it takes)


async def queue_status(client: httpx.AsyncClient) -> dict[str, Any]:
    """GET /v1/admin/queue (an admin key's client)."""
    response = await client.get("/v1/admin/queue")
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


async def post_batches(client: httpx.AsyncClient, messages: list[dict[str, Any]]) -> None:
    """Store `messages` through POST /v1/messages/batch, BATCH_REQUEST a request, one request at a time."""
    for i in range(0, len(messages), BATCH_REQUEST):
        response = await client.post("/v1/messages/batch", json={"messages": messages[i : i + BATCH_REQUEST]})
        if response.status_code != 202:
            raise RuntimeError(f"batch answered {response.status_code}: {response.text[:500]}")


async def wait_until_drained(client: httpx.AsyncClient, give_up_after: float, poll: float = 0.1) -> dict[str, Any]:
    """Poll the queue until nothing is pending or claimed; return that last status."""
    deadline = time.perf_counter() + give_up_after
    while True:
        status = await queue_status(client)
        if status["pending"] + status["claimed"] == 0:
            return status
        if time.perf_counter() > deadline:
            raise RuntimeError(f"queue not drained after {give_up_after:.0f}s: {status}")
        await asyncio.sleep(poll)


def postgres_running_on(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


# --- A bare embedded PostgreSQL (the benches that measure below HTTP) -----------------------


class PostgresServer:
    """The embedded PostgreSQL 18 + pgvector a bench started under `scratch`, and the databases it holds."""

    def __init__(self, admin: Any, scratch: Path, dimensions: int) -> None:
        self.admin = admin  # a Database on the server's own database, to create and drop the others
        self.pgdata = scratch / "pg"
        self.data_dir = scratch
        self.dimensions = dimensions
        self.cpu = PostgresCpu(self.pgdata)

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls, scratch: Path, dimensions: int) -> AsyncIterator[PostgresServer]:
        async with open_database(None, scratch, dimensions, pool_max_size=2, command_timeout=SETUP_TIMEOUT) as admin:
            yield cls(admin, scratch, dimensions)

    def dsn(self, name: str) -> str:
        return urlsplit(self.admin.dsn)._replace(path=f"/{name}").geturl()

    async def copy(self, source: str, name: str) -> None:
        await self.admin.pool.execute(f"CREATE DATABASE {name} TEMPLATE {source} STRATEGY FILE_COPY")

    async def drop(self, name: str) -> None:
        await self.admin.pool.execute(f"DROP DATABASE {name}")

    def database(self, name: str, command_timeout: float | None = None) -> contextlib.AbstractAsyncContextManager[Any]:
        """A pool on database `name`, as the service opens one (the service's command timeout unless told)."""
        return open_database(self.dsn(name), self.data_dir, self.dimensions, command_timeout=command_timeout)

    async def wal_position(self) -> int:
        position: int = await self.admin.pool.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
        )
        return position


def open_database(
    url: str | None, data_dir: Path, dimensions: int, command_timeout: float | None = None, **options: Any
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The container's database resource, opened on its own: `url` None starts the embedded server."""
    from adapters.postgres import database
    from config.settings import Settings

    timeout = command_timeout or float(Settings.model_fields["db_command_timeout_seconds"].default)
    settings = database.DatabaseOptions(url=url, data_dir=data_dir, command_timeout=timeout, **options)
    return contextlib.asynccontextmanager(database.open_database)(settings, dimensions)


class PostgresCpu:
    """CPU seconds of the embedded server's processes (a process that exits in between is not counted)."""

    def __init__(self, pgdata: Path) -> None:
        self._postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))

    def snapshot(self) -> dict[int, float]:
        seconds = {}
        for process in [self._postmaster, *self._postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system
        return seconds

    def since(self, before: dict[int, float]) -> float:
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in self.snapshot().items())


class RssSampler:
    """This process's RSS, sampled in a thread every 10 ms (the event loop may be busy)."""

    def __init__(self, every: float = 0.01) -> None:
        self._process = psutil.Process()
        self._every = every
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            self._stop.wait(self._every)

    def restart(self) -> int:
        """Start a new peak from now; the RSS now."""
        self._peak = self._process.memory_info().rss
        return self._peak

    def peak(self) -> int:
        return max(self._peak, self._process.memory_info().rss)


# --- LoCoMo ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str  # "D3:12": session 3, turn 12
    speaker: str
    role: str  # "user" for the conversation's speaker A, "assistant" for B
    text: str


@dataclass(frozen=True, slots=True)
class Session:
    number: int
    date_time: str  # as LoCoMo writes it: "1:56 pm on 8 May, 2023"
    turns: tuple[Turn, ...]

    @property
    def began(self) -> datetime:
        """The session's date and time, read as UTC."""
        return datetime.strptime(self.date_time.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    category: int  # 1-4 answerable; 5 asks about what the conversation never says
    evidence: tuple[str, ...]  # dia_ids as LoCoMo writes them (a few in other forms)


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    sessions: tuple[Session, ...]  # in order
    questions: tuple[Question, ...]

    def messages(self) -> list[dict[str, str]]:
        """Every turn, session by session, as the body of a message (without its tenant)."""
        return [
            {"conversation_id": self.id, "role": turn.role, "content": turn.text}
            for session in self.sessions
            for turn in session.turns
        ]


def locomo(conversations: int | None = None) -> list[Conversation]:
    """LoCoMo (`../shared/data/locomo10.json`): its 10 conversations, or the first `conversations`."""
    loaded = []
    for raw in json.loads(LOCOMO.read_text())[:conversations]:
        sessions = raw["conversation"]
        numbers = sorted(int(k.split("_")[1]) for k in sessions if re.fullmatch(r"session_\d+", k))
        loaded.append(
            Conversation(
                raw["sample_id"],
                tuple(
                    Session(
                        number,
                        sessions[f"session_{number}_date_time"],
                        tuple(
                            Turn(
                                t["dia_id"],
                                t["speaker"],
                                "user" if t["speaker"] == sessions["speaker_a"] else "assistant",
                                t["text"],
                            )
                            for t in sessions[f"session_{number}"]
                        ),
                    )
                    for number in numbers
                ),
                tuple(Question(q["question"], q["category"], tuple(q.get("evidence", []))) for q in raw["qa"]),
            )
        )
    return loaded


def locomo_turns() -> list[dict[str, str]]:
    """Every LoCoMo turn as a message body, conversation by conversation, session by session."""
    return [message for conversation in locomo() for message in conversation.messages()]


def locomo_questions(conversations: int | None = None) -> list[str]:
    """The questions about every conversation, or about the first `conversations`."""
    return [question.text for conversation in locomo(conversations) for question in conversation.questions]


# --- Figures --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank `p`th percentile (p in 0-100); NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size / 2**10:,.0f} KiB"


def machine() -> str:
    """The cores this process may use, the CPU, the RAM and the kernel."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    gib = f", {int(memory.group(1)) / 2**20:.0f} GiB RAM" if memory else ""
    cpu = model.group(1).strip() if model else platform.processor() or "unknown CPU"
    return f"nproc {len(os.sched_getaffinity(0))}, {cpu}{gib}; {platform.system()} {platform.release()}"
