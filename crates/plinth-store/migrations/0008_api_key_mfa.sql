-- Whether the session that created an API key had signed in with a second factor. Keys
-- carry it into decisions (a tenant's MFA requirement, Cedar's `context.mfa`). Keys made
-- before this column existed count as password-only: fail closed.
ALTER TABLE api_keys ADD COLUMN mfa_used BOOLEAN NOT NULL DEFAULT FALSE;
