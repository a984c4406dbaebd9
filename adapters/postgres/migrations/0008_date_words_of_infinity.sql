-- A created_at of -infinity or infinity (what asyncpg stored for Python's first and last
-- instants, before created_at had a range: domain/instant.py) has no date, and to_char() of
-- it is NULL, which made the whole content_tsv NULL: keyword search never found the message.
-- Such a message is now found by its words. The function gives what it gave for every finite
-- time, so the other rows' stored content_tsv stays right.
CREATE OR REPLACE FUNCTION memorymesh_date_words(at timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN isfinite(at) THEN to_char(at AT TIME ZONE 'UTC', 'FMDD FMMonth YYYY') ELSE '' END $$;

-- The rows stored so get their words now (an UPDATE computes the generated column again).
-- One scan of the table, once; it changes only those rows, if any.
UPDATE messages SET created_at = created_at WHERE NOT isfinite(created_at);
