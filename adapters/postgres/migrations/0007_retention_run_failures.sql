-- What a retention run could not do, kept with the run: the tenants it skipped (overrides that
-- no longer fit the default) and those it could not finish, each with why. A run goes on past
-- a tenant that fails, so one tenant's data never stops another's retention.
-- A constant default: no rewrite of the table.
ALTER TABLE retention_runs
    ADD COLUMN skipped  jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN failed   jsonb NOT NULL DEFAULT '{}'::jsonb;
