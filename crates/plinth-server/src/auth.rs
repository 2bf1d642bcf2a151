//! Authentication at the edge: the guard every non-public route runs, and the
//! extractors handlers use to get the caller.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plinth_identity::{ClientInfo, Principal};

use crate::extract::RequestContext;
use crate::problem::{Problem, ProblemKind};
use crate::router::Access;
use crate::state::AppState;

/// The bearer credential of a request, if it has one.
fn bearer(parts: &axum::http::HeaderMap) -> Option<&str> {
    let value = parts.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authenticates the request and checks it against `access`; on success the principal
/// travels to the handler in the request's extensions.
pub async fn guard(
    State((state, access)): State<(AppState, Access)>,
    mut request: Request,
    next: Next,
) -> Response {
    match authorize(&state, access, request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

async fn authorize(
    state: &AppState,
    access: Access,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, Problem> {
    let token = bearer(headers)
        .ok_or_else(|| Problem::unauthenticated("send an access token: Authorization: Bearer …"))?;
    let principal = state.identity.authenticate(token).await?;
    let restriction = principal.restriction(state.config.require_admin_mfa);
    match access {
        Access::Public | Access::Account => {}
        Access::User => {
            if let Some(reason) = restriction {
                return Err(Problem::new(ProblemKind::Forbidden, reason));
            }
        }
        Access::PlatformAdmin => {
            if !principal.platform_admin {
                return Err(Problem::new(
                    ProblemKind::Forbidden,
                    "this needs a platform administrator",
                ));
            }
            if let Some(reason) = restriction {
                return Err(Problem::new(ProblemKind::Forbidden, reason));
            }
        }
    }
    Ok(principal)
}

/// The authenticated caller of a route guarded by [`guard`].
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| Problem::unauthenticated("authentication required"))
    }
}

impl RequestContext {
    pub fn client(&self) -> ClientInfo {
        ClientInfo {
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }
}
