//! The caller's personal API keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::Page;
use plinth_identity::{ApiKeyView, CreatedApiKey, Principal};
use plinth_tenancy::ApiKeyRequest;
use serde::Deserialize;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: String,
    /// The one tenant the key works in (id or slug).
    tenant: String,
    /// A subset of your own permissions in that tenant.
    permissions: Vec<String>,
    /// Days until the key stops working (1–365); without it, until revoked.
    expires_in_days: Option<i64>,
}

/// Creates an API key for one tenant with a subset of the caller's permissions there.
/// The key is in the answer, once.
#[utoipa::path(post, path = "/api/v1/me/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 403, description = "A permission you do not hold", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No tenant you are an active member of", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Unknown permission or invalid field", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), Problem> {
    let request = ApiKeyRequest {
        name: body.name,
        tenant: body.tenant,
        permissions: body.permissions,
        expires_in_days: body.expires_in_days,
    };
    let created = create_key(&state, &me, &context, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Authorises the key's grant in its tenant (a subset of the caller's own permissions
/// there), then makes the key: for the API and the console alike.
pub(crate) async fn create_key(
    state: &AppState,
    me: &Principal,
    context: &RequestContext,
    request: ApiKeyRequest,
) -> Result<CreatedApiKey, Problem> {
    let new = state
        .tenancy
        .api_key_grant(
            me.user,
            context.actor().with_user(me.user),
            request,
            me.signed_in_with_mfa(),
        )
        .await?;
    Ok(state
        .identity
        .create_api_key(me, new, &context.client())
        .await?)
}

/// The caller's API keys (without the keys themselves).
#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "api-keys", params(PageQuery),
    responses((status = 200, body = Page<ApiKeyView>)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(me): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<ApiKeyView>>, Problem> {
    Ok(Json(state.identity.api_keys(&me, &query.request()?).await?))
}

/// Revokes one of the caller's API keys; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .revoke_api_key(&me, id, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
