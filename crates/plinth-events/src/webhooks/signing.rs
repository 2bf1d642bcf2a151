//! Signing deliveries as Standard Webhooks (<https://www.standardwebhooks.com>) says, so
//! receivers can use any of its libraries: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers, the signature being `v1,` and the base64 HMAC-SHA256 of
//! `id.timestamp.body` under the endpoint's secret. While a secret is being rotated the
//! header carries one signature per secret, space-separated; a receiver accepts the
//! delivery when any of them verifies with the secret it knows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// Bytes of a new secret (Standard Webhooks asks for 24 to 64).
const SECRET_LEN: usize = 32;

/// An endpoint's signing secret.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the system's random number generator failed")]
    Random,
    #[error("not a signing secret (whsec_ and base64 of 24 to 64 bytes)")]
    Malformed,
    #[error("sealing failed: {0}")]
    Sealing(String),
}

impl SigningSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = vec![0u8; SECRET_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Ok(Self(bytes))
    }

    /// Reads the text form (`whsec_…`).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Malformed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Malformed)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError::Malformed);
        }
        Ok(Self(bytes))
    }

    /// The text form, shown to the endpoint's owner once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The raw bytes, to encrypt at rest.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// `v1,` and the signature of one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut context = hmac::Context::with_key(&key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

/// The three headers of a delivery signed with every secret in `secrets` (the current one
/// and, during a rotation, the previous one).
pub fn headers(secrets: &[SigningSecret], id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = secrets.iter().map(|s| s.sign(id, timestamp, body)).collect();
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies with the Standard Webhooks reference library, independent of our code.
    fn reference_verifies(secret: &str, delivery: &[(&'static str, String); 3], body: &[u8]) -> bool {
        let mut map = http::HeaderMap::new();
        for (name, value) in delivery {
            map.insert(*name, value.parse().unwrap());
        }
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(body, &map)
            .is_ok()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn deliveries_verify_with_the_reference_library_and_edits_do_not() {
        let secret = SigningSecret::generate().unwrap();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&text).unwrap().as_bytes(), secret.as_bytes());
        let body = br#"{"type":"member.joined","data":{"user_id":"0190"}}"#;
        let delivery = headers(std::slice::from_ref(&secret), "msg_01a24b", now(), body);
        assert!(reference_verifies(&text, &delivery, body));
        assert!(!reference_verifies(&text, &delivery, br#"{"type":"member.removed"}"#));
        let other = SigningSecret::generate().unwrap().expose();
        assert!(!reference_verifies(&other, &delivery, body));
    }

    #[test]
    fn during_a_rotation_both_secrets_verify() {
        let (old, new) = (SigningSecret::generate().unwrap(), SigningSecret::generate().unwrap());
        let body = b"{}";
        let delivery = headers(&[new.clone(), old.clone()], "msg_2", now(), body);
        assert_eq!(delivery[2].1.split(' ').count(), 2);
        assert!(reference_verifies(&new.expose(), &delivery, body));
        assert!(reference_verifies(&old.expose(), &delivery, body));
    }

    #[test]
    fn malformed_secrets_are_refused_and_never_printed() {
        for text in [
            "",
            "whsec_",
            "whsec_!!!",
            "sk_abc",
            &format!("whsec_{}", STANDARD.encode([1u8; 8])),
        ] {
            assert_eq!(
                SigningSecret::parse(text).unwrap_err(),
                SecretError::Malformed,
                "{text}"
            );
        }
        let secret = SigningSecret::generate().unwrap();
        assert_eq!(format!("{secret:?}"), "SigningSecret(***)");
    }
}
