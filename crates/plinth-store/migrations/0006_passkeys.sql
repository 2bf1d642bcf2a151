-- WebAuthn passkeys: second factor and passwordless sign-in.

CREATE TABLE passkeys (
    id {{uuid}} PRIMARY KEY,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The authenticator's credential id; one account per credential.
    credential_id {{bytes}} NOT NULL,
    name TEXT NOT NULL,
    -- webauthn-rs's Passkey (public key, algorithm, signature counter, backup state), JSON.
    -- Nothing secret: the private key never leaves the authenticator.
    credential TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    last_used_at {{ts}}
);
CREATE UNIQUE INDEX passkeys_credential ON passkeys (credential_id);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A WebAuthn ceremony in progress: the challenge state webauthn-rs must find again at the
-- finish. Kept on the server (never in the client) so a challenge cannot be replayed, and
-- deleted by the finish that uses it.
CREATE TABLE webauthn_ceremonies (
    id {{uuid}} PRIMARY KEY,
    -- 'register', 'second_factor' or 'sign_in'.
    purpose TEXT NOT NULL,
    user_id {{uuid}} REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    expires_at {{ts}} NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
