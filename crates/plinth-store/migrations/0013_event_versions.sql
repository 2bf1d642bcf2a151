-- Each event records the version of its payload's shape (plinth-events catalogue).
ALTER TABLE outbox ADD COLUMN event_version BIGINT NOT NULL DEFAULT 1;
