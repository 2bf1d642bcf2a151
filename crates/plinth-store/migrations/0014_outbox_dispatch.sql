-- The dispatcher's check that a claim starts at its tenant's oldest unpublished event:
-- a small index of the unpublished rows only.
CREATE INDEX outbox_unpublished_tenant ON outbox (tenant_id, seq) WHERE published_at IS NULL;
