"""`memorymesh db upgrade` and `memorymesh db current`: the database schema."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from application.ports.schema import SchemaNotReady
from config.logging import configure_logging
from entrypoints.cli.common import load_settings, refusing

if TYPE_CHECKING:
    from config.container import Container


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("db", help="the database schema")
    parser.add_argument("action", choices=["upgrade", "current"])
    parser.set_defaults(run=db)


async def db(args: argparse.Namespace) -> None:
    from config.container import Container, running

    configure_logging("WARNING")
    with refusing(SchemaNotReady):
        async with running(load_settings(), Container.schema) as container:
            await ACTIONS[args.action](container)


async def upgrade(container: Container) -> None:
    applied = await container.schema().upgrade()  # loads the model only when a migration must run
    print("applied: " + (", ".join(applied) if applied else "nothing, the schema is current"))


async def current(container: Container) -> None:
    versions = await container.schema().versions()
    print(f"current: {versions.applied[-1] if versions.applied else 'empty database'}")
    print("pending: " + (", ".join(versions.pending) if versions.pending else "none"))


ACTIONS = {"upgrade": upgrade, "current": current}
