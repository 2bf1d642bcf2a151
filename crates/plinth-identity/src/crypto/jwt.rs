//! Access tokens: JWS compact serialisation (RFC 7515) of RFC 9068 claims, signed with
//! Ed25519 (`alg: EdDSA`, RFC 8037).
//!
//! The framing is small and fixed, so it is written here over `ring` rather than taken
//! from a general JWT library: the header we accept is exactly the header we issue
//! (`alg` EdDSA, `typ` at+jwt, a known `kid`), which rules out algorithm confusion and
//! `alg: none` by construction. An independent library validates these tokens through
//! the JWKS document in the test suite.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::{SessionId, TenantId, UserId};
use serde::{Deserialize, Serialize};

use crate::crypto::signing::KeyRing;
use crate::error::{IdentityError, IdentityResult};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Tolerated clock difference between issuer and verifier.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: UserId,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub sid: SessionId,
    /// Authentication methods (RFC 8176): `pwd`, `otp`, `hwk`, `mfa`.
    pub amr: Vec<String>,
    /// The selected tenant, once one is selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The portal signed in through, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
    /// Permissions version: a token whose version is behind the user's is re-checked.
    pub pv: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another audience or by another issuer")]
    WrongAudience,
}

pub fn encode(keys: &KeyRing, claims: &AccessClaims) -> IdentityResult<String> {
    let kid = keys
        .current_kid()
        .ok_or_else(|| IdentityError::Crypto("no signing key is loaded".into()))?;
    let header = serde_json::to_vec(&Header {
        alg: "EdDSA".into(),
        kid,
        typ: "at+jwt".into(),
    })
    .map_err(|e| IdentityError::Crypto(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| IdentityError::Crypto(e.to_string()))?;
    let mut token = String::with_capacity(400);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let (_, signature) = keys.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// Verifies signature, issuer, audience and expiry at `now` (Unix seconds).
pub async fn verify(keys: &KeyRing, token: &str, issuer: &str, now: i64) -> Result<AccessClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.splitn(3, '.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if header.alg != "EdDSA" || header.typ != "at+jwt" {
        return Err(TokenError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::Malformed)?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !keys.verify(&header.kid, signed.as_bytes(), &signature).await {
        return Err(TokenError::BadSignature);
    }
    let claims: AccessClaims = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if claims.iss != issuer || claims.aud != issuer {
        return Err(TokenError::WrongAudience);
    }
    if claims.exp + LEEWAY_SECS <= now || claims.iat - LEEWAY_SECS > now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}
