"""The domain's metadata rule is PostgreSQL's: for generated metadata and filters,
`metadata_contains` says what `jsonb @>` says, and `same_json` what `jsonb =` says.

Both sides are checked as a search meets them: the filter as the client sent it, against
the metadata as sent (what keyword and hybrid search hand to @>) and as PostgreSQL gives
it back (what semantic search checks in Python after the vector index answers).
Values travel through the pool's own jsonb codec, as the adapters send them.
"""

from typing import Any

from hypothesis import HealthCheck, given, settings

from adapters.postgres.database import Database
from domain.message import metadata_contains, same_json
from tests.json_strategies import metadata_and_filter

AGREEMENT = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@AGREEMENT
@given(pair=metadata_and_filter())
async def test_metadata_contains_agrees_with_jsonb_containment(
    database: Database, pair: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    metadata, wanted = pair
    row = await database.pool.fetchrow(
        "SELECT $1::jsonb @> $2::jsonb AS contains, $1::jsonb = $2::jsonb AS equal, $1::jsonb AS stored",
        metadata,
        wanted,
    )
    assert metadata_contains(metadata, wanted) == row["contains"]
    assert metadata_contains(row["stored"], wanted) == row["contains"]
    assert same_json(metadata, wanted) == row["equal"]
    assert same_json(metadata, row["stored"])


EDGES = [
    ({"amount": 100.0}, {"amount": 100}),
    ({"n": 7}, {"n": 7.0}),
    ({"paid": True}, {"paid": 1}),
    ({"n": 1e23}, {"n": 10**23}),
    ({"a": [1]}, {"a": 1}),  # an array holds a bare scalar only at the top level
    ({"a": [[1, 2]]}, {"a": [[1]]}),
    ({"a": [1, 1]}, {"a": [1]}),
    ({"a": {}}, {"a": []}),
    ({"a": None}, {"a": False}),
]


async def test_the_edges_agree_with_jsonb(database: Database) -> None:
    for metadata, wanted in EDGES:
        row = await database.pool.fetchrow("SELECT $1::jsonb @> $2::jsonb AS contains", metadata, wanted)
        assert metadata_contains(metadata, wanted) == row["contains"], (metadata, wanted)
