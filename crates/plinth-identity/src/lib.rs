//! Identity: platform-wide user accounts, their credentials and sessions, access and
//! refresh tokens, second factors, the e-mail flows, and first-run setup.

mod account;
mod api_keys;
mod audit_heads;
mod auth;
mod browser;
pub mod cleanup;
pub mod crypto;
mod email;
mod error;
mod flows;
mod limits;
pub mod mail;
mod mfa;
mod one_time;
mod passkeys;
mod password;
mod secret;
mod service;
mod sessions;
mod setup;
mod users;
mod views;

pub use api_keys::{ApiKeyGrant, ApiKeyView, CreatedApiKey, NewApiKey};
pub use auth::{Introspection, LoginOutcome, MfaChallenge, SignInCredential, TokenPair};
pub use browser::{BrowserSession, csrf_matches, csrf_token};
pub use crypto::{KeyRing, MasterKey};
pub use email::Email;
pub use error::{IdentityError, IdentityResult};
pub use flows::SignUp;
pub use limits::LimitSettings;
pub use mfa::{MfaStatus, Proof, TotpEnrolment};
pub use one_time::{ConsumedToken, OneTimePurpose, OneTimeTokens, TokenSubject};
pub use passkeys::{MAX_PASSKEYS, PasskeyChallenge, PasskeyView, RegisteredPasskey};
pub use password::{PasswordHasher, PasswordPolicy, Verified};
pub use secret::{SecretToken, hash_token};
pub use service::{Identity, IdentityConfig, Principal};
pub use sessions::{ClientInfo, SessionView};
pub use setup::{NewSuperAdmin, Setup, SetupToken, SetupVia};
pub use users::{NewUser, PlatformRole, User, UserStatus, Users};
pub use views::{MAX_VIEWS_PER_TABLE, SavedView};
pub use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};
