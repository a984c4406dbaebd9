-- memorymesh: outside a transaction
-- The person a message is about (user_id, inside its tenant): GET /v1/users/{user_id}/messages
-- reads a user's messages oldest first, and DELETE /v1/users/{user_id} erases them.
--
-- A nullable column without a default is a change to the catalog only: no row of messages
-- is rewritten, whatever the table holds. The index holds only the rows that name a user,
-- and is built CONCURRENTLY so that writes go on while it is built on a large table; so
-- this migration runs outside a transaction, one statement at a time. An interrupted build
-- leaves an invalid index behind: the next upgrade drops it and builds it again.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS user_id text;
DROP INDEX CONCURRENTLY IF EXISTS messages_tenant_user_created;
CREATE INDEX CONCURRENTLY messages_tenant_user_created ON messages (tenant_id, user_id, created_at, id)
    WHERE user_id IS NOT NULL;
