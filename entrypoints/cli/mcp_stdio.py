"""`memorymesh mcp`: MCP on stdio for local clients (Claude Desktop, ...), forwarding to a running
memorymesh service at MEMORY_URL with MEMORY_API_KEY."""

from __future__ import annotations

import argparse
import os

from entrypoints.cli.common import Refused

DEFAULT_URL = "http://127.0.0.1:8000"


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "mcp", help="serve MCP on stdio, forwarding to a running service's /mcp (for Claude Desktop and the like)"
    )
    parser.add_argument("--url", help=f"the service's base URL (MEMORY_URL, default {DEFAULT_URL})")
    parser.add_argument("--api-key", help="the API key to call it with (MEMORY_API_KEY)")
    parser.add_argument(
        "--user-id",
        help="the person this agent works for: remember, recall and get_context default to them (MEMORY_USER_ID)",
    )
    parser.set_defaults(run=mcp)


async def mcp(args: argparse.Namespace) -> int | None:
    import logging

    from entrypoints.mcp.proxy import ServiceUnreachable, serve_stdio
    from entrypoints.version import VERSION

    # stdout is the protocol's: the few lines this process logs go to stderr.
    logging.basicConfig(level=logging.WARNING, format="memorymesh mcp: %(message)s")
    url = args.url or os.environ.get("MEMORY_URL") or DEFAULT_URL
    key = args.api_key or os.environ.get("MEMORY_API_KEY")
    if not key:
        raise Refused("memorymesh: mcp needs an API key: set MEMORY_API_KEY (or pass --api-key)")
    try:
        await serve_stdio(url, key, VERSION, args.user_id or os.environ.get("MEMORY_USER_ID") or None)
    except ServiceUnreachable as error:
        raise Refused(f"memorymesh: {error}") from None
    return None
