"""`memorymesh serve`: the HTTP API, in this process or in several sharing the port."""

from __future__ import annotations

import argparse
import logging
import os
import socket

from config.logging import configure_logging
from config.settings import Settings
from entrypoints.cli.common import STARTUP_ERRORS, load_settings, refusing


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="serve the HTTP API")
    parser.add_argument("--host", help="address to bind (MEMORY_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (MEMORY_PORT, default 8000)")
    parser.add_argument("--processes", type=int, help="API processes sharing the port (MEMORY_PROCESSES, default 1)")
    parser.set_defaults(run=serve)


async def serve(args: argparse.Namespace) -> int | None:
    settings = load_settings(host=args.host, port=args.port, processes=args.processes)
    configure_logging(settings.log_level)
    if settings.processes > 1:
        from entrypoints.processes import supervise

        return await supervise(settings)
    from config.tracing import configure_tracing

    tracing = configure_tracing(settings, "memorymesh-api")
    try:
        await serve_api(settings)
    finally:
        if tracing is not None:
            tracing.shutdown()  # sends what is still buffered
    return None


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT, so sibling processes can bind the same port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host.strip("[]"), port))
    return sock


async def serve_api(settings: Settings) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from config.container import Container, stop
    from entrypoints.http.app import announce_admin_key, create_app, start_services

    container = Container(settings=settings)
    app = create_app(container)
    try:
        # Start before binding, so a refusal is one clear line rather than a lifespan traceback.
        with refusing(*STARTUP_ERRORS, prefix="cannot start: "):
            await start_services(container, announce_admin_key)
    except BaseException:
        await stop(container)
        raise

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
