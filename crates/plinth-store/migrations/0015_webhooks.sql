-- Webhooks (plinth-events::webhooks): the endpoints a tenant registers, one delivery per
-- event and endpoint, and every attempt to make it.
CREATE TABLE webhook_endpoints (
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON list of event type filters, each a name or `prefix.*`; empty: every event.
    event_types TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- Since when it has been enabled (registered, or enabled again): events that happened
    -- before, while it was disabled among them, are not delivered to it.
    listening_since {{ts}} NOT NULL,
    -- Why Plinth disabled it ('gone': the endpoint answered 410; 'failing': nothing
    -- succeeded for days); NULL when enabled or disabled by a person.
    disabled_reason TEXT,
    -- The signing secret, sealed with the master key.
    secret {{bytes}} NOT NULL,
    -- After a rotation the previous secret signs too, until it expires.
    previous_secret {{bytes}},
    previous_secret_expires_at {{ts}},
    -- Since when every attempt has failed; NULL after a success.
    failing_since {{ts}},
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_deliveries (
    -- Sent as `webhook-id`; the same on every attempt, so receivers can drop repeats.
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id {{uuid}} NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The outbox event delivered (NULL: a test event).
    event_id {{uuid}},
    event_type TEXT NOT NULL,
    -- The JSON body, kept because the outbox prunes published events sooner than a
    -- dead delivery may be replayed.
    body TEXT NOT NULL,
    -- 'pending', 'delivered' or 'dead' (every attempt failed: the dead-letter queue).
    status TEXT NOT NULL,
    -- Attempts made, and attempts made since the schedule last started (a replay
    -- starts it again).
    attempts BIGINT NOT NULL,
    round_attempts BIGINT NOT NULL,
    next_attempt_at {{ts}},
    -- A process attempting the delivery holds it until then.
    leased_until {{ts}},
    created_at {{ts}} NOT NULL,
    finished_at {{ts}}
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (tenant_id, event_id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    delivery_id {{uuid}} NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    -- 1 for the first attempt.
    attempt BIGINT NOT NULL,
    attempted_at {{ts}} NOT NULL,
    duration_ms BIGINT NOT NULL,
    -- The HTTP status (NULL: no answer; `error` says why).
    status_code BIGINT,
    error TEXT,
    -- The first bytes of the answer's body.
    response TEXT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
