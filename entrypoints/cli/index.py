"""`memorymesh reindex` and `memorymesh check-index`: the vector index against PostgreSQL."""

from __future__ import annotations

import argparse
import sys

from config.logging import configure_logging
from config.settings import Settings
from entrypoints.cli.common import STARTUP_ERRORS, Refused, load_settings, refusing


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reindex_parser = commands.add_parser("reindex", help="rebuild the vector index from PostgreSQL (re-embeds)")
    reindex_parser.add_argument("--tenant", help="only this tenant")
    reindex_parser.set_defaults(run=reindex)
    check_parser = commands.add_parser("check-index", help="report drift between PostgreSQL and the vector index")
    check_parser.add_argument("--tenant", help="only this tenant")
    check_parser.set_defaults(run=check_index)


async def reindex(args: argparse.Namespace) -> None:
    await reindex_tenants(args.tenant, load_settings())


async def reindex_tenants(tenant: str | None, settings: Settings) -> None:
    """Rebuild the index of `tenant` (of every tenant when None), with a progress bar each."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from config.container import Container, running

    configure_logging("WARNING")
    with refusing(*STARTUP_ERRORS):
        async with running(settings, Container.reindex) as container:
            reindex = container.reindex()
            for tenant_id in await reindex.tenants(tenant):
                drift = await reindex.drift(tenant_id)
                with tqdm(total=drift.in_store, desc=tenant_id, unit="msg", file=sys.stderr) as bar:
                    done = await reindex(tenant_id, bar.update)
                print(f"{tenant_id}: {done} messages reindexed")


async def check_index(args: argparse.Namespace) -> None:
    from config.container import Container, running

    configure_logging("WARNING")
    drifted = 0
    with refusing(*STARTUP_ERRORS):
        async with running(load_settings(), Container.reindex) as container:
            reindex = container.reindex()
            for tenant_id in await reindex.tenants(args.tenant):
                drift = await reindex.drift(tenant_id)
                drifted += not drift.clean
                state = "in step" if drift.clean else "DRIFT"
                print(
                    f"{tenant_id}: {state}: {drift.in_store} embedded in PostgreSQL, {drift.in_index} in the index, "
                    f"{drift.missing} missing from the index, {drift.extra} extra in it"
                )
    if drifted:
        raise Refused("memorymesh: the index has drifted from PostgreSQL: run `memorymesh reindex`")
