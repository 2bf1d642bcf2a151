//! WebAuthn passkeys (webauthn-rs): registration, use as a second factor after the
//! password, and passwordless sign-in with a discoverable credential.
//!
//! Each ceremony has a begin (the server makes a challenge and keeps its state in
//! `webauthn_ceremonies`) and a finish (the state is taken, once, and the authenticator's
//! answer checked against it). The state never travels to the client, so a recorded
//! answer cannot be replayed.

use plinth_audit::{AuditEntry, Outcome};
use plinth_core::{Page, PageRequest, Timestamp, UserId};
use plinth_store::{Tx, exec, on};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::Duration;
use url::{Host, Url};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::auth::{SignInCredential, actor_of};
use crate::error::{IdentityError, IdentityResult};
use crate::limits::Flow;
use crate::mfa;
use crate::one_time::{OneTimePurpose, OneTimeTokens};
use crate::service::{Identity, Principal};
use crate::sessions::ClientInfo;
use crate::users::Users;

/// How long a begun ceremony may be finished (the authenticator's own timeout).
const CEREMONY_TTL: Duration = Duration::minutes(5);
pub const MAX_PASSKEYS: i64 = 20;
const MAX_NAME: usize = 64;

/// The relying party for the server's public URL. Browsers refuse WebAuthn on IP
/// addresses, so a loopback address becomes `localhost` (open the server as
/// `http://localhost:PORT` to use passkeys); any other address leaves passkeys off.
pub(crate) fn relying_party(base_url: &str) -> Option<Webauthn> {
    let mut origin = Url::parse(base_url).ok()?;
    let loopback = match origin.host()? {
        Host::Domain(_) => false,
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    if loopback {
        origin.set_host(Some("localhost")).ok()?;
    } else if origin.domain().is_none() {
        return None;
    }
    let rp_id = origin.host_str()?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .ok()?
        .rp_name("Plinth")
        .build()
        .ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ceremony {
    Register,
    SecondFactor,
    SignIn,
}

impl Ceremony {
    fn as_str(&self) -> &'static str {
        match self {
            Ceremony::Register => "register",
            Ceremony::SecondFactor => "second_factor",
            Ceremony::SignIn => "sign_in",
        }
    }
}

/// A begun ceremony: pass `options` to `navigator.credentials.create()` or `.get()`
/// (as `publicKey`), then send the credential with `challenge_id` to the finish.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PasskeyChallenge {
    pub challenge_id: Uuid,
    /// WebAuthn `PublicKeyCredentialCreationOptions` or `…RequestOptions`, under `publicKey`.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegisteredPasskey {
    pub passkey: PasskeyView,
    /// Recovery codes, shown once, when this passkey is the account's first second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// A stored passkey with its row id.
struct StoredPasskey {
    id: Uuid,
    user: UserId,
    passkey: Passkey,
}

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: Uuid,
    user_id: UserId,
    credential: String,
}

impl PasskeyRow {
    fn parse(self) -> IdentityResult<StoredPasskey> {
        let passkey = serde_json::from_str(&self.credential)
            .map_err(|e| IdentityError::Crypto(format!("stored passkey {}: {e}", self.id)))?;
        Ok(StoredPasskey {
            id: self.id,
            user: self.user_id,
            passkey,
        })
    }
}

fn to_json(value: &impl Serialize) -> IdentityResult<String> {
    serde_json::to_string(value).map_err(|e| IdentityError::Crypto(format!("WebAuthn state: {e}")))
}

fn rejected(e: webauthn_rs::prelude::WebauthnError) -> IdentityError {
    tracing::debug!(error = %e, "WebAuthn response refused");
    IdentityError::PasskeyRejected(e.to_string())
}

async fn user_passkeys(tx: &mut Tx, user: UserId) -> IdentityResult<Vec<StoredPasskey>> {
    let rows: Vec<PasskeyRow> = on!(tx.conn(), c => sqlx::query_as(
        "SELECT id, user_id, credential FROM passkeys WHERE user_id = $1 ORDER BY created_at"
    ).bind(user).fetch_all(c).await)?;
    rows.into_iter().map(PasskeyRow::parse).collect()
}

async fn passkey_by_credential(tx: &mut Tx, credential_id: &[u8]) -> IdentityResult<Option<StoredPasskey>> {
    let row: Option<PasskeyRow> = on!(tx.conn(), c => sqlx::query_as(
        "SELECT id, user_id, credential FROM passkeys WHERE credential_id = $1"
    ).bind(credential_id).fetch_optional(c).await)?;
    row.map(PasskeyRow::parse).transpose()
}

async fn store_ceremony(
    tx: &mut Tx,
    ceremony: Ceremony,
    user: Option<UserId>,
    state: &impl Serialize,
) -> IdentityResult<Uuid> {
    let id = Uuid::now_v7();
    let now = Timestamp::now();
    // Abandoned ceremonies go here rather than in a job: the table stays small.
    exec!(tx.conn(), c => sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at < $1")
        .bind(now).execute(c).await)?;
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO webauthn_ceremonies (id, purpose, user_id, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
    ).bind(id).bind(ceremony.as_str()).bind(user).bind(to_json(state)?).bind(now).bind(now + CEREMONY_TTL)
    .execute(c).await)?;
    Ok(id)
}

/// Takes a ceremony's state, once: a second finish of the same challenge finds nothing.
async fn take_ceremony<T: DeserializeOwned>(
    tx: &mut Tx,
    id: Uuid,
    ceremony: Ceremony,
    user: Option<UserId>,
) -> IdentityResult<T> {
    let state: Option<String> = on!(tx.conn(), c => sqlx::query_scalar(
        "DELETE FROM webauthn_ceremonies
         WHERE id = $1 AND purpose = $2 AND user_id IS NOT DISTINCT FROM $3 AND expires_at > $4
         RETURNING state"
    ).bind(id).bind(ceremony.as_str()).bind(user).bind(Timestamp::now()).fetch_optional(c).await)?;
    let state = state.ok_or(IdentityError::InvalidToken)?;
    serde_json::from_str(&state).map_err(|e| IdentityError::Crypto(format!("WebAuthn state: {e}")))
}

fn challenge(id: Uuid, options: &impl Serialize) -> IdentityResult<PasskeyChallenge> {
    Ok(PasskeyChallenge {
        challenge_id: id,
        options: serde_json::to_value(options).map_err(|e| IdentityError::Crypto(e.to_string()))?,
        expires_in: CEREMONY_TTL.whole_seconds(),
    })
}

fn valid_name(name: &str) -> IdentityResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(IdentityError::Validation(plinth_core::FieldErrors::single(
            "/name",
            "invalid_value",
            format!("give the passkey a name of 1 to {MAX_NAME} printable characters"),
        )));
    }
    Ok(name.to_owned())
}

impl Identity {
    /// Whether passkeys work here: the server's public URL names a domain (or loopback).
    pub fn passkeys_available(&self) -> bool {
        self.inner.webauthn.is_some()
    }

    fn webauthn(&self) -> IdentityResult<&Webauthn> {
        self.inner.webauthn.as_ref().ok_or(IdentityError::PasskeysUnavailable)
    }

    /// Starts adding a passkey to the caller's account.
    /// Starts adding a passkey. A passkey signs in on its own, so adding one needs the
    /// same fresh proof as removing a second factor: a session alone (stolen, or left
    /// open) must not be able to plant a permanent way in.
    pub async fn begin_passkey_registration(
        &self,
        principal: &Principal,
        proof: crate::mfa::Proof,
        client: &ClientInfo,
    ) -> IdentityResult<PasskeyChallenge> {
        let webauthn = self.webauthn()?;
        let mut tx = self.inner.db.begin().await?;
        self.check_proof(&mut tx, principal.user, proof, client).await?;
        let user = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let existing = user_passkeys(&mut tx, user.id).await?;
        if existing.len() as i64 >= MAX_PASSKEYS {
            return Err(IdentityError::Forbidden(
                "an account holds at most 20 passkeys; remove one first",
            ));
        }
        let exclude = existing.iter().map(|p| p.passkey.cred_id().clone()).collect();
        let (mut options, state): (_, PasskeyRegistration) = webauthn
            .start_passkey_registration(user.id.0, &user.email, &user.display_name, Some(exclude))
            .map_err(rejected)?;
        // Asks for a discoverable credential where the authenticator can make one, so
        // the same passkey also signs in without an e-mail address.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let id = store_ceremony(&mut tx, Ceremony::Register, Some(user.id), &state).await?;
        tx.commit().await?;
        challenge(id, &options)
    }

    /// Checks the authenticator's answer and stores the passkey.
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        challenge_id: Uuid,
        name: &str,
        credential: &RegisterPublicKeyCredential,
        client: &ClientInfo,
    ) -> IdentityResult<RegisteredPasskey> {
        let webauthn = self.webauthn()?;
        let name = valid_name(name)?;
        let mut tx = self.inner.db.begin().await?;
        let state: PasskeyRegistration =
            take_ceremony(&mut tx, challenge_id, Ceremony::Register, Some(principal.user)).await?;
        let passkey = match webauthn.finish_passkey_registration(credential, &state) {
            Ok(passkey) => passkey,
            Err(e) => {
                // The challenge stays used up.
                tx.commit().await?;
                return Err(rejected(e));
            }
        };
        if passkey_by_credential(&mut tx, passkey.cred_id()).await?.is_some() {
            return Err(IdentityError::PasskeyRejected(
                "this authenticator's credential is already registered".into(),
            ));
        }
        let first_factor = mfa::methods(tx.conn(), principal.user).await?.is_empty();
        let view = PasskeyView {
            id: Uuid::now_v7(),
            name,
            created_at: Timestamp::now(),
            last_used_at: None,
        };
        let credential_id: &[u8] = passkey.cred_id();
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, credential, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        ).bind(view.id).bind(principal.user).bind(credential_id).bind(&view.name).bind(to_json(&passkey)?)
        .bind(view.created_at).execute(c).await)?;
        let recovery_codes = if first_factor {
            Some(mfa::store_recovery_codes(&mut tx, principal.user).await?)
        } else {
            None
        };
        self.record_mfa_change(
            &mut tx,
            principal,
            client,
            plinth_audit::action::MFA_PASSKEY_ADD,
            "a passkey was added",
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&[principal.session]);
        Ok(RegisteredPasskey {
            passkey: view,
            recovery_codes,
        })
    }

    /// The caller's passkeys, oldest first (ids are UUIDv7).
    pub async fn list_passkeys(&self, principal: &Principal, page: &PageRequest) -> IdentityResult<Page<PasskeyView>> {
        let after = page.after_id_or_nil().map_err(IdentityError::Validation)?;
        let mut conn = self.inner.db.read().await?;
        let rows: Vec<PasskeyView> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, name, created_at, last_used_at FROM passkeys WHERE user_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ).bind(principal.user).bind(after).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(rows, page.limit, |p| p.id.to_string()))
    }

    pub async fn rename_passkey(
        &self,
        principal: &Principal,
        id: Uuid,
        name: &str,
        client: &ClientInfo,
    ) -> IdentityResult<PasskeyView> {
        let name = valid_name(name)?;
        let mut tx = self.inner.db.begin().await?;
        let before: Option<String> = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT name FROM passkeys WHERE id = $1 AND user_id = $2"
        ).bind(id).bind(principal.user).fetch_optional(c).await)?;
        let before = before.ok_or(IdentityError::NotFound)?;
        let view: Option<PasskeyView> = on!(tx.conn(), c => sqlx::query_as(
            "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3
             RETURNING id, name, created_at, last_used_at"
        ).bind(&name).bind(id).bind(principal.user).fetch_optional(c).await)?;
        let view = view.ok_or(IdentityError::NotFound)?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::MFA_PASSKEY_RENAME)
                .target("passkey", id)
                .changes(serde_json::json!({"name": {"before": before, "after": view.name}})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserMfaChanged {
                user_id: principal.user.0,
                change: "passkey_renamed".into(),
            })
            .subject("user", principal.user),
        )
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Removes a passkey; with it gone and no app either, the recovery codes go too.
    pub async fn remove_passkey(&self, principal: &Principal, id: Uuid, client: &ClientInfo) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        let removed = exec!(tx.conn(), c => sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id).bind(principal.user).execute(c).await)?;
        if removed == 0 {
            return Err(IdentityError::NotFound);
        }
        mfa::drop_recovery_codes_without_factor(&mut tx, principal.user).await?;
        self.record_mfa_change(
            &mut tx,
            principal,
            client,
            plinth_audit::action::MFA_PASSKEY_REMOVE,
            "a passkey was removed",
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&[principal.session]);
        Ok(())
    }

    /// The user of a live MFA challenge (the token stays valid until the sign-in completes).
    async fn mfa_challenge_user(&self, mfa_token: &str) -> IdentityResult<UserId> {
        let mut conn = self.inner.db.read().await?;
        let user: Option<Option<UserId>> = on!(conn.conn(), c => sqlx::query_scalar(
            "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
        ).bind(crate::secret::hash_token(mfa_token)).bind(OneTimePurpose::MfaChallenge.as_str())
        .bind(Timestamp::now()).fetch_optional(c).await)?;
        user.flatten().ok_or(IdentityError::InvalidToken)
    }

    /// The second step of a sign-in with a passkey: a challenge for the account's passkeys.
    pub async fn begin_passkey_second_factor(&self, mfa_token: &str) -> IdentityResult<PasskeyChallenge> {
        let webauthn = self.webauthn()?;
        let user = self.mfa_challenge_user(mfa_token).await?;
        let mut tx = self.inner.db.begin().await?;
        let passkeys: Vec<Passkey> = user_passkeys(&mut tx, user)
            .await?
            .into_iter()
            .map(|p| p.passkey)
            .collect();
        if passkeys.is_empty() {
            return Err(IdentityError::Forbidden(
                "this account has no passkey; use another second factor",
            ));
        }
        let (options, state): (_, PasskeyAuthentication) =
            webauthn.start_passkey_authentication(&passkeys).map_err(rejected)?;
        let id = store_ceremony(&mut tx, Ceremony::SecondFactor, Some(user), &state).await?;
        tx.commit().await?;
        challenge(id, &options)
    }

    pub async fn finish_passkey_second_factor<C: SignInCredential>(
        &self,
        mfa_token: &str,
        challenge_id: Uuid,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> IdentityResult<C> {
        let webauthn = self.webauthn()?;
        let user = self.mfa_challenge_user(mfa_token).await?;
        self.check_limit(Flow::Mfa, client, Some(&user.to_string()))?;
        let mut tx = self.inner.db.begin().await?;
        let state: PasskeyAuthentication =
            take_ceremony(&mut tx, challenge_id, Ceremony::SecondFactor, Some(user)).await?;
        let result = match webauthn.finish_passkey_authentication(credential, &state) {
            Ok(result) => result,
            Err(e) => return Err(self.fail_passkey(tx, client, Some(user), e).await),
        };
        self.note_passkey_use(&mut tx, user, &result).await?;
        OneTimeTokens::consume(&mut tx, OneTimePurpose::MfaChallenge, mfa_token).await?;
        let amr = vec!["pwd".to_owned(), "hwk".to_owned(), "mfa".to_owned()];
        let signed_in = self.complete_sign_in(&mut tx, user, amr, client).await?;
        tx.commit().await?;
        Ok(signed_in)
    }

    /// Starts a passwordless sign-in: the authenticator picks the account.
    pub async fn begin_passkey_sign_in(&self, client: &ClientInfo) -> IdentityResult<PasskeyChallenge> {
        let webauthn = self.webauthn()?;
        self.check_limit(Flow::Login, client, None)?;
        let (mut options, state): (_, DiscoverableAuthentication) =
            webauthn.start_discoverable_authentication().map_err(rejected)?;
        // A button-started sign-in, not the autofill ("conditional") kind.
        options.mediation = None;
        let mut tx = self.inner.db.begin().await?;
        let id = store_ceremony(&mut tx, Ceremony::SignIn, None, &state).await?;
        tx.commit().await?;
        challenge(id, &options)
    }

    /// Finishes a passwordless sign-in. A verified passkey is two factors at once
    /// (the device and its PIN or biometric), so no further step follows.
    pub async fn finish_passkey_sign_in<C: SignInCredential>(
        &self,
        challenge_id: Uuid,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> IdentityResult<C> {
        let webauthn = self.webauthn()?;
        let mut tx = self.inner.db.begin().await?;
        let state: DiscoverableAuthentication = take_ceremony(&mut tx, challenge_id, Ceremony::SignIn, None).await?;
        let (handle, credential_id) = match webauthn.identify_discoverable_authentication(credential) {
            Ok(identified) => identified,
            Err(e) => return Err(self.fail_passkey(tx, client, None, e).await),
        };
        let stored = passkey_by_credential(&mut tx, credential_id)
            .await?
            .filter(|p| p.user.0 == handle);
        let Some(stored) = stored else {
            return Err(self
                .fail_passkey(tx, client, None, "this passkey is not registered here")
                .await);
        };
        self.check_limit(Flow::Login, client, Some(&stored.user.to_string()))?;
        let result = match webauthn.finish_discoverable_authentication_v2(credential, state, &stored.passkey) {
            Ok(result) => result,
            Err(e) => return Err(self.fail_passkey(tx, client, Some(stored.user), e).await),
        };
        let status: Option<(String, Option<Timestamp>)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT status, locked_until FROM users WHERE id = $1"
        ).bind(stored.user).fetch_optional(c).await)?;
        let usable = status.is_some_and(|(status, locked_until)| {
            status != "disabled" && locked_until.is_none_or(|until| until <= Timestamp::now())
        });
        if !usable {
            self.fail_passkey(tx, client, Some(stored.user), "the account cannot sign in now")
                .await;
            return Err(IdentityError::InvalidCredentials);
        }
        self.note_passkey_use(&mut tx, stored.user, &result).await?;
        let amr = vec!["hwk".to_owned(), "mfa".to_owned()];
        let signed_in = self.complete_sign_in(&mut tx, stored.user, amr, client).await?;
        tx.commit().await?;
        Ok(signed_in)
    }

    /// Stores the new signature counter and backup state, and when the passkey was used.
    async fn note_passkey_use(
        &self,
        tx: &mut Tx,
        user: UserId,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> IdentityResult<()> {
        let credential_id: &[u8] = result.cred_id();
        let Some(mut stored) = passkey_by_credential(tx, credential_id)
            .await?
            .filter(|p| p.user == user)
        else {
            return Err(IdentityError::PasskeyRejected(
                "this passkey is not registered here".into(),
            ));
        };
        stored.passkey.update_credential(result);
        exec!(tx.conn(), c => sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
            .bind(to_json(&stored.passkey)?).bind(Timestamp::now()).bind(stored.id).execute(c).await)?;
        Ok(())
    }

    /// Ends a failed finish: the ceremony stays used up (no second try against the same
    /// challenge) and the failure is recorded. Returns the error for the caller.
    async fn fail_passkey(
        &self,
        mut tx: Tx,
        client: &ClientInfo,
        user: Option<UserId>,
        reason: impl std::fmt::Display,
    ) -> IdentityError {
        let reason = reason.to_string();
        tracing::debug!(%reason, "passkey assertion refused");
        let mut entry = AuditEntry::new(plinth_audit::action::AUTH_PASSKEY_FAILED)
            .outcome(Outcome::Failure)
            .changes(serde_json::json!({"reason": reason}));
        if let Some(user) = user {
            entry = entry.target("user", user);
        }
        let recorded = async {
            plinth_audit::append(&mut tx, &actor_of(client, None), entry).await?;
            tx.commit().await?;
            Ok::<(), IdentityError>(())
        };
        match recorded.await {
            Ok(()) => IdentityError::PasskeyRejected(reason),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_become_localhost_and_other_addresses_have_no_passkeys() {
        assert!(relying_party("http://127.0.0.1:8080").is_some());
        assert!(relying_party("http://[::1]:8080").is_some());
        assert!(relying_party("https://auth.example.com").is_some());
        assert!(relying_party("http://localhost:3000").is_some());
        assert!(relying_party("http://10.1.2.3:8080").is_none());
        assert!(relying_party("not a url").is_none());
    }

    #[test]
    fn passkey_names_are_bounded_and_printable() {
        assert_eq!(valid_name("  YubiKey 5  ").unwrap(), "YubiKey 5");
        assert!(valid_name("").is_err());
        assert!(valid_name(&"x".repeat(65)).is_err());
        assert!(valid_name("tab\there").is_err());
    }
}
