-- Row-level security that fails closed.
--
-- Until now every policy began `plinth_current_tenant() IS NULL OR …`: a connection that
-- had set nothing saw every tenant. Now a row is visible only
--   * inside its own tenant's scope (plinth.tenant_id names it, see Db::begin_scoped), or
--   * to a connection that declared platform scope (plinth.scope = 'platform'), which
--     Plinth's pool does for its own connections and a tenant scope revokes for its
--     transaction.
-- Any other connection (psql, a reporting tool, a script, a forgotten pool) sees no
-- tenant-owned row at all. Rows without a tenant (platform sessions, the platform audit
-- chain, platform events) are platform rows: no tenant scope sees them.
--
-- The five tables with tenant_id that had no policy (sessions, api_keys,
-- one_time_tokens, audit_log, outbox) get one too.

CREATE FUNCTION plinth_platform_scope() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('plinth.scope', true), '') = 'platform'
$$;

DROP POLICY tenant_isolation ON tenants;
CREATE POLICY tenant_isolation ON tenants
    USING (id = plinth_current_tenant() OR plinth_platform_scope())
    WITH CHECK (id = plinth_current_tenant() OR plinth_platform_scope());

-- Platform flags (no tenant) stay readable in every scope; only the platform writes them.
DROP POLICY tenant_isolation ON feature_flags;
CREATE POLICY tenant_isolation ON feature_flags
    USING (tenant_id IS NULL OR tenant_id = plinth_current_tenant() OR plinth_platform_scope())
    WITH CHECK (tenant_id = plinth_current_tenant() OR plinth_platform_scope());

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memberships', 'workspaces', 'workspace_members', 'invitations',
                             'portals', 'tenant_roles', 'tenant_policies']
    LOOP
        EXECUTE format('DROP POLICY tenant_isolation ON %I', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['memberships', 'workspaces', 'workspace_members', 'invitations',
                             'portals', 'tenant_roles', 'tenant_policies', 'sessions',
                             'api_keys', 'one_time_tokens', 'audit_log', 'outbox']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I
                 USING (tenant_id = plinth_current_tenant() OR plinth_platform_scope())
                 WITH CHECK (tenant_id = plinth_current_tenant() OR plinth_platform_scope())',
            t);
    END LOOP;
END
$$;
