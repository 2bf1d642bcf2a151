//! The audit trail: verification of a tenant's chain.

use axum::Json;
use axum::extract::State;
use plinth_audit::VerifyReport;

use crate::auth::InTenant;
use crate::problem::Problem;
use crate::state::AppState;

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
