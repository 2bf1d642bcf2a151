-- The dispatcher's indexes cover only events not yet published, so they stay small
-- however long the outbox keeps published ones, and marking an event published removes
-- it from them instead of moving it within a larger index.
DROP INDEX outbox_unpublished;
-- Claiming: the oldest unpublished events.
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
-- The check that a claim starts at its tenant's oldest unpublished event.
CREATE INDEX outbox_unpublished_tenant ON outbox (tenant_id, seq) WHERE published_at IS NULL;
