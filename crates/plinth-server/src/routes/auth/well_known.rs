use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", content_type = "application/json")))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.identity.jwks()),
    )
}

/// Issuer metadata (the subset of OpenID Connect Discovery that token verifiers use).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "auth",
    responses((status = 200, description = "Issuer metadata", content_type = "application/json")))]
pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = state.identity.config().base_url.clone();
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}/api/v1/auth/login"),
            "introspection_endpoint": format!("{issuer}/api/v1/auth/introspect"),
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        })),
    )
}
