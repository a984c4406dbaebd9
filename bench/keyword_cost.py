"""What one many-word keyword search costs in PostgreSQL, whatever the tenant has stored.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/keyword_cost.py
    ../old/.venv/bin/python bench/keyword_cost.py      # the same against another checkout's code

Starts an embedded PostgreSQL (a temporary directory), stores --messages messages of one
tenant, each of 40 words out of a vocabulary of --words, and times the keyword search of a
query holding every word of the vocabulary (the issue's case: 514 words over about 1,900
matching messages took 14.7 s), and of a short one. Prints the median of --runs, in ms.
The code measured is the checkout that runs the script (its adapters), so old and new
can be compared in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from adapters.postgres.database import DatabaseOptions, EmbeddedPostgres, open_database
from adapters.postgres.messages import PgMessageRepository
from adapters.postgres.text_search import PgTextSearch
from application.ports.filters import SearchFilters
from domain.message import EmbeddingStatus, Message, Role


def message(tenant: str, content: str) -> Message:
    return Message(
        id=uuid.uuid4(),
        tenant_id=tenant,
        conversation_id="c1",
        role=Role.USER,
        content=content,
        metadata={},
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        importance=0.5,
        explicit_importance=None,
        embedding_status=EmbeddingStatus.PENDING,
    )


async def measure(dsn: str, data_dir: Path, args: argparse.Namespace) -> None:
    resource = open_database(DatabaseOptions(url=dsn, data_dir=data_dir, command_timeout=600), 384)
    database = await anext(resource)
    try:
        repository, search = PgMessageRepository(database), PgTextSearch(database)
        rng = random.Random(5)
        vocabulary = [f"w{i:03d}x" for i in range(args.words)]
        rows = [message("loud", " ".join(rng.sample(vocabulary, 40))) for _ in range(args.messages)]
        for start in range(0, len(rows), 500):
            await repository.add_many(rows[start : start + 500])
        await database.pool.execute("ANALYZE messages")
        for name, query in [("every word", " ".join(vocabulary)), ("three words", " ".join(vocabulary[:3]))]:
            timings = []
            for _ in range(args.runs):
                started = time.perf_counter()
                hits = await search.keyword_search("loud", query, 10, SearchFilters())
                timings.append((time.perf_counter() - started) * 1000)
            print(f"{name:12s} ({len(query.split())} words): {statistics.median(timings):9.1f} ms  ({len(hits)} hits)")
    finally:
        await resource.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--words", type=int, default=514)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memorymesh-keyword-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        try:
            asyncio.run(measure(server.start(), Path(tmp), args))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
