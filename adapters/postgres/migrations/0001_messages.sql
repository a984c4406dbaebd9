-- Messages, their vectors and full-text column; hashed API keys.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE messages (
    id                  uuid PRIMARY KEY,
    tenant_id           text NOT NULL,
    conversation_id     text NOT NULL,
    role                text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content             text NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL,
    importance          double precision NOT NULL CHECK (importance BETWEEN 0 AND 1),
    explicit_importance double precision,
    archived_at         timestamptz,
    embedding           vector({{dimensions}}),
    embedding_status    text NOT NULL DEFAULT 'pending'
                        CHECK (embedding_status IN ('pending', 'embedded', 'failed')),
    content_tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);

CREATE INDEX messages_tenant_conversation_created ON messages (tenant_id, conversation_id, created_at);
CREATE INDEX messages_embedding_hnsw ON messages USING hnsw (embedding vector_cosine_ops);
CREATE INDEX messages_content_tsv ON messages USING gin (content_tsv);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    tenants     text[] NOT NULL DEFAULT '{}',
    admin       boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
