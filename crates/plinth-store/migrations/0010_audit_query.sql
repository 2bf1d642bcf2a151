-- Reading the audit trail: a chain's records newest first, filtered by one field at a
-- time. Each index leads with the chain and ends with seq, so a filtered page is an index
-- range read backwards, whatever the chain's size. The single-column action index is
-- replaced by the chain-led one.
DROP INDEX audit_log_action;
CREATE INDEX audit_log_chain_actor ON audit_log (chain, actor_id, seq);
CREATE INDEX audit_log_chain_action ON audit_log (chain, action, seq);
CREATE INDEX audit_log_chain_target ON audit_log (chain, target_type, target_id, seq);
CREATE INDEX audit_log_chain_request ON audit_log (chain, request_id, seq);
CREATE INDEX audit_log_chain_outcome ON audit_log (chain, outcome, seq);
CREATE INDEX audit_log_chain_time ON audit_log (chain, occurred_at, seq);
-- The time of each chain's newest record: a new record is never dated before it, so a
-- chain's times never decrease with its numbers and a time range is a range of numbers.
ALTER TABLE audit_chain_heads ADD COLUMN last_at {{ts}};
