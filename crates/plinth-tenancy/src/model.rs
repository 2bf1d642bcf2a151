//! Tenants as the API shows them, and the values that create and change them.

use plinth_core::{FieldErrors, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Trial,
    Active,
    Suspended,
    Expired,
    PendingDeletion,
}

impl TenantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TenantStatus::Trial => "trial",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Expired => "expired",
            TenantStatus::PendingDeletion => "pending_deletion",
        }
    }

    pub fn parse(text: &str) -> Option<TenantStatus> {
        [
            Self::Trial,
            Self::Active,
            Self::Suspended,
            Self::Expired,
            Self::PendingDeletion,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Rows in the shared database, separated by tenant id (and row-level security on
    /// PostgreSQL).
    Pool,
    /// A database file (SQLite) or schema (PostgreSQL) of its own.
    Silo,
}

impl Isolation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Isolation::Pool => "pool",
            Isolation::Silo => "silo",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// Members must use a second factor.
    pub mfa_required: bool,
    /// Only addresses of these domains may join (empty: any).
    pub allowed_email_domains: Vec<String>,
    /// `invite_only` or `open` (anyone with an allowed address may join).
    pub signup_mode: String,
    /// Days the tenant's audit records are kept before pruning, within the platform's
    /// bounds (absent: the platform's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_retention_days: Option<u32>,
}

impl TenantSettings {
    /// The settings as stored. Text that does not parse (edited by hand, or written by a
    /// newer Plinth) gives the strictest settings, never the most permissive: a second
    /// factor required, invitations only.
    pub fn stored(text: &str) -> TenantSettings {
        serde_json::from_str(text).unwrap_or_else(|error| {
            tracing::error!(%error, "a tenant's stored settings do not parse; applying the strictest settings");
            TenantSettings {
                mfa_required: true,
                allowed_email_domains: Vec::new(),
                signup_mode: "invite_only".into(),
                audit_retention_days: None,
            }
        })
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            mfa_required: false,
            allowed_email_domains: Vec::new(),
            signup_mode: "invite_only".into(),
            audit_retention_days: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Branding {
    pub logo_url: Option<String>,
    /// `#rrggbb`
    pub primary_color: Option<String>,
    /// `#rrggbb`
    pub accent_color: Option<String>,
    pub custom_domain: Option<String>,
}

/// `#rrggbb`, the only colour form branding stores.
pub fn is_hex_colour(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl TenantSettings {
    pub fn validate(&self, retention: &plinth_audit::RetentionBounds, errors: &mut FieldErrors) {
        if let Some(days) = self.audit_retention_days
            && !retention.allows(days)
        {
            errors.add(
                "/settings/audit_retention_days",
                "out_of_range",
                format!(
                    "this platform keeps audit records {} to {} days",
                    retention.min_days, retention.max_days
                ),
            );
        }
        if !matches!(self.signup_mode.as_str(), "invite_only" | "open") {
            errors.add("/settings/signup_mode", "invalid_value", "use `invite_only` or `open`");
        }
        if self.allowed_email_domains.len() > 50 {
            errors.add("/settings/allowed_email_domains", "too_long", "at most 50 domains");
        }
        for (i, domain) in self.allowed_email_domains.iter().enumerate() {
            if !is_domain(domain) {
                errors.add(
                    &format!("/settings/allowed_email_domains/{i}"),
                    "invalid_value",
                    "not a domain name (lower case)",
                );
            }
        }
    }
}

impl Branding {
    pub fn validate(&self, errors: &mut FieldErrors) {
        for (name, colour) in [
            ("primary_color", &self.primary_color),
            ("accent_color", &self.accent_color),
        ] {
            if colour.as_deref().is_some_and(|c| !is_hex_colour(c)) {
                errors.add(&format!("/branding/{name}"), "invalid_value", "use #rrggbb");
            }
        }
        if let Some(url) = &self.logo_url
            && (!url.starts_with("https://") || url.len() > 2048 || url.chars().any(char::is_whitespace))
        {
            errors.add(
                "/branding/logo_url",
                "invalid_value",
                "use an https:// URL of at most 2048 characters",
            );
        }
        if self.custom_domain.as_deref().is_some_and(|d| !is_domain(d)) {
            errors.add(
                "/branding/custom_domain",
                "invalid_value",
                "not a domain name (lower case)",
            );
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub isolation: Isolation,
    pub trial_ends_at: Option<Timestamp>,
    /// Why the tenant is suspended, when it is.
    pub status_reason: Option<String>,
    pub settings: TenantSettings,
    pub branding: Branding,
    pub onboarding: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A tenant to create.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub owner: UserId,
    pub isolation: Isolation,
    /// Days of trial; `None` makes the tenant active at once.
    pub trial_days: Option<i64>,
}

/// A partial change to a tenant.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub settings: Option<TenantSettings>,
    pub branding: Option<Branding>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub isolation: String,
    pub trial_ends_at: Option<Timestamp>,
    pub status_reason: Option<String>,
    pub settings: String,
    pub branding: String,
    pub onboarding: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(crate) const TENANT_COLUMNS: &str = "id, slug, name, status, isolation, trial_ends_at, status_reason, settings, \
     branding, onboarding, created_at, updated_at";

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: r.id,
            slug: r.slug,
            name: r.name,
            // A status this binary does not know must never pass for usable.
            status: TenantStatus::parse(&r.status).unwrap_or(TenantStatus::Suspended),
            isolation: if r.isolation == "silo" {
                Isolation::Silo
            } else {
                Isolation::Pool
            },
            trial_ends_at: r.trial_ends_at,
            status_reason: r.status_reason,
            settings: TenantSettings::stored(&r.settings),
            branding: serde_json::from_str(&r.branding).unwrap_or_default(),
            onboarding: serde_json::from_str(&r.onboarding).unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
