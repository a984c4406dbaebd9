-- Full-text search reads a message's date as well as its content: a question about
-- "May 2023" or "the 8th of May" finds what was said then (bench/results/quality.md).
-- The date is written in UTC, as '8 May 2023'. to_char() is only STABLE (its TM names
-- follow the locale), but without TM, and at a fixed time zone, this format always gives
-- the same English words: IMMUTABLE is true of this function, so a generated column may
-- call it.
CREATE FUNCTION memorymesh_date_words(at timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_char(at AT TIME ZONE 'UTC', 'FMDD FMMonth YYYY') $$;

-- Rebuilding the column rewrites the table and its GIN index: on a large table this
-- migration takes a while (minutes per million messages), once.
ALTER TABLE messages DROP COLUMN content_tsv;
ALTER TABLE messages ADD COLUMN content_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', content || ' ' || memorymesh_date_words(created_at))) STORED;
CREATE INDEX messages_content_tsv ON messages USING gin (content_tsv);

-- Search looks up the messages next to its best hits, one step of this index each;
-- conversation pages walk it too.
DROP INDEX messages_tenant_conversation_created;
CREATE INDEX messages_tenant_conversation_created ON messages (tenant_id, conversation_id, created_at, id);
