"""Run the real `memorymesh serve` in a child process and talk to it over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

MEMORYMESH = str(Path(sys.executable).parent / "memorymesh")
START_TIMEOUT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mapped_libraries(pid: int) -> set[str]:
    """The file names a running process has mapped: its shared libraries, among others."""
    return {Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}


def wait_until(condition, bound_seconds: float, what: str):  # type: ignore[no-untyped-def]
    """Poll `condition` until it returns something true (returned), failing after the bound."""
    deadline = time.monotonic() + bound_seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not {what} within {bound_seconds}s"
        time.sleep(0.05)
    return result


class ServerProcess:
    """`memorymesh serve`, ready once its health route answers."""

    command = "serve"

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")},
            "MEMORY_DATA_DIR": str(data_dir),
            "MEMORY_PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            **env,
        }
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def start(self) -> ServerProcess:
        self.lines.clear()
        self.process = subprocess.Popen(
            [MEMORYMESH, self.command],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.data_dir.parent,
        )
        threading.Thread(target=self._collect, args=(self.process,), daemon=True).start()
        return self

    def _collect(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/v1/admin/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not up after {START_TIMEOUT_SECONDS}s:\n{self.output}")

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT_SECONDS, times: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.output.count(text) < times:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"process exited with {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout}s:\n{self.output}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            # What it was doing when it would not stop: its log, not only the timeout.
            stuck = f"{self.command} did not stop within 60 s of SIGTERM; its output:\n{self.output}"
            raise AssertionError(stuck) from None

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"x-api-key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


class WorkerProcess(ServerProcess):
    """`memorymesh worker` (arq), ready once it says so."""

    command = "worker"

    def wait_ready(self) -> WorkerProcess:
        self.wait_for_output("memorymesh worker ready")
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, claims stay held until their lease runs out."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)


def postgres_running_on(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class RedisServer:
    """A redis-server of the test's own, without persistence: killing it loses every queued job."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed (.ci/run uses it too)"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)
