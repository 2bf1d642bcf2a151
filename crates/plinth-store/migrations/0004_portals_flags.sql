-- Portals (named entry points of a tenant) and feature flags.

CREATE TABLE portals (
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Global: the portal lives at /portal/<slug>.
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON list of {"label", "href"}.
    navigation TEXT NOT NULL,
    -- Tenant roles that may sign in through the portal (JSON list; empty: any member).
    allowed_roles TEXT NOT NULL,
    -- Whether the portal's sign-in page offers sign-up.
    signup_enabled BOOLEAN NOT NULL,
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX portals_slug ON portals (slug);
CREATE INDEX portals_tenant ON portals (tenant_id);

CREATE TABLE feature_flags (
    id {{uuid}} PRIMARY KEY,
    -- 'platform', 'tenant' or 'portal'.
    level TEXT NOT NULL CHECK (level IN ('platform', 'tenant', 'portal')),
    tenant_id {{uuid}} REFERENCES tenants (id) ON DELETE CASCADE,
    portal_id {{uuid}} REFERENCES portals (id) ON DELETE CASCADE,
    -- 'platform', the tenant id or the portal id: one flag per key at each level.
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    -- JSON: true/false, or a variant name.
    value TEXT NOT NULL,
    description TEXT,
    updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX feature_flags_owner_key ON feature_flags (owner, key);
CREATE INDEX feature_flags_tenant ON feature_flags (tenant_id);
