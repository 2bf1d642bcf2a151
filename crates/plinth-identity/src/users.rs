//! User accounts: a platform-wide identity, member of any number of tenants.

use plinth_core::{Timestamp, UserId};
use plinth_store::{Conn, StoreError, Tx, exec, on};
use serde::Serialize;

use crate::email::Email;
use crate::error::{IdentityError, IdentityResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
    Locked,
}

impl UserStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Locked => "locked",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "active" => UserStatus::Active,
            "locked" => UserStatus::Locked,
            // An unknown status must never grant access.
            _ => UserStatus::Disabled,
        }
    }
}

/// Platform roles (held by the platform operator's staff, not by tenant members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformRole {
    SuperAdmin,
    OpsAdmin,
    Support,
    BillingAdmin,
}

impl PlatformRole {
    pub const ALL: [PlatformRole; 4] = [
        PlatformRole::SuperAdmin,
        PlatformRole::OpsAdmin,
        PlatformRole::Support,
        PlatformRole::BillingAdmin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PlatformRole::SuperAdmin => "super-admin",
            PlatformRole::OpsAdmin => "ops-admin",
            PlatformRole::Support => "support",
            PlatformRole::BillingAdmin => "billing-admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether the role may change a tenant's standing (suspend, reactivate, restore):
    /// support staff read tenants but do not operate them.
    pub fn operates_tenants(&self) -> bool {
        !matches!(self, PlatformRole::Support)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub email_verified_at: Option<Timestamp>,
    pub display_name: String,
    pub status: UserStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
    /// Bumped when the user's roles change; tokens carry it as `pv`.
    #[serde(skip)]
    pub authz_version: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    email_verified_at: Option<Timestamp>,
    display_name: String,
    status: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    last_login_at: Option<Timestamp>,
    authz_version: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            email_verified_at: r.email_verified_at,
            display_name: r.display_name,
            status: UserStatus::parse(&r.status),
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
            authz_version: r.authz_version,
        }
    }
}

const USER_COLUMNS: &str =
    "id, email, email_verified_at, display_name, status, created_at, updated_at, last_login_at, authz_version";

/// A user to create; the password is already hashed.
pub struct NewUser<'a> {
    pub email: &'a Email,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub email_verified: bool,
}

pub struct Users;

impl Users {
    pub async fn insert(tx: &mut Tx, new: NewUser<'_>) -> IdentityResult<User> {
        let id = UserId::new();
        let now = Timestamp::now();
        let verified = new.email_verified.then_some(now);
        let inserted = exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO users (id, email, email_normalized, email_verified_at, display_name, password_hash, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7)"
        )
        .bind(id).bind(new.email.as_str()).bind(new.email.normalized()).bind(verified)
        .bind(new.display_name).bind(new.password_hash).bind(now)
        .execute(c).await)
        .map_err(StoreError::from);
        match inserted {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => return Err(IdentityError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        Ok(User {
            id,
            email: new.email.as_str().to_owned(),
            email_verified_at: verified,
            display_name: new.display_name.to_owned(),
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            authz_version: 0,
        })
    }

    pub async fn find(conn: Conn<'_>, id: UserId) -> IdentityResult<Option<User>> {
        let row: Option<UserRow> = on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")
        )).bind(id).fetch_optional(c).await)?;
        Ok(row.map(User::from))
    }

    /// The user with this address and their password hash.
    pub async fn find_by_email(conn: Conn<'_>, email: &Email) -> IdentityResult<Option<(User, Option<String>)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: Option<String>,
        }
        let row: Option<Row> = on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email_normalized = $1")
        )).bind(email.normalized()).fetch_optional(c).await)?;
        Ok(row.map(|r| (User::from(r.user), r.password_hash)))
    }

    pub async fn grant_platform_role(
        tx: &mut Tx,
        user: UserId,
        role: PlatformRole,
        granted_by: Option<UserId>,
    ) -> IdentityResult<()> {
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO platform_role_assignments (user_id, role, granted_at, granted_by)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, role) DO NOTHING"
        ).bind(user).bind(role.as_str()).bind(Timestamp::now()).bind(granted_by).execute(c).await)?;
        Ok(())
    }

    pub async fn platform_roles(conn: Conn<'_>, user: UserId) -> IdentityResult<Vec<PlatformRole>> {
        let roles: Vec<String> = on!(conn, c => sqlx::query_scalar(
            "SELECT role FROM platform_role_assignments WHERE user_id = $1 ORDER BY role"
        ).bind(user).fetch_all(c).await)?;
        Ok(roles.iter().filter_map(|r| PlatformRole::parse(r)).collect())
    }

    pub async fn count_with_platform_role(conn: Conn<'_>, role: PlatformRole) -> IdentityResult<i64> {
        Ok(on!(conn, c => sqlx::query_scalar(
            "SELECT count(*) FROM platform_role_assignments a JOIN users u ON u.id = a.user_id
             WHERE a.role = $1 AND u.status <> 'disabled'"
        ).bind(role.as_str()).fetch_one(c).await)?)
    }
}
