//! Identity: platform-wide user accounts, their credentials, the one-time tokens of the
//! e-mail and setup flows, and (growing) sessions, tokens and MFA.

mod email;
mod error;
mod one_time;
mod password;
mod secret;
mod setup;
mod users;

pub use email::Email;
pub use error::{IdentityError, IdentityResult};
pub use one_time::{ConsumedToken, OneTimePurpose, OneTimeTokens, TokenSubject};
pub use password::{PasswordHasher, PasswordPolicy, Verified};
pub use secret::{SecretToken, hash_token};
pub use setup::{NewSuperAdmin, Setup, SetupToken, SetupVia};
pub use users::{NewUser, PlatformRole, User, UserStatus, Users};
