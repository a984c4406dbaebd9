-- Background embedding: the messages table is the queue of record. A pending row is
-- claimable once embedding_ready_at has passed; a claim pushes it forward by the lease,
-- so a worker that dies mid-batch hands its rows back when the lease runs out, and a
-- failed attempt pushes it forward by the retry delay.
-- Idempotent writes: one message per (tenant, client_message_id). stored_at is when the
-- service accepted the row (created_at may be an imported, older time).
ALTER TABLE messages
    ADD COLUMN stored_at           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN client_message_id   text,
    ADD COLUMN embedding_attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN embedding_claim     uuid,
    ADD COLUMN embedding_ready_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN embedding_error     text;

CREATE UNIQUE INDEX messages_client_message_id ON messages (tenant_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
CREATE INDEX messages_embedding_pending ON messages (embedding_ready_at) WHERE embedding_status = 'pending';
CREATE INDEX messages_embedding_failed ON messages (tenant_id) WHERE embedding_status = 'failed';
