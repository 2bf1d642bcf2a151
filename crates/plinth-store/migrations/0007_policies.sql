-- Attribute policies: Cedar documents a tenant layers on its role matrix.

CREATE TABLE tenant_policies (
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Bumped by every policy change: requests compare it with their cached compilation.
ALTER TABLE tenants ADD COLUMN policies_version BIGINT NOT NULL DEFAULT 0;
