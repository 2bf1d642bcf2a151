//! Signed chain heads: proof that history was not rewritten, even by someone who can
//! write the database and recompute every hash.
//!
//! A chain's head (its newest record's number and hash) is signed with the instance's
//! signing key (held by identity, sealed by the master key, which the database does not
//! hold) and kept. An operator who anchors a signed head outside Plinth (a ticket, a
//! printout) can later check that the chain still holds that record with that hash:
//! a consistently recomputed chain verifies on its own, but not against its signed heads.

use plinth_core::Timestamp;
use plinth_store::{Db, StoreResult, exec, on};
use serde::{Deserialize, Serialize};

use crate::retention::Seal;
use crate::verify::verify_named;

/// A chain's head as it stands: its newest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
}

/// A head with the instance's signature over [`head_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedHead {
    /// `platform`, or the tenant's id.
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    #[schema(value_type = String, format = DateTime)]
    pub signed_at: Timestamp,
    /// The signing key (as in the JWKS).
    pub kid: String,
    /// Ed25519 over the head message, hex.
    pub signature: String,
}

/// The bytes a head's signature covers.
pub fn head_message(chain: &str, seq: i64, hash: &str, signed_at: Timestamp) -> Vec<u8> {
    format!(
        "plinth-audit-head-v1\n{chain}\n{seq}\n{hash}\n{}",
        signed_at.unix_micros()
    )
    .into_bytes()
}

impl SignedHead {
    pub fn message(&self) -> Vec<u8> {
        head_message(&self.chain, self.seq, &self.hash, self.signed_at)
    }
}

/// The heads not yet signed at their current record.
pub async fn unsigned_heads(db: &Db) -> StoreResult<Vec<Head>> {
    let mut conn = db.read().await?;
    let rows: Vec<(String, i64, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT h.chain, h.seq, h.hash FROM audit_chain_heads h
         WHERE NOT EXISTS (SELECT 1 FROM audit_signed_heads s WHERE s.chain = h.chain AND s.seq = h.seq)
         ORDER BY h.chain"
    ).fetch_all(c).await)?;
    Ok(rows
        .into_iter()
        .map(|(chain, seq, hash)| Head { chain, seq, hash })
        .collect())
}

/// Keeps signed heads (a head already signed at that record is kept once).
pub async fn store_signed(db: &Db, heads: &[SignedHead]) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    for head in heads {
        let tenant = crate::record::chain_tenant(&head.chain);
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO audit_signed_heads (id, chain, tenant_id, seq, hash, signed_at, kid, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (chain, seq) DO NOTHING"
        ).bind(uuid::Uuid::now_v7()).bind(&head.chain).bind(tenant).bind(head.seq).bind(&head.hash)
        .bind(head.signed_at).bind(&head.kid).bind(&head.signature).execute(c).await)?;
    }
    tx.commit().await?;
    Ok(())
}

/// The newest signed head of every chain, platform first.
pub async fn latest_signed(db: &Db) -> StoreResult<Vec<SignedHead>> {
    let mut conn = db.read().await?;
    let rows: Vec<(String, i64, String, Timestamp, String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT s.chain, s.seq, s.hash, s.signed_at, s.kid, s.signature FROM audit_signed_heads s
         WHERE s.seq = (SELECT max(t.seq) FROM audit_signed_heads t WHERE t.chain = s.chain)"
    ).fetch_all(c).await)?;
    let mut heads: Vec<SignedHead> = rows
        .into_iter()
        .map(|(chain, seq, hash, signed_at, kid, signature)| SignedHead {
            chain,
            seq,
            hash,
            signed_at,
            kid,
            signature,
        })
        .collect();
    heads.sort_by(|a, b| crate::chain_order(&a.chain).cmp(&crate::chain_order(&b.chain)));
    Ok(heads)
}

/// Whether the chain still holds the signed head's record, unchanged and intact up to it.
/// `None` when it does; otherwise what is wrong.
pub async fn check_against(db: &Db, head: &SignedHead, seal: &dyn Seal) -> StoreResult<Option<String>> {
    let signed = head.signed_at.to_rfc3339();
    let (report, _) = verify_named(db, &head.chain, None, seal).await?;
    if let Some(first_break) = report.first_break.as_ref().filter(|b| b.seq() <= head.seq) {
        return Ok(Some(format!("broken before the head signed {signed}: {first_break}")));
    }
    if let Some(through) = report.pruned_through.filter(|through| head.seq <= *through) {
        return Ok(Some(format!(
            "record {}, signed {signed}, was pruned under a signed checkpoint through record {through}: it can no longer be compared",
            head.seq
        )));
    }
    let mut conn = db.read().await?;
    let stored: Option<String> = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT hash FROM audit_log WHERE chain = $1 AND seq = $2"
    ).bind(&head.chain).bind(head.seq).fetch_optional(c).await)?;
    Ok(match stored {
        None => Some(format!("record {}, signed {signed}, is gone", head.seq)),
        Some(hash) if hash != head.hash => Some(format!(
            "record {} no longer has the hash signed {signed}: the chain was rewritten",
            head.seq
        )),
        Some(_) => None,
    })
}
