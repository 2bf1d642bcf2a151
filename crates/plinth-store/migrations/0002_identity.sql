-- Identity: signing keys, sessions and refresh tokens, MFA, API keys, the e-mail queue.

-- Proves at start-up that the configured master key is the one that sealed the secrets.
CREATE TABLE master_key_check (
    id BIGINT PRIMARY KEY,
    sealed {{bytes}} NOT NULL,
    created_at {{ts}} NOT NULL
);

-- Ed25519 keys signing access tokens; the private half sealed with the master key.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_key {{bytes}} NOT NULL,
    private_key_sealed {{bytes}} NOT NULL,
    created_at {{ts}} NOT NULL,
    -- No longer signs from this time; still verifies until published_until.
    retired_at {{ts}},
    published_until {{ts}}
);

ALTER TABLE users ADD COLUMN authz_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE sessions (
    id {{uuid}} PRIMARY KEY,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'token' (access + refresh token pair) or 'browser' (console cookie).
    kind TEXT NOT NULL,
    -- Browser sessions: digest of the cookie's secret.
    secret_hash {{bytes}},
    -- Authentication methods used, comma-separated RFC 8176 values (pwd, otp, hwk, mfa).
    amr TEXT NOT NULL,
    tenant_id {{uuid}},
    portal TEXT,
    ip TEXT,
    user_agent TEXT,
    created_at {{ts}} NOT NULL,
    last_seen_at {{ts}} NOT NULL,
    expires_at {{ts}} NOT NULL,
    revoked_at {{ts}},
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);
CREATE UNIQUE INDEX sessions_secret ON sessions (secret_hash);

-- Rotated on every use; a used token presented again revokes its session (its family).
CREATE TABLE refresh_tokens (
    id {{uuid}} PRIMARY KEY,
    session_id {{uuid}} NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash {{bytes}} NOT NULL,
    created_at {{ts}} NOT NULL,
    expires_at {{ts}} NOT NULL,
    used_at {{ts}},
    revoked_at {{ts}}
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE mfa_totp (
    user_id {{uuid}} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed {{bytes}} NOT NULL,
    confirmed_at {{ts}},
    -- The last 30-second step accepted; a code of this step or earlier is a replay.
    last_used_step BIGINT NOT NULL DEFAULT 0,
    created_at {{ts}} NOT NULL
);

CREATE TABLE recovery_codes (
    id {{uuid}} PRIMARY KEY,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash {{bytes}} NOT NULL,
    created_at {{ts}} NOT NULL,
    used_at {{ts}}
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

CREATE TABLE api_keys (
    id {{uuid}} PRIMARY KEY,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id {{uuid}},
    name TEXT NOT NULL,
    -- The key's public prefix, shown in lists so owners can tell keys apart.
    prefix TEXT NOT NULL,
    key_hash {{bytes}} NOT NULL,
    permissions TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    expires_at {{ts}},
    last_used_at {{ts}},
    revoked_at {{ts}}
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Every e-mail is queued here in the transaction that causes it; a sender delivers it
-- over SMTP when configured. Without SMTP the queue is the development outbox.
CREATE TABLE email_outbox (
    id {{uuid}} PRIMARY KEY,
    template TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at {{ts}} NOT NULL,
    sent_at {{ts}},
    failed_at {{ts}},
    last_error TEXT
);
CREATE INDEX email_outbox_pending ON email_outbox (sent_at, failed_at, next_attempt_at);
