-- What pruning removed from an audit chain: the range of records, how many, and the hash
-- of the last one, signed with the instance's signing key. Verification resumes from the
-- newest checkpoint whose signature holds, so a pruned chain stays provable while any
-- other gap is still a break (see plinth-audit retention).
CREATE TABLE audit_checkpoints (
    id {{uuid}} PRIMARY KEY,
    chain TEXT NOT NULL,
    tenant_id {{uuid}},
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    record_count BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    pruned_before {{ts}} NOT NULL,
    signed_at {{ts}} NOT NULL,
    kid TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_checkpoints_chain_last ON audit_checkpoints (chain, last_seq);
