-- Row-level security: a second wall behind the tenant filter every query already has.
-- A transaction scoped to a tenant sets plinth.tenant_id (see Db::begin_scoped); inside
-- it only that tenant's rows exist, even for a query that forgot its WHERE clause.
-- Unscoped work (platform administration, sign-in, the scheduler) sets nothing and is
-- not limited. FORCE makes the policies bind the tables' owner too.

CREATE FUNCTION plinth_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('plinth.tenant_id', true), '')::uuid
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (plinth_current_tenant() IS NULL OR id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR id = plinth_current_tenant());

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memberships
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());

ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workspaces
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());

ALTER TABLE workspace_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workspace_members
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());
