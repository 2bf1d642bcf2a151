//! Webhook endpoints: where a tenant wants its events delivered, which events, and the
//! secret deliveries are signed with (sealed at rest, shown once).

use plinth_core::{FieldErrors, Page, PageRequest, TenantId, Timestamp};
use plinth_store::{Conn, StoreResult, Tx, exec, on};
use serde::{Deserialize, Serialize};
use time::Duration;

use super::signing::{SecretError, SigningSecret};
use super::target::{TargetRefused, TargetRules};

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// The most endpoints one tenant may register.
pub const MAX_ENDPOINTS: i64 = 50;

/// The most event type filters of one endpoint.
const MAX_FILTERS: usize = 50;

/// Seals and opens signing secrets with a key the database does not hold (the master key).
pub trait SecretBox: Send + Sync {
    fn seal(&self, secret: &SigningSecret) -> Result<Vec<u8>, SecretError>;
    fn open(&self, sealed: &[u8]) -> Result<SigningSecret, SecretError>;
}

/// Why Plinth disabled an endpoint by itself.
pub mod disabled {
    /// The endpoint answered `410 Gone`.
    pub const GONE: &str = "gone";
    /// Every attempt failed for days.
    pub const FAILING: &str = "failing";
}

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub description: String,
    /// Event types delivered: names or `prefix.*`; empty: every event.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Plinth disabled it: `gone` (it answered 410) or `failing` (nothing succeeded
    /// for days); none when enabled or disabled by a person.
    pub disabled_reason: Option<String>,
    /// Until when the previous secret still signs, after a rotation.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<Timestamp>,
    /// Since when every attempt has failed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// An endpoint just created or given a new secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library does).
    pub secret: String,
}

/// Fields of an endpoint to create or change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// Required on creation: an `https://` URL whose host is public.
    pub url: Option<String>,
    pub description: Option<String>,
    /// Event types to deliver: names from the catalogue or `prefix.*`; empty or absent:
    /// every event.
    pub event_types: Option<Vec<String>>,
    /// Defaults to true. Enabling an endpoint Plinth disabled clears the reason.
    pub enabled: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    url: String,
    description: String,
    event_types: String,
    enabled: bool,
    disabled_reason: Option<String>,
    previous_secret_expires_at: Option<Timestamp>,
    failing_since: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

const COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, previous_secret_expires_at, failing_since, created_at, updated_at";

impl From<Row> for Endpoint {
    fn from(r: Row) -> Self {
        Endpoint {
            id: r.id,
            url: r.url,
            description: r.description,
            event_types: parse_filters(&r.event_types),
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            previous_secret_expires_at: r.previous_secret_expires_at,
            failing_since: r.failing_since,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The stored filter list. One that does not parse matches nothing (it never widens to
/// "every event": that would send events the tenant did not ask to send).
pub(crate) fn parse_filters(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_else(|_| vec![String::from("!unreadable")])
}

/// Whether an endpoint with `filters` takes events of `event_type`.
pub fn accepts(filters: &[String], event_type: &str) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| match f.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => f == event_type,
        })
}

/// The checked values of an input: what validation proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub url: Option<url::Url>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
}

/// Validates `input` (creating: the URL is required), resolving the URL's host now so a
/// name that points into a private network is refused when it is registered, not only
/// when a delivery is attempted.
pub async fn check(rules: &TargetRules, input: &EndpointInput, creating: bool) -> Result<Checked, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut url = None;
    match &input.url {
        None if creating => errors.add("url", "required", "an endpoint needs a URL"),
        None => {}
        Some(raw) => match rules.parse(raw.trim()) {
            Ok(parsed) => match rules.resolve(&parsed).await {
                Ok(_) => url = Some(parsed),
                Err(refused) => errors.add("url", refusal_code(&refused), refused.to_string()),
            },
            Err(refused) => errors.add("url", refusal_code(&refused), refused.to_string()),
        },
    }
    let description = input.description.as_ref().map(|d| d.trim().to_owned());
    if description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errors.add("description", "too_long", "at most 500 characters");
    }
    if let Some(filters) = &input.event_types {
        if filters.len() > MAX_FILTERS {
            errors.add("event_types", "too_long", "at most 50 filters");
        }
        for (i, filter) in filters.iter().enumerate() {
            if crate::matching_types(filter).is_none() {
                errors.add(
                    &format!("/event_types/{i}"),
                    "unknown_event_type",
                    "not an event type or a prefix of some (`member.*`); see GET /api/v1/events/types",
                );
            }
        }
    }
    errors.finish()?;
    Ok(Checked {
        url,
        description,
        event_types: input.event_types.clone(),
    })
}

fn refusal_code(refused: &TargetRefused) -> &'static str {
    match refused {
        TargetRefused::NotPublic { .. } => "not_public",
        TargetRefused::Unresolvable { .. } => "unresolvable",
        TargetRefused::Scheme => "https_required",
        _ => "invalid_value",
    }
}

/// The tenant's endpoints, oldest first, after the endpoint `after` (the page's cursor).
pub async fn list(
    conn: Conn<'_>,
    tenant: TenantId,
    after: uuid::Uuid,
    page: &PageRequest,
) -> StoreResult<Page<Endpoint>> {
    let rows: Vec<Row> = on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))).bind(tenant).bind(after).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
    Ok(Page::from_overfetch(
        rows.into_iter().map(Endpoint::from).collect(),
        page.limit,
        |e| e.id.to_string(),
    ))
}

pub async fn get(conn: Conn<'_>, tenant: TenantId, id: uuid::Uuid) -> StoreResult<Option<Endpoint>> {
    let row: Option<Row> = on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
    ))).bind(tenant).bind(id).fetch_optional(c).await)?;
    Ok(row.map(Endpoint::from))
}

pub async fn count(conn: Conn<'_>, tenant: TenantId) -> StoreResult<i64> {
    Ok(
        on!(conn, c => sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = $1")
        .bind(tenant).fetch_one(c).await)?,
    )
}

/// Inserts a checked endpoint with its sealed secret; returns its id.
pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    checked: &Checked,
    enabled: bool,
    sealed: &[u8],
) -> StoreResult<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    let now = Timestamp::now();
    let url = checked.url.as_ref().map(url::Url::as_str).unwrap_or_default();
    let filters =
        serde_json::to_string(&checked.event_types.clone().unwrap_or_default()).unwrap_or_else(|_| "[]".into());
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, enabled, secret, listening_since, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)"
    ).bind(id).bind(tenant).bind(url).bind(checked.description.as_deref().unwrap_or_default())
    .bind(&filters).bind(enabled).bind(sealed).bind(now).execute(c).await)?;
    Ok(id)
}

/// Applies a checked change to `before`; returns the endpoint as it now is.
pub async fn update(
    tx: &mut Tx,
    tenant: TenantId,
    before: &Endpoint,
    checked: Checked,
    enabled: Option<bool>,
) -> StoreResult<Endpoint> {
    let mut after = before.clone();
    if let Some(url) = checked.url {
        after.url = url.to_string();
    }
    if let Some(description) = checked.description {
        after.description = description;
    }
    if let Some(filters) = checked.event_types {
        after.event_types = filters;
    }
    if let Some(enabled) = enabled {
        if enabled {
            // Enabled again by a person: the record of why Plinth stopped is history.
            after.disabled_reason = None;
            after.failing_since = None;
        }
        after.enabled = enabled;
    }
    after.updated_at = Timestamp::now();
    // Enabled again: what happened while it was disabled is not sent to it later.
    let listens_again = after.enabled && !before.enabled;
    let filters = serde_json::to_string(&after.event_types).unwrap_or_else(|_| "[]".into());
    exec!(tx.conn(), c => sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, enabled = $4,
                disabled_reason = $5, failing_since = $6, updated_at = $7,
                listening_since = CASE WHEN $8 THEN $7 ELSE listening_since END
         WHERE tenant_id = $9 AND id = $10"
    ).bind(&after.url).bind(&after.description).bind(&filters).bind(after.enabled)
    .bind(&after.disabled_reason).bind(after.failing_since).bind(after.updated_at)
    .bind(listens_again).bind(tenant).bind(before.id).execute(c).await)?;
    Ok(after)
}

pub async fn delete(tx: &mut Tx, tenant: TenantId, id: uuid::Uuid) -> StoreResult<u64> {
    Ok(
        exec!(tx.conn(), c => sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant).bind(id).execute(c).await)?,
    )
}

/// Replaces the secret with `sealed`; the current one keeps signing until `until`.
pub async fn rotate(tx: &mut Tx, tenant: TenantId, id: uuid::Uuid, sealed: &[u8], until: Timestamp) -> StoreResult<()> {
    exec!(tx.conn(), c => sqlx::query(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $1, secret = $2, updated_at = $3
         WHERE tenant_id = $4 AND id = $5"
    ).bind(until).bind(sealed).bind(Timestamp::now()).bind(tenant).bind(id).execute(c).await)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_names_and_prefixes_and_an_unreadable_list_matches_nothing() {
        let filters = vec!["member.*".to_owned(), "tenant.created".to_owned()];
        assert!(accepts(&filters, "member.joined"));
        assert!(accepts(&filters, "tenant.created"));
        assert!(!accepts(&filters, "tenant.updated"));
        assert!(!accepts(&filters, "membership.x"));
        assert!(accepts(&[], "anything.at_all"));
        let unreadable = parse_filters("not json");
        assert!(!unreadable.is_empty());
        assert!(!accepts(&unreadable, "member.joined"));
    }
}
