-- Chain heads signed with the instance's signing key, kept so that a chain rewritten and
-- recomputed by someone with database access can still be caught (see plinth-audit heads).
CREATE TABLE audit_signed_heads (
    id {{uuid}} PRIMARY KEY,
    chain TEXT NOT NULL,
    tenant_id {{uuid}},
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    signed_at {{ts}} NOT NULL,
    kid TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_signed_heads_chain_seq ON audit_signed_heads (chain, seq);
