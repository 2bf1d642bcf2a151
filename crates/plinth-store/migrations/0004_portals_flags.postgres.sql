ALTER TABLE portals ENABLE ROW LEVEL SECURITY;
ALTER TABLE portals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON portals
    USING (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());

-- Platform flags (no tenant) are visible in every scope; tenant and portal flags only in theirs.
ALTER TABLE feature_flags ENABLE ROW LEVEL SECURITY;
ALTER TABLE feature_flags FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON feature_flags
    USING (plinth_current_tenant() IS NULL OR tenant_id IS NULL OR tenant_id = plinth_current_tenant())
    WITH CHECK (plinth_current_tenant() IS NULL OR tenant_id = plinth_current_tenant());
