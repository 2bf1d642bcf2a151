//! Signing the audit chains' heads with the instance's signing key: the audit trail's
//! proof against a rewrite by someone who holds the database but not the master key.

use plinth_audit::{SignedHead, head_message};
use plinth_core::Timestamp;

use crate::error::IdentityResult;
use crate::service::Identity;

impl Identity {
    /// Signs every audit chain head that moved since its last signature; returns how many
    /// were signed.
    pub async fn sign_audit_heads(&self) -> IdentityResult<usize> {
        let heads = plinth_audit::unsigned_heads(&self.inner.db).await?;
        let signed_at = Timestamp::now();
        let mut signed = Vec::with_capacity(heads.len());
        for head in heads {
            let (kid, signature) = self
                .keys()
                .sign(&head_message(&head.chain, head.seq, &head.hash, signed_at))?;
            signed.push(SignedHead {
                chain: head.chain,
                seq: head.seq,
                hash: head.hash,
                signed_at,
                kid,
                signature: hex::encode(signature),
            });
        }
        plinth_audit::store_signed(&self.inner.db, &signed).await?;
        Ok(signed.len())
    }

    /// Whether `head` carries a valid signature by a key this instance holds.
    pub async fn audit_head_signature_holds(&self, head: &SignedHead) -> bool {
        let Ok(signature) = hex::decode(&head.signature) else {
            return false;
        };
        self.keys().verify(&head.kid, &head.message(), &signature).await
    }
}
