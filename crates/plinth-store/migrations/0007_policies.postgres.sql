ALTER TABLE tenant_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_policies
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());
