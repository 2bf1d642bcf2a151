//! The audit trail: the catalogue of actions, reading a chain page by page, and
//! verification of a tenant's chain.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use plinth_audit::action::{ALL, Action};
use plinth_audit::{AuditFilter, AuditRecord, ExportFormat, Outcome, SignedHead, VerifyReport};
use plinth_core::{FieldErrors, Page, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::InTenant;
use crate::extract::ApiQuery;
use crate::problem::Problem;
use crate::routes::paging::page_request;
use crate::state::AppState;

/// Declares a query struct with the audit filters and `extra` fields; its `filter()` reads
/// the filters (every audit list and export takes the same ones, and refuses any other).
macro_rules! audit_query {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The acting user's (or key's) id.
            actor: Option<String>,
            /// An action of the catalogue (`GET /api/v1/audit/actions`), or a prefix
            /// ending in `.*` (`member.*`).
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
            $($(#[$fmeta])* $field: $ty,)*
        }

        impl $name {
            fn filter(&self) -> Result<AuditFilter, Problem> {
                filter_of(FilterFields {
                    actor: self.actor.as_deref(),
                    action: self.action.as_deref(),
                    target_type: self.target_type.as_deref(),
                    target_id: self.target_id.as_deref(),
                    outcome: self.outcome.as_deref(),
                    since: self.since.as_deref(),
                    until: self.until.as_deref(),
                    request_id: self.request_id.as_deref(),
                })
            }
        }
    };
}

audit_query!(
    /// The filters and page of a tenant's audit list.
    AuditQuery {
        /// Items per page: 1 to 200 (larger values give 200), 50 when absent.
        limit: Option<u32>,
        /// The `next_cursor` of the previous page.
        cursor: Option<String>,
    }
);

audit_query!(
    /// The filters and page of the platform's audit list.
    PlatformAuditQuery {
        /// A tenant's id, to read that tenant's chain instead of the platform's.
        tenant_id: Option<TenantId>,
        /// Items per page: 1 to 200 (larger values give 200), 50 when absent.
        limit: Option<u32>,
        /// The `next_cursor` of the previous page.
        cursor: Option<String>,
    }
);

audit_query!(
    /// The filters and format of a tenant's audit export.
    ExportQuery {
        /// `ndjson` (the default) or `csv`.
        format: Option<String>,
    }
);

audit_query!(
    /// The filters and format of a platform audit export.
    PlatformExportQuery {
        /// A tenant's id, to export that tenant's chain instead of the platform's.
        tenant_id: Option<TenantId>,
        /// `ndjson` (the default) or `csv`.
        format: Option<String>,
    }
);

struct FilterFields<'a> {
    actor: Option<&'a str>,
    action: Option<&'a str>,
    target_type: Option<&'a str>,
    target_id: Option<&'a str>,
    outcome: Option<&'a str>,
    since: Option<&'a str>,
    until: Option<&'a str>,
    request_id: Option<&'a str>,
}

/// The longest value a text filter takes: longer ones cannot match a stored value.
const MAX_FILTER_CHARS: usize = 200;

fn filter_of(fields: FilterFields<'_>) -> Result<AuditFilter, Problem> {
    let mut errors = FieldErrors::new();
    let mut text = |field: &str, value: Option<&str>| match value {
        Some(v) if v.chars().count() > MAX_FILTER_CHARS => {
            errors.add(
                field,
                "too_long",
                format!("at most {MAX_FILTER_CHARS} characters"),
            );
            None
        }
        other => other.map(str::to_owned),
    };
    let (target_type, target_id, request_id) = (
        text("target_type", fields.target_type),
        text("target_id", fields.target_id),
        text("request_id", fields.request_id),
    );
    let mut parsed = |field: &str, value: Option<&str>, detail: &str, ok: bool| {
        if value.is_some() && !ok {
            errors.add(field, "invalid_value", detail);
        }
    };
    let actor = fields.actor.map(str::parse::<uuid::Uuid>);
    parsed(
        "actor",
        fields.actor,
        "an id",
        !matches!(actor, Some(Err(_))),
    );
    let actions = fields.action.map(Action::matching);
    let outcome = fields.outcome.map(Outcome::parse);
    parsed(
        "outcome",
        fields.outcome,
        "`success`, `failure` or `denied`",
        !matches!(outcome, Some(None)),
    );
    let since = fields.since.map(Timestamp::parse_rfc3339);
    parsed(
        "since",
        fields.since,
        "an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
        !matches!(since, Some(Err(_))),
    );
    let until = fields.until.map(Timestamp::parse_rfc3339);
    parsed(
        "until",
        fields.until,
        "an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
        !matches!(until, Some(Err(_))),
    );
    if let Some(None) = actions {
        errors.add(
            "action",
            "unknown_action",
            "not an action of the catalogue, nor a prefix of one ending in `.*`",
        );
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    Ok(AuditFilter {
        actor: actor.and_then(Result::ok),
        actions: actions.flatten(),
        target_type,
        target_id,
        outcome: outcome.flatten(),
        since: since.and_then(Result::ok),
        until: until.and_then(Result::ok),
        request_id,
    })
}

fn format_of(format: Option<&str>) -> Result<ExportFormat, Problem> {
    ExportFormat::parse(format.unwrap_or("ndjson")).ok_or_else(|| {
        Problem::validation(FieldErrors::single(
            "format",
            "invalid_value",
            "`ndjson` or `csv`",
        ))
    })
}

/// A streamed download of `chunks` in `format`, named for `name` and today.
fn download(
    name: &str,
    format: ExportFormat,
    chunks: impl futures_util::Stream<Item = Result<Vec<u8>, plinth_store::StoreError>> + Send + 'static,
) -> Response {
    let date = Timestamp::now().to_rfc3339();
    let filename = format!("{name}-audit-{}.{}", &date[..10], format.extension());
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
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
    let filter = query.filter()?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    Ok(Json(
        state.tenancy.audit_log(&ctx.scope, &filter, &page).await?,
    ))
}

/// The platform's audit records (or, with `tenant`, a tenant's), newest first, filtered.
#[utoipa::path(get, path = "/api/v1/platform/audit", tag = "audit",
    params(PlatformAuditQuery),
    responses((status = 200, body = Page<AuditRecord>)))]
pub async fn platform_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PlatformAuditQuery>,
) -> Result<Json<Page<AuditRecord>>, Problem> {
    let filter = query.filter()?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let chain = plinth_audit::chain_of(query.tenant_id);
    Ok(Json(
        plinth_audit::list_as_platform(&state.db, &chain, &filter, &page).await?,
    ))
}

/// The tenant's audit records matching the filters, oldest first, streamed as NDJSON or
/// CSV. Each record carries its stored fields with `seq`, `prev_hash` and `hash`, so the
/// download verifies offline (`plinth audit verify --file`).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit/export", tag = "audit",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ExportQuery),
    responses((status = 200, description = "The records, one per line (NDJSON) or row (CSV)", content_type = "application/x-ndjson")))]
pub async fn export(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, Problem> {
    let filter = query.filter()?;
    let format = format_of(query.format.as_deref())?;
    let chunks = state.tenancy.audit_export(&ctx.scope, filter, format);
    Ok(download(&ctx.tenant_slug, format, chunks))
}

/// The platform's audit records (or, with `tenant_id`, a tenant's), oldest first, streamed.
#[utoipa::path(get, path = "/api/v1/platform/audit/export", tag = "audit",
    params(PlatformExportQuery),
    responses((status = 200, description = "The records, one per line (NDJSON) or row (CSV)", content_type = "application/x-ndjson")))]
pub async fn platform_export(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PlatformExportQuery>,
) -> Result<Response, Problem> {
    let filter = query.filter()?;
    let format = format_of(query.format.as_deref())?;
    // `platform`, or the tenant's id: also the download's name.
    let chain = plinth_audit::chain_of(query.tenant_id);
    let chunks = plinth_audit::export_as_platform(&state.db, chain.clone(), filter, format);
    Ok(download(&chain, format, chunks))
}

/// The newest signed head of every chain: anchor them outside Plinth (a ticket, a
/// printout) and check them later with `plinth audit verify --against`.
#[utoipa::path(get, path = "/api/v1/audit/heads", tag = "audit",
    responses((status = 200, body = Vec<SignedHead>)))]
pub async fn heads(State(state): State<AppState>) -> Result<Json<Vec<SignedHead>>, Problem> {
    Ok(Json(plinth_audit::latest_signed(&state.db).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedCount {
    /// Heads signed now (those that moved since their last signature).
    signed: usize,
}

/// Signs every chain head that moved since its last signature, now rather than at the
/// next hourly round.
#[utoipa::path(post, path = "/api/v1/platform/audit/heads/sign", tag = "audit",
    responses((status = 200, body = SignedCount)))]
pub async fn sign_heads(State(state): State<AppState>) -> Result<Json<SignedCount>, Problem> {
    Ok(Json(SignedCount {
        signed: state.identity.sign_audit_heads().await?,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionView {
    #[schema(value_type = Action)]
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
    Ok(Json(
        state
            .tenancy
            .verify_audit(&ctx.scope, state.identity.keys())
            .await?,
    ))
}
