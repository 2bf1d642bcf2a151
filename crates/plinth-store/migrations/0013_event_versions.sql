-- Each event records the version of its payload's shape (plinth-events catalogue).
ALTER TABLE outbox ADD COLUMN event_version BIGINT NOT NULL DEFAULT 1;
-- A tenant's events, newest first (GET /api/v1/tenants/{tenant}/events).
CREATE INDEX outbox_tenant_seq ON outbox (tenant_id, seq);
