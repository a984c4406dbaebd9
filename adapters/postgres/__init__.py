"""Everything that speaks SQL: the pool, migrations, the message repository, pgvector."""
