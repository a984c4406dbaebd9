-- The message lifecycle and retention.
-- pinned: retention always keeps the message. restored_at: when it last came back from
-- the archive (its retention age counts from then). updated_at: last PATCH.
ALTER TABLE messages
    ADD COLUMN pinned       boolean NOT NULL DEFAULT false,
    ADD COLUMN restored_at  timestamptz,
    ADD COLUMN updated_at   timestamptz;

-- Archived messages are never searched, so the HNSW index leaves them out: archiving a row
-- then inserts nothing into the graph. Before, each archived row whose new version did not
-- fit on its page was inserted into HNSW again (about 4 ms a row: 94% of a retention run,
-- bench/results/retention.md). Rebuilding the index here takes a while on a large table.
DROP INDEX messages_embedding_hnsw;
CREATE INDEX messages_embedding_hnsw ON messages USING hnsw (embedding vector_cosine_ops) WHERE archived_at IS NULL;
-- Room on each page, so that archiving, restoring and PATCHes are more often HOT updates,
-- which touch no index at all (applies to pages written from now on).
ALTER TABLE messages SET (fillfactor = 90);

-- Retention walks a tenant's messages oldest first, and conversation listings page
-- through one conversation in time order; both by (created_at, id) keyset.
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at, id);

-- Per-tenant retention overrides: only the fields a tenant sets (a JSON null for
-- archive_after_days / delete_after_days means never); the rest follow the settings.
CREATE TABLE tenant_retention (
    tenant_id   text PRIMARY KEY,
    policy      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per retention run: a scheduled run is due when no complete run started within
-- MEMORY_RETENTION_SCHEDULE_SECONDS, so a run cut short by a crash is taken up again.
CREATE TABLE retention_runs (
    id           uuid PRIMARY KEY,
    trigger      text NOT NULL,
    tenant_id    text,
    dry_run      boolean NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    archived     bigint NOT NULL DEFAULT 0,
    deleted      bigint NOT NULL DEFAULT 0,
    examined     bigint NOT NULL DEFAULT 0
);
CREATE INDEX retention_runs_started ON retention_runs (started_at DESC);
