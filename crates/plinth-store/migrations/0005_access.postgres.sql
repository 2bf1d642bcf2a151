ALTER TABLE tenant_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_roles
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());
