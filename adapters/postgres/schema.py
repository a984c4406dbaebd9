"""The schema of the PostgreSQL store, for `memorymesh db upgrade` and `memorymesh db current`."""

from __future__ import annotations

from adapters.postgres.database import DatabaseOptions, Dimensions, schema_status, upgrade_schema
from application.ports.schema import Schema, SchemaVersions


class PgSchema(Schema):
    """Each call reaches the server (starting the embedded one for the call) on a connection of
    its own: no pool, and no model unless a migration must run (`dimensions` is asked then)."""

    def __init__(self, options: DatabaseOptions, dimensions: Dimensions) -> None:
        self._options = options
        self._dimensions = dimensions

    async def upgrade(self) -> list[str]:
        return await upgrade_schema(self._options, self._dimensions)

    async def versions(self) -> SchemaVersions:
        applied, pending = await schema_status(self._options)
        return SchemaVersions(tuple(applied), tuple(pending))
