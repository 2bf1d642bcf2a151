//! Second factors: TOTP (RFC 6238; 30-second steps, one step of tolerance either way,
//! a step accepted once) and single-use recovery codes.

use plinth_audit::AuditEntry;
use plinth_core::{Timestamp, UserId};
use plinth_store::{Conn, Tx, exec, on};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Totp};

use crate::auth::actor_of;
use crate::crypto::MasterKey;
use crate::error::{IdentityError, IdentityResult};
use crate::limits::Flow;
use crate::mail::{self, EmailKind};
use crate::password::Verified;
use crate::service::{Identity, Principal};
use crate::sessions::ClientInfo;
use crate::users::Users;

const SEAL_PURPOSE: &str = "totp-secret";
const ISSUER: &str = "Plinth";
pub const RECOVERY_CODES: usize = 10;
/// Recovery codes: 16 characters of a 32-letter alphabet without look-alikes (80 bits).
const RECOVERY_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
}

impl Method {
    /// RFC 8176 authentication method reference.
    pub fn amr(&self) -> &'static str {
        match self {
            Method::Totp => "otp",
            Method::RecoveryCode => "rcode",
        }
    }
}

/// What an authenticator app needs to learn `secret`: the key, its URI and a QR code.
fn enrolment(secret: Vec<u8>, account: &str) -> IdentityResult<TotpEnrolment> {
    let otpauth_uri = totp_for(secret.clone(), account)?
        .to_url()
        .map_err(|e| IdentityError::Crypto(e.to_string()))?;
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| IdentityError::Crypto(format!("QR code: {e}")))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(TotpEnrolment {
        secret: totp_rs::Secret::from(secret).to_base32(),
        otpauth_uri,
        qr_svg,
    })
}

fn totp_for(secret: Vec<u8>, account: &str) -> IdentityResult<Totp> {
    Builder::new()
        .with_secret(secret)
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| IdentityError::Crypto(format!("TOTP: {e}")))
}

fn unix_now() -> u64 {
    u64::try_from(Timestamp::now().unix_seconds()).unwrap_or(0)
}

/// The second factors `user` can use now.
pub(crate) async fn methods(conn: Conn<'_>, user: UserId) -> IdentityResult<Vec<&'static str>> {
    let (totp, passkeys, codes): (i64, i64, i64) = on!(conn, c => sqlx::query_as(
        "SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL),
                (SELECT count(*) FROM passkeys WHERE user_id = $1),
                (SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL)"
    ).bind(user).fetch_one(c).await)?;
    let mut methods = Vec::new();
    if totp > 0 {
        methods.push("totp");
    }
    if passkeys > 0 {
        methods.push("passkey");
    }
    if !methods.is_empty() && codes > 0 {
        methods.push("recovery_code");
    }
    Ok(methods)
}

fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn recovery_hash(code: &str) -> Vec<u8> {
    Sha256::digest(normalize(code).as_bytes()).to_vec()
}

/// Checks a TOTP code (with replay protection) or a recovery code (used up) for `user`.
pub(crate) async fn verify_code(
    master: &MasterKey,
    tx: &mut Tx,
    user: UserId,
    code: &str,
) -> IdentityResult<Option<Method>> {
    let code = normalize(code);
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let row: Option<(Vec<u8>, i64)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT secret_sealed, last_used_step FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL"
        ).bind(user).fetch_optional(c).await)?;
        let Some((sealed, last_step)) = row else {
            return Ok(None);
        };
        let secret = master.open(SEAL_PURPOSE, &sealed)?;
        let totp = totp_for(secret.to_vec(), "user")?;
        let Some(step) = totp.check(&code, unix_now()) else {
            return Ok(None);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if step <= last_step {
            return Ok(None);
        }
        // Conditional on the step, so two requests with one code cannot both pass.
        let accepted = exec!(tx.conn(), c => sqlx::query(
            "UPDATE mfa_totp SET last_used_step = $1 WHERE user_id = $2 AND last_used_step < $1"
        ).bind(step).bind(user).execute(c).await)?;
        return Ok((accepted == 1).then_some(Method::Totp));
    }
    if code.len() == 16 {
        let used = exec!(tx.conn(), c => sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL"
        ).bind(Timestamp::now()).bind(user).bind(recovery_hash(&code)).execute(c).await)?;
        return Ok((used == 1).then_some(Method::RecoveryCode));
    }
    Ok(None)
}

/// What the user needs to add the account to an authenticator app.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret, for typing into the app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The `otpauth_uri` as a QR code, an SVG document.
    pub qr_svg: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaStatus {
    pub totp: bool,
    pub passkeys: i64,
    pub recovery_codes_remaining: i64,
}

/// Removes the recovery codes of a user left without a second factor: they would
/// otherwise be a second factor on their own once one is enrolled again.
pub(crate) async fn drop_recovery_codes_without_factor(tx: &mut Tx, user: UserId) -> IdentityResult<()> {
    exec!(tx.conn(), c => sqlx::query(
        "DELETE FROM recovery_codes WHERE user_id = $1
           AND NOT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1)"
    ).bind(user).execute(c).await)?;
    Ok(())
}

/// Proof of the user's presence for a sensitive change: a current code or the password.
pub enum Proof {
    Code(String),
    Password(SecretString),
}

fn recovery_codes() -> IdentityResult<Vec<String>> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| IdentityError::Crypto(e.to_string()))?;
        let chars: String = bytes
            .iter()
            .map(|b| RECOVERY_ALPHABET[usize::from(b % 32)] as char)
            .collect();
        codes.push(format!(
            "{}-{}-{}-{}",
            &chars[0..4],
            &chars[4..8],
            &chars[8..12],
            &chars[12..16]
        ));
    }
    Ok(codes)
}

pub(crate) async fn store_recovery_codes(tx: &mut Tx, user: UserId) -> IdentityResult<Vec<String>> {
    exec!(tx.conn(), c => sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user).execute(c).await)?;
    let codes = recovery_codes()?;
    let now = Timestamp::now();
    for code in &codes {
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)"
        ).bind(uuid::Uuid::now_v7()).bind(user).bind(recovery_hash(code)).bind(now).execute(c).await)?;
    }
    Ok(codes)
}

impl Identity {
    pub async fn mfa_status(&self, principal: &Principal) -> IdentityResult<MfaStatus> {
        let mut conn = self.inner.db.read().await?;
        let (totp, passkeys, remaining): (i64, i64, i64) = on!(conn.conn(), c => sqlx::query_as(
            "SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL),
                    (SELECT count(*) FROM passkeys WHERE user_id = $1),
                    (SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL)"
        ).bind(principal.user).fetch_one(c).await)?;
        Ok(MfaStatus {
            totp: totp > 0,
            passkeys,
            recovery_codes_remaining: remaining,
        })
    }

    /// Starts (or restarts) TOTP enrolment; nothing changes for sign-in until confirmed.
    /// Starts TOTP enrolment. A new second factor is a new way in, so it needs a fresh
    /// proof: otherwise a stolen session could enrol its own authenticator.
    pub async fn begin_totp(
        &self,
        principal: &Principal,
        proof: Proof,
        client: &ClientInfo,
    ) -> IdentityResult<TotpEnrolment> {
        let mut tx = self.inner.db.begin().await?;
        self.check_proof(&mut tx, principal.user, proof, client).await?;
        let user = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let confirmed: i64 = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT count(*) FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL"
        ).bind(user.id).fetch_one(c).await)?;
        if confirmed > 0 {
            return Err(IdentityError::Forbidden(
                "two-step verification is already enabled; disable it first",
            ));
        }
        let mut secret = vec![0u8; 20];
        getrandom::fill(&mut secret).map_err(|e| IdentityError::Crypto(e.to_string()))?;
        let enrolment = enrolment(secret.clone(), &user.email)?;
        let sealed = self.inner.master.seal(SEAL_PURPOSE, &secret)?;
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO mfa_totp (user_id, secret_sealed, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = $2, created_at = $3, confirmed_at = NULL, last_used_step = 0"
        ).bind(user.id).bind(sealed).bind(Timestamp::now()).execute(c).await)?;
        tx.commit().await?;
        Ok(enrolment)
    }

    /// The enrolment begun and not yet confirmed, shown again after a wrong first code
    /// (beginning again would make a new key the app has not seen).
    pub async fn pending_totp(&self, principal: &Principal) -> IdentityResult<Option<TotpEnrolment>> {
        let mut conn = self.inner.db.read().await?;
        let sealed: Option<Vec<u8>> = on!(conn.conn(), c => sqlx::query_scalar(
            "SELECT secret_sealed FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL"
        ).bind(principal.user).fetch_optional(c).await)?;
        let Some(sealed) = sealed else { return Ok(None) };
        let user = Users::find(conn.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let secret = self.inner.master.open(SEAL_PURPOSE, &sealed)?;
        enrolment(secret.to_vec(), &user.email).map(Some)
    }

    /// Confirms enrolment with a first code; returns the recovery codes, shown once.
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &str,
        client: &ClientInfo,
    ) -> IdentityResult<Vec<String>> {
        let mut tx = self.inner.db.begin().await?;
        let row: Option<(Vec<u8>, Option<Timestamp>)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT secret_sealed, confirmed_at FROM mfa_totp WHERE user_id = $1"
        ).bind(principal.user).fetch_optional(c).await)?;
        let Some((sealed, None)) = row else {
            return Err(IdentityError::Forbidden("start enrolment first"));
        };
        let secret = self.inner.master.open(SEAL_PURPOSE, &sealed)?;
        let step = totp_for(secret.to_vec(), "user")?
            .check(&normalize(code), unix_now())
            .ok_or(IdentityError::InvalidCode)?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE mfa_totp SET confirmed_at = $1, last_used_step = $2 WHERE user_id = $3"
        ).bind(Timestamp::now()).bind(i64::try_from(step).unwrap_or(i64::MAX)).bind(principal.user).execute(c).await)?;
        let codes = store_recovery_codes(&mut tx, principal.user).await?;
        self.record_mfa_change(
            &mut tx,
            principal,
            client,
            plinth_audit::action::MFA_TOTP_ENABLE,
            "an authenticator app was added",
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&[principal.session]);
        Ok(codes)
    }

    /// Checks a re-authentication proof. Each attempt counts against the caller's address
    /// and account like a sign-in, so a stolen session cannot guess the password or a code.
    pub(crate) async fn check_proof(
        &self,
        tx: &mut Tx,
        user: UserId,
        proof: Proof,
        client: &ClientInfo,
    ) -> IdentityResult<()> {
        self.check_limit(Flow::Reauth, client, Some(&user.to_string()))?;
        let ok = match proof {
            Proof::Code(code) => verify_code(&self.inner.master, tx, user, &code).await?.is_some(),
            Proof::Password(password) => {
                let hash: Option<String> = on!(tx.conn(), c => sqlx::query_scalar(
                    "SELECT password_hash FROM users WHERE id = $1"
                ).bind(user).fetch_one(c).await)?;
                match hash {
                    Some(hash) if !password.expose_secret().is_empty() => {
                        matches!(self.inner.hasher.verify(password, hash).await?, Verified::Match { .. })
                    }
                    _ => false,
                }
            }
        };
        if ok { Ok(()) } else { Err(IdentityError::InvalidCode) }
    }

    pub async fn disable_totp(&self, principal: &Principal, proof: Proof, client: &ClientInfo) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        self.check_proof(&mut tx, principal.user, proof, client).await?;
        let removed = exec!(tx.conn(), c => sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
            .bind(principal.user).execute(c).await)?;
        if removed == 0 {
            return Err(IdentityError::NotFound);
        }
        drop_recovery_codes_without_factor(&mut tx, principal.user).await?;
        self.record_mfa_change(
            &mut tx,
            principal,
            client,
            plinth_audit::action::MFA_TOTP_DISABLE,
            "the authenticator app was removed",
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&[principal.session]);
        Ok(())
    }

    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
        proof: Proof,
        client: &ClientInfo,
    ) -> IdentityResult<Vec<String>> {
        let mut tx = self.inner.db.begin().await?;
        self.check_proof(&mut tx, principal.user, proof, client).await?;
        if methods(tx.conn(), principal.user).await?.is_empty() {
            return Err(IdentityError::Forbidden("enable two-step verification first"));
        }
        let codes = store_recovery_codes(&mut tx, principal.user).await?;
        self.record_mfa_change(
            &mut tx,
            principal,
            client,
            plinth_audit::action::MFA_RECOVERY_CODES_REGENERATE,
            "new recovery codes were made",
        )
        .await?;
        tx.commit().await?;
        Ok(codes)
    }

    pub(crate) async fn record_mfa_change(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        client: &ClientInfo,
        action: plinth_audit::action::Action,
        change: &str,
    ) -> IdentityResult<()> {
        plinth_audit::append(
            tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(action).target("user", principal.user),
        )
        .await?;
        let kind = match action.name() {
            "mfa.totp.enable" => "totp_enabled",
            "mfa.totp.disable" => "totp_disabled",
            "mfa.recovery_codes.regenerate" => "recovery_codes_regenerated",
            "mfa.passkey.add" => "passkey_added",
            _ => "passkey_removed",
        };
        plinth_events::enqueue(
            tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserMfaChanged {
                user_id: principal.user.0,
                change: kind.to_owned(),
            })
            .subject("user", principal.user),
        )
        .await?;
        let user = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let email = EmailKind::MfaChanged {
            name: user.display_name.clone(),
            change: change.to_owned(),
            link: self.link("/forgot-password"),
        }
        .render(&self.inner.config.base_url)?;
        mail::enqueue(tx, &user.email, &email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_80_bits_and_normalise() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 19);
            assert_eq!(normalize(code).len(), 16);
            assert_eq!(
                recovery_hash(code),
                recovery_hash(&code.to_lowercase().replace('-', " "))
            );
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
    }
}
