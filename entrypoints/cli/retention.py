"""`memorymesh retention run`: apply the retention policies now."""

from __future__ import annotations

import argparse
import sys

from application.retention import RetentionCounts, RetentionRunning
from config.logging import configure_logging
from domain.errors import ValidationFailed
from entrypoints.cli.common import STARTUP_ERRORS, Refused, load_settings, refusing


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("retention", help="apply the retention policies")
    actions = parser.add_subparsers(dest="action", required=True)
    run_parser = actions.add_parser("run", help="run now, with a progress bar on stderr")
    run_parser.add_argument("--tenant", help="only this tenant")
    run_parser.add_argument("--dry-run", action="store_true", help="count what would be done; change nothing")
    run_parser.set_defaults(run=run_retention)


async def run_retention(args: argparse.Namespace) -> None:
    """Run retention with a progress bar; a nonzero exit when some tenant could not finish."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from config.container import Container, running

    configure_logging("WARNING")
    verb = "would archive / delete" if args.dry_run else "archived / deleted"
    with refusing(*STARTUP_ERRORS, RetentionRunning, ValidationFailed):
        async with running(load_settings(), Container.run_retention) as container:
            retention = container.run_retention()
            planned = await retention.planned(args.tenant)
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
    if run.failed:  # a run that finished, but not for every tenant: a nonzero exit for whoever schedules it
        raise Refused(
            f"memorymesh: retention could not finish {len(run.failed)} tenant(s), named above; the others are done"
        )
