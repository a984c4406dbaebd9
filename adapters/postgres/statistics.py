"""The planner's statistics on messages, kept current after large writes.

What a search costs follows the plan PostgreSQL picks, and the plan follows what ANALYZE last
saw of messages: how many rows, how many are embedded, how the words and times spread.
Autovacuum analyses the table once about a tenth of it changed, but only looks every
autovacuum_naptime (a minute), and then after its vacuum: right after a bulk import, searches
were planned for the table as it was before it (issue 22: hybrid p50 505 ms for 87 ms steady,
keyword 344 for 20; bench/results/after_import.md). So the adapters that write many rows
(an insert, the embedding worker's completions) tell this one how many, and it runs ANALYZE:

- when enough rows changed since the last one: at least `after_rows`, and at least
  ANALYZE_SHARE of the table (autovacuum's own rule, so a large table is not analysed more
  often than autovacuum would: only sooner). Changed counts this process's writes and
  pg_stat_user_tables.n_mod_since_analyze (every process's, reported up to seconds late);
- in a task of its own: a write never waits for it and never fails by it (a failure is
  logged, and tried again a few times, then left to the next writes or to autovacuum);
- one at a time in this process, and spaced so that it takes at most about ANALYZE_DUTY of
  the time (ANALYZE reads a sample of at most 30,000 rows, so it costs about the same at
  any size: 0.1-0.3 s here at 10,000 rows; a VACUUM grows with the table, and is spaced by
  its own duration the same way);
- VACUUM (ANALYZE) instead, when dead rows are past VACUUM_SHARE of the table (autovacuum's
  rule again, and its pacing): each embedded row leaves three dead versions behind (the
  claim, the completion and the vector are three UPDATEs, none of them HOT), which searches
  read past until a VACUUM;
- ANALYZE and VACUUM take a SHARE UPDATE EXCLUSIVE lock, which reads and writes do not wait
  for. It waits at most LOCK_TIMEOUT for a VACUUM or another process's ANALYZE, which then
  keep the statistics current themselves, and never long enough to cancel an autovacuum.

The statistics are the whole table's: one tenant's import makes ANALYZE run, but no tenant's
request waits for it. What a tenant's keyword search counts as common is its own
(adapters/postgres/text_search.py), not these statistics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import asyncpg

from adapters.postgres.database import STORAGE_FAILURES, Database

logger = logging.getLogger(__name__)

ANALYZE_SHARE = 0.1  # of the table's rows, changed since the last ANALYZE
ANALYZE_DUTY = 0.1  # the share of the time spent in ANALYZE, at most (about)
MIN_INTERVAL_SECONDS = 1.0  # between two ANALYZEs of this process
SETTLE_SECONDS = 0.5  # after a write is reported: it commits, and its counts reach pg_stat
RETRY_SECONDS = 5.0
MAX_TRIES = 3  # in a row, before leaving it to the next writes (or autovacuum)
LOCK_TIMEOUT = "500ms"  # below deadlock_timeout (1 s), after which an autovacuum in the way is cancelled
ANALYZE_TIMEOUT_SECONDS = 300  # a large table's sample takes longer than a request's statement may

FAILURES: tuple[type[BaseException], ...] = (*STORAGE_FAILURES, asyncpg.PostgresError)

VACUUM_SHARE = 0.2  # dead rows, of the table's rows, past which it is VACUUM (ANALYZE): autovacuum's rule
VACUUM_COST_DELAY = "2ms"  # autovacuum's: a VACUUM here paces its reads as autovacuum would

CHANGED = """
SELECT coalesce(s.n_mod_since_analyze, 0) AS changed, coalesce(s.n_dead_tup, 0) AS dead,
       greatest(c.reltuples, 0)::bigint AS rows
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'messages'::regclass
"""


class PgStatisticsUpkeep:
    """Runs ANALYZE (or VACUUM (ANALYZE)) messages in the background once enough rows were written (see above)."""

    def __init__(self, database: Database, after_rows: int, retry_seconds: float = RETRY_SECONDS) -> None:
        self._database = database
        self._after_rows = after_rows  # 0: never (autovacuum alone)
        self._retry_seconds = retry_seconds
        self._written = 0  # rows this process reported since its last ANALYZE
        self._not_before = 0.0  # monotonic: the next check or ANALYZE
        self._task: asyncio.Task[None] | None = None
        self.analyzed = 0  # ANALYZEs run (for tests and logs)
        self.failed = 0
        self.vacuumed = 0  # of which VACUUM (ANALYZE)

    def rows_written(self, count: int) -> None:
        """`count` rows of messages were inserted or changed. Returns at once; never raises."""
        if self._after_rows <= 0 or count <= 0:
            return
        self._written += count
        if self._task is None and self._written >= self._after_rows:
            self._task = asyncio.get_running_loop().create_task(self._upkeep(), name="analyze-messages")
            self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and (error := task.exception()) is not None:  # a bug: say so, once
            logger.error("statistics upkeep stopped", exc_info=error)

    async def close(self) -> None:
        """Stop a run in progress (its ANALYZE is cancelled with the connection's statement)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _upkeep(self) -> None:
        tries = 0
        while self._written >= self._after_rows and tries < MAX_TRIES:
            await asyncio.sleep(max(SETTLE_SECONDS, self._not_before - time.monotonic()))
            written = self._written
            started = time.monotonic()
            try:
                row = await self._database.pool.fetchrow(CHANGED)
                assert row is not None  # the table exists: the schema was checked at start
                if max(written, row["changed"]) < max(self._after_rows, ANALYZE_SHARE * row["rows"]):
                    # Not yet: the table is large. Look again after the next writes, not before a second.
                    self._not_before = started + MIN_INTERVAL_SECONDS
                    return
                await self._analyze(vacuum=row["dead"] >= VACUUM_SHARE * max(row["rows"], written))
            except FAILURES as error:
                tries += 1
                self.failed += 1
                self._not_before = time.monotonic() + self._retry_seconds
                logger.warning(
                    "could not analyze messages; searches keep the plans of the last statistics",
                    extra={"reason": f"{type(error).__name__}: {error}", "tries": tries},
                )
                continue
            tries = 0
            self.analyzed += 1
            self._written -= written
            took = time.monotonic() - started
            self._not_before = time.monotonic() + max(MIN_INTERVAL_SECONDS, took * (1 / ANALYZE_DUTY - 1))
            logger.info("analyzed messages", extra={"rows_written": written, "seconds": round(took, 3)})

    async def _analyze(self, vacuum: bool = False) -> None:
        """ANALYZE; VACUUM (ANALYZE) when `vacuum` (which runs outside a transaction, so its
        settings are the session's for the while, and put back after)."""
        statement = "VACUUM (ANALYZE) messages" if vacuum else "ANALYZE messages"
        async with self._database.pool.acquire() as conn:
            await conn.execute(
                f"SET lock_timeout = '{LOCK_TIMEOUT}'; SET statement_timeout = '{ANALYZE_TIMEOUT_SECONDS}s'; "
                f"SET vacuum_cost_delay = '{VACUUM_COST_DELAY}'"
            )
            try:
                await conn.execute(statement, timeout=ANALYZE_TIMEOUT_SECONDS + 5)  # past the pool's own
            finally:
                await conn.execute("RESET lock_timeout; RESET statement_timeout; RESET vacuum_cost_delay")
        self.vacuumed += vacuum


@asynccontextmanager
async def statistics_upkeep(database: Database, after_rows: int) -> AsyncIterator[PgStatisticsUpkeep]:
    upkeep = PgStatisticsUpkeep(database, after_rows)
    try:
        yield upkeep
    finally:
        await upkeep.close()
