//! The audit trail: the catalogue of actions, reading a chain page by page, and
//! verification of a tenant's chain.

use axum::Json;
use axum::extract::State;
use plinth_audit::action::{ALL, Action};
use plinth_audit::{AuditFilter, AuditRecord, Outcome, VerifyReport};
use plinth_core::{FieldErrors, Page, PageRequest, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::InTenant;
use crate::extract::ApiQuery;
use crate::problem::Problem;
use crate::routes::paging::page_request;
use crate::state::AppState;

/// The filters of an audit list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The acting user's (or key's) id.
    actor: Option<String>,
    /// An action of the catalogue (`GET /api/v1/audit/actions`), or a prefix ending in
    /// `.*` (`member.*`).
    action: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    /// `success`, `failure` or `denied`.
    outcome: Option<String>,
    /// RFC 3339; records at or after it.
    since: Option<String>,
    /// RFC 3339; records before it.
    until: Option<String>,
    request_id: Option<String>,
    /// Platform list only: a tenant's id, to read that tenant's chain instead of the
    /// platform's.
    tenant_id: Option<TenantId>,
    /// Items per page: 1 to 200 (larger values give 200), 50 when absent.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The longest value a text filter takes: longer ones cannot match a stored value.
const MAX_FILTER_CHARS: usize = 200;

impl AuditQuery {
    fn filter(&self) -> Result<(AuditFilter, PageRequest), Problem> {
        let mut errors = FieldErrors::new();
        let text = |field: &str, value: &Option<String>, errors: &mut FieldErrors| match value {
            Some(v) if v.chars().count() > MAX_FILTER_CHARS => {
                errors.add(
                    field,
                    "too_long",
                    format!("at most {MAX_FILTER_CHARS} characters"),
                );
                None
            }
            other => other.clone(),
        };
        let time = |field: &str, value: &Option<String>, errors: &mut FieldErrors| {
            value
                .as_deref()
                .and_then(|v| match Timestamp::parse_rfc3339(v) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        errors.add(
                            field,
                            "invalid_value",
                            "an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
                        );
                        None
                    }
                })
        };
        let filter = AuditFilter {
            actor: self.actor.as_deref().and_then(|v| match v.parse() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add("actor", "invalid_value", "an id");
                    None
                }
            }),
            actions: self
                .action
                .as_deref()
                .and_then(|v| match Action::matching(v) {
                    Some(actions) => Some(actions),
                    None => {
                        errors.add(
                            "action",
                            "unknown_action",
                            "not an action of the catalogue, nor a prefix of one ending in `.*`",
                        );
                        None
                    }
                }),
            target_type: text("target_type", &self.target_type, &mut errors),
            target_id: text("target_id", &self.target_id, &mut errors),
            outcome: self
                .outcome
                .as_deref()
                .and_then(|v| match Outcome::parse(v) {
                    Some(o) => Some(o),
                    None => {
                        errors.add(
                            "outcome",
                            "invalid_value",
                            "`success`, `failure` or `denied`",
                        );
                        None
                    }
                }),
            since: time("since", &self.since, &mut errors),
            until: time("until", &self.until, &mut errors),
            request_id: text("request_id", &self.request_id, &mut errors),
        };
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        Ok((filter, page_request(self.limit, self.cursor.as_deref())?))
    }
}

/// The tenant's audit records, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = String, Path, description = "Tenant id or slug"), AuditQuery),
    responses((status = 200, body = Page<AuditRecord>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditRecord>>, Problem> {
    if query.tenant_id.is_some() {
        return Err(Problem::validation(FieldErrors::single(
            "tenant_id",
            "not_allowed",
            "the tenant is the one in the path",
        )));
    }
    let (filter, page) = query.filter()?;
    Ok(Json(
        state.tenancy.audit_log(&ctx.scope, &filter, &page).await?,
    ))
}

/// The platform's audit records (or, with `tenant`, a tenant's), newest first, filtered.
#[utoipa::path(get, path = "/api/v1/platform/audit", tag = "audit",
    params(AuditQuery),
    responses((status = 200, body = Page<AuditRecord>)))]
pub async fn platform_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditRecord>>, Problem> {
    let (filter, page) = query.filter()?;
    let chain = plinth_audit::chain_of(query.tenant_id);
    Ok(Json(
        plinth_audit::list_as_platform(&state.db, &chain, &filter, &page).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionView {
    name: &'static str,
    description: &'static str,
}

/// Every kind of audit record, by name, with what it means.
#[utoipa::path(get, path = "/api/v1/audit/actions", tag = "audit",
    responses((status = 200, body = Vec<ActionView>)))]
pub async fn actions() -> Json<Vec<ActionView>> {
    Json(
        ALL.iter()
            .map(|a| ActionView {
                name: a.name(),
                description: a.description(),
            })
            .collect(),
    )
}

/// Recomputes the tenant's audit chain and reports the first break, if any: an owner's
/// own proof that no record was edited, deleted, reordered or cut off.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit/verify", tag = "audit",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = VerifyReport)))]
pub async fn verify(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
) -> Result<Json<VerifyReport>, Problem> {
    Ok(Json(state.tenancy.verify_audit(&ctx.scope).await?))
}
