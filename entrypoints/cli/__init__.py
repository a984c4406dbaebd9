"""The `memorymesh` command: serve the API (and MCP on stdio), manage the database schema."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints.cli import db, index, keys, mcp_stdio, model, reembed, retention, serve, worker
from entrypoints.cli.common import quiet_libraries, run


def main(argv: Sequence[str] | None = None) -> None:
    quiet_libraries()
    parser = argparse.ArgumentParser(prog="memorymesh", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (serve, worker, mcp_stdio, keys, index, reembed, retention, db, model):
        group.add_to(commands)
    args = parser.parse_args(argv)
    run(args.run, args)
