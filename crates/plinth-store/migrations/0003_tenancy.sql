-- Tenancy: tenants, memberships, workspaces, invitations.

CREATE TABLE tenants (
    id {{uuid}} PRIMARY KEY,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('trial', 'active', 'suspended', 'expired', 'pending_deletion')),
    isolation TEXT NOT NULL CHECK (isolation IN ('pool', 'silo')),
    trial_ends_at {{ts}},
    status_reason TEXT,
    -- MFA policy, allowed e-mail domains, sign-up mode (JSON).
    settings TEXT NOT NULL,
    -- Logo, colours, custom domain (JSON).
    branding TEXT NOT NULL,
    -- Onboarding steps done (JSON list).
    onboarding TEXT NOT NULL,
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL,
    deleted_at {{ts}},
    purge_after {{ts}}
);
CREATE UNIQUE INDEX tenants_slug ON tenants (slug);
CREATE INDEX tenants_status ON tenants (status);

CREATE TABLE memberships (
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Tenant roles, comma-separated (owner, admin, member, viewer, or custom role keys).
    roles TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE workspaces (
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    is_default BOOLEAN NOT NULL,
    created_at {{ts}} NOT NULL,
    updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX workspaces_tenant_slug ON workspaces (tenant_id, slug);

CREATE TABLE workspace_members (
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id {{uuid}} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    created_at {{ts}} NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_tenant ON workspace_members (tenant_id, user_id);

CREATE TABLE invitations (
    id {{uuid}} PRIMARY KEY,
    tenant_id {{uuid}} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by {{uuid}},
    token_id {{uuid}},
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked')),
    created_at {{ts}} NOT NULL,
    expires_at {{ts}} NOT NULL,
    accepted_at {{ts}},
    accepted_by {{uuid}}
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, status);
