-- The same fail-closed row-level security as every tenant-owned table (migration 0009).
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints
    USING (tenant_id = plinth_current_tenant() OR plinth_platform_scope())
    WITH CHECK (tenant_id = plinth_current_tenant() OR plinth_platform_scope());
