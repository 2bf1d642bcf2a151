-- The same fail-closed row-level security as every tenant-owned table (migration 0009).
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts']
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
