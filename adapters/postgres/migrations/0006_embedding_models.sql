-- Which model made the vectors in messages.embedding, and the one being built beside it.
--
-- The vector column holds one model's vectors only: every process checks, at start and
-- on every vector it writes or searches, that its model is the active one here. A model
-- change goes through `memorymesh reembed`, which fills messages.embedding_next with
-- the new model's vectors while the old ones keep serving, then swaps the two columns
-- in one transaction and marks the new model active.
--
-- Rows of a database older than this migration are recorded by the first process to
-- start on it: the model it is configured with, if the column's dimension fits it.
CREATE TABLE embedding_models (
    id           serial PRIMARY KEY,
    model        text NOT NULL,
    dimensions   integer NOT NULL CHECK (dimensions > 0),
    state        text NOT NULL CHECK (state IN ('active', 'building', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at   timestamptz
);

-- One active model, and at most one being built.
CREATE UNIQUE INDEX embedding_models_one_active ON embedding_models ((true)) WHERE state = 'active';
CREATE UNIQUE INDEX embedding_models_one_building ON embedding_models ((true)) WHERE state = 'building';

-- While a new model's vectors are built, a message whose content changes loses its new
-- vector (it was made from the old text) and is built again. `memorymesh reembed` adds
-- the trigger with the column and drops both at the switch.
CREATE FUNCTION memorymesh_clear_embedding_next() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.embedding_next := NULL; RETURN NEW; END $$;
