-- The message lifecycle and retention.
-- pinned: retention always keeps the message. restored_at: when it last came back from
-- the archive (its retention age counts from then). updated_at: last PATCH.
ALTER TABLE messages
    ADD COLUMN pinned       boolean NOT NULL DEFAULT false,
    ADD COLUMN restored_at  timestamptz,
    ADD COLUMN updated_at   timestamptz;

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
