-- Marking an event published leaves a dead entry in the partial indexes above until the
-- table is vacuumed, and every claim steps over them: vacuum the outbox after every
-- 5,000 changed rows instead of after a fifth of the table.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);
