"""`memorymesh keys create / list / revoke`: the API keys the service keeps."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from application.api_keys import ManageApiKeys
from application.errors import NotFound
from application.ports.schema import DatabaseUnreachable, SchemaMissing, SchemaNotReady
from application.ports.storage import StorageUnavailable
from config.logging import configure_logging
from domain.access import Principal
from domain.errors import ValidationFailed
from entrypoints.cli.common import Refused, load_settings

# Whoever can run this command where the database is reachable holds the database itself.
OPERATOR = Principal("cli", frozenset(), admin=True)


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("keys", help="the API keys the service keeps")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--tenant", action="append", help="a tenant the key may touch (repeat for more)")
    create.add_argument("--admin", action="store_true", help="an admin key: every tenant, admin routes")
    create.set_defaults(run=create_key)
    actions.add_parser("list", help="list keys (never the keys themselves)").set_defaults(run=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=revoke_key)


async def create_key(args: argparse.Namespace) -> None:
    async with key_manager() as keys:
        created = await keys.create(OPERATOR, args.name, frozenset(args.tenant or []), args.admin)
    print(f"id: {created.id}\nkey: {created.key}\n(the key is shown only this once; keep it)")


async def list_keys(args: argparse.Namespace) -> None:
    async with key_manager() as keys:
        for info in await keys.list_keys(OPERATOR):
            tenants = "*" if info.admin else ",".join(sorted(info.tenants))
            revoked = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
            print(f"{info.id}  {info.name!r}  tenants={tenants}  {revoked}")


async def revoke_key(args: argparse.Namespace) -> None:
    async with key_manager() as keys:
        await keys.revoke(OPERATOR, args.key_id)
    print(f"revoked {args.key_id}")


@asynccontextmanager
async def key_manager() -> AsyncIterator[ManageApiKeys]:
    """ManageApiKeys over the service's database, never migrating it: migrating sizes the
    vector column to the model, and this command loads no model."""
    from config.container import Container, running

    configure_logging("WARNING")
    settings = load_settings().model_copy(update={"auto_migrate": False})
    try:
        async with running(settings, Container.manage_api_keys) as container:
            yield container.manage_api_keys()
    except SchemaMissing:
        raise Refused("memorymesh: the database has no schema yet: run `memorymesh db upgrade` first") from None
    except DatabaseUnreachable as error:
        raise Refused(f"memorymesh: cannot reach the database: {error.kind}: {error.detail}") from None
    except (NotFound, ValidationFailed, SchemaNotReady, StorageUnavailable) as error:
        raise Refused(f"memorymesh: {error}") from None
