-- Row-level security that fails closed is PostgreSQL's alone: see
-- 0009_row_security.postgres.sql. SQLite has no second wall; each query's tenant filter,
-- reached only through a tenant scope, is the wall there.
SELECT 1;
