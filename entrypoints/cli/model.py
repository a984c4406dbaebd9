"""`memorymesh model export`: the local model's ONNX export, made now rather than on first start."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from application.ports.embedder import EmbedderUnavailable
from config.logging import configure_logging
from entrypoints.cli.common import load_settings, refusing


def add_to(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("model", help="the local embedding model")
    actions = parser.add_subparsers(dest="action", required=True)
    exporting = actions.add_parser(
        "export",
        help="export the configured local model to ONNX into the cache, as the first start would: "
        "at install, or when an image is built",
    )
    exporting.add_argument("--cache-dir", type=Path, help="where to (default: MEMORY_EMBEDDING_ONNX_CACHE_DIR)")
    exporting.set_defaults(run=export)


async def export(args: argparse.Namespace) -> None:
    from config.resources import export_local_model

    configure_logging("WARNING")
    with refusing(EmbedderUnavailable):
        path = await asyncio.to_thread(export_local_model, load_settings(embedding_onnx_cache_dir=args.cache_dir))
    print(path)
