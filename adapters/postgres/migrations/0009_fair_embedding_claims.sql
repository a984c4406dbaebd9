-- memorymesh: outside a transaction
-- Claims of embedding work go round-robin over the tenants with messages ready
-- (adapters/postgres/embedding_queue.py, TENANTS_WAITING): this index takes a claim
-- from one such tenant to the next in one descent, and to each one's oldest ready
-- messages, without reading the others' queue. It holds pending rows only, and takes
-- the place of messages_embedding_pending (embedding_ready_at alone), which a planner
-- could otherwise pick to find one tenant's messages by reading past everyone else's.
--
-- Built CONCURRENTLY, so that writes go on while it is built on a large table; so this
-- migration runs outside a transaction, one statement at a time. An interrupted build
-- leaves an invalid index behind: the next upgrade drops it and builds it again.
DROP INDEX CONCURRENTLY IF EXISTS messages_embedding_tenant_ready;
CREATE INDEX CONCURRENTLY messages_embedding_tenant_ready ON messages (tenant_id, embedding_ready_at)
    WHERE embedding_status = 'pending';
DROP INDEX CONCURRENTLY IF EXISTS messages_embedding_pending;
