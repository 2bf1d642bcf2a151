-- Access control: custom tenant roles and the role matrix's version.

CREATE TABLE tenant_roles (
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Comma-separated permission keys of the catalog.
    permissions TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Bumped by every change to the tenant's roles; matrix updates name the version they
-- saw, and a stale one is refused.
ALTER TABLE tenants ADD COLUMN roles_version BIGINT NOT NULL DEFAULT 0;
