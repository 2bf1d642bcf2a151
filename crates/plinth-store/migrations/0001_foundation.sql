-- Foundation: users and platform roles, one-time tokens, the audit log and the outbox.
-- Portable SQL; {{uuid}}, {{ts}}, {{json}}, {{bytes}} and {{serial_pk}} become each
-- backend's native type (see src/migrate.rs).

CREATE TABLE users (
    id {{uuid}} PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    email_verified_at {{ts}},
    display_name TEXT NOT NULL,
    password_hash TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'locked')),
    locked_until {{ts}},
    failed_logins BIGINT NOT NULL DEFAULT 0,
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL,
    last_login_at {{ts}}
);
CREATE UNIQUE INDEX users_email_normalized ON users (email_normalized);

CREATE TABLE platform_role_assignments (
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    granted_at {{ts}} NOT NULL,
    granted_by {{uuid}},
    PRIMARY KEY (user_id, role)
);
CREATE INDEX platform_role_assignments_role ON platform_role_assignments (role);

-- Hashed single-use tokens: setup, e-mail verification, password reset, invitations.
CREATE TABLE one_time_tokens (
    id {{uuid}} PRIMARY KEY,
    purpose TEXT NOT NULL,
    token_hash {{bytes}} NOT NULL,
    user_id {{uuid}} REFERENCES users (id) ON DELETE CASCADE,
    tenant_id {{uuid}},
    email TEXT,
    data {{json}},
    created_at {{ts}} NOT NULL,
    expires_at {{ts}} NOT NULL,
    used_at {{ts}}
);
CREATE UNIQUE INDEX one_time_tokens_hash ON one_time_tokens (token_hash);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at);

-- Append-only audit log, hash-chained per tenant ('platform' for platform-wide records).
CREATE TABLE audit_chain_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_log (
    id {{uuid}} PRIMARY KEY,
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    tenant_id {{uuid}},
    occurred_at {{ts}} NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id {{uuid}},
    impersonator_id {{uuid}},
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    -- Canonical JSON text, hashed byte for byte (JSONB would re-encode numbers).
    changes TEXT,
    reason TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, seq);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, occurred_at);
CREATE INDEX audit_log_action ON audit_log (action);

-- Transactional outbox: events written in the same transaction as the change.
CREATE TABLE outbox (
    seq {{serial_pk}},
    id {{uuid}} NOT NULL,
    tenant_id {{uuid}},
    event_type TEXT NOT NULL,
    subject TEXT,
    data {{json}} NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id {{uuid}},
    request_id TEXT,
    occurred_at {{ts}} NOT NULL,
    published_at {{ts}}
);
CREATE UNIQUE INDEX outbox_id ON outbox (id);
CREATE INDEX outbox_unpublished ON outbox (published_at, seq);
