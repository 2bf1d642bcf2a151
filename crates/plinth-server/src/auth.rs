//! Authentication at the edge: the guard every non-public route runs, and the
//! extractors handlers use to get the caller.

use axum::RequestExt;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plinth_identity::{ClientInfo, Principal};
use plinth_tenancy::TenantContext;

use crate::extract::RequestContext;
use crate::problem::{Problem, ProblemKind};
use crate::router::{Access, RouteKind};
use crate::state::AppState;
use crate::{console, cookies};

/// Header carrying the CSRF token on cookie-authenticated API calls from console pages.
pub const CSRF_HEADER: &str = "x-csrf-token";

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
/// travels to the handler in the request's extensions. Pages answer a missing sign-in
/// with a redirect to the sign-in page and other refusals with an HTML page.
pub async fn guard(
    State((state, access, kind)): State<(AppState, Access, RouteKind)>,
    mut request: Request,
    next: Next,
) -> Response {
    let refuse = |problem: Problem, request: &Request| match kind {
        RouteKind::Page => console::refusal(problem, request.uri()),
        RouteKind::Api | RouteKind::Operations => problem.into_response(),
    };
    let asked = Asked {
        method: request.method(),
        headers: request.headers(),
        extensions: request.extensions(),
        uri: request.uri(),
    };
    let principal = match authorize(&state, access, kind, asked).await {
        Ok(principal) => principal,
        Err(problem) => return refuse(problem, &request),
    };
    if let Access::Tenant(permission) = access {
        match tenant_context(&state, &principal, permission, &mut request).await {
            Ok(context) => {
                request.extensions_mut().insert(context);
            }
            Err(problem) => return refuse(problem, &request),
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The tenant a route without `{tenant}` in its path works in: `?tenant=` (id or slug),
/// else the tenant the token was issued for (or the API key's one tenant).
fn selected_tenant(principal: &Principal, uri: &axum::http::Uri) -> Result<String, Problem> {
    let named = uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "tenant")
            .map(|(_, value)| value.into_owned())
    });
    named
        .or_else(|| principal.tenant.map(|t| t.to_string()))
        .or_else(|| {
            principal
                .api_key
                .as_ref()
                .map(|grant| grant.tenant.to_string())
        })
        .ok_or_else(|| {
            Problem::validation(plinth_core::FieldErrors::single(
                "tenant",
                "required",
                "name the tenant with ?tenant=, or use a token issued for one",
            ))
        })
}

/// Resolves the tenant of the request (the `{tenant}` of the path, else the one the
/// caller selected) and authorises the caller inside it.
async fn tenant_context(
    state: &AppState,
    principal: &Principal,
    permission: &'static str,
    request: &mut Request,
) -> Result<TenantContext, Problem> {
    let params = request
        .extract_parts::<RawPathParams>()
        .await
        .map_err(|_| Problem::new(ProblemKind::MalformedRequest, "invalid path parameters"))?;
    let tenant = match params.iter().find(|(name, _)| *name == "tenant") {
        Some((_, value)) => value.to_owned(),
        None => selected_tenant(principal, request.uri())?,
    };
    let context = request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_default();
    let Some(grant) = &principal.api_key else {
        let actor = context.actor().with_user(principal.user);
        let mfa_used = principal.signed_in_with_mfa();
        return Ok(state
            .tenancy
            .authorize(principal.user, actor, &tenant, permission, mfa_used)
            .await?);
    };
    // An API key: its own grant, within what its owner still holds in its one tenant.
    if !grant.permissions.iter().any(|p| p == permission) {
        return Err(Problem::new(
            ProblemKind::Forbidden,
            "this API key does not grant this permission",
        ));
    }
    let mut actor = context.actor();
    actor.kind = plinth_core::ActorKind::ApiKey;
    actor.id = Some(grant.id);
    // A key counts as signed in with a second factor only when the session that made
    // it was.
    let mut ctx = state
        .tenancy
        .authorize(principal.user, actor, &tenant, permission, grant.mfa_used)
        .await?;
    if ctx.scope.tenant() != grant.tenant {
        return Err(Problem::not_found());
    }
    ctx.permissions = ctx
        .permissions
        .intersection(plinth_access::PermissionSet::from_keys(
            grant.permissions.iter().map(String::as_str),
        ));
    Ok(ctx)
}

/// The caller behind a bearer token, or behind the console cookie. A cookie travels
/// with every request the browser makes, cross-site ones included, so a change made
/// with it must also prove it comes from a console page: the CSRF token in a header
/// here (API routes), in the form for pages (checked by `console::csrf`).
async fn authenticate(
    state: &AppState,
    kind: RouteKind,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, Problem> {
    if let Some(token) = bearer(headers) {
        return Ok(state.identity.authenticate(token).await?);
    }
    let Some(secret) = cookies::read(headers, cookies::SESSION) else {
        return Err(Problem::unauthenticated(
            "send an access token: Authorization: Bearer …",
        ));
    };
    let principal = state.identity.authenticate_browser(&secret).await?;
    if kind != RouteKind::Page && !method.is_safe() {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !plinth_identity::csrf_matches(&secret, presented) {
            return Err(Problem::new(
                ProblemKind::CsrfFailed,
                "a change made with the console cookie needs the x-csrf-token header",
            ));
        }
    }
    Ok(principal)
}

/// What a request asks of the guard (its parts that may be held across an await).
struct Asked<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    extensions: &'a axum::http::Extensions,
    uri: &'a axum::http::Uri,
}

async fn authorize(
    state: &AppState,
    access: Access,
    kind: RouteKind,
    asked: Asked<'_>,
) -> Result<Principal, Problem> {
    let principal = authenticate(state, kind, asked.method, asked.headers).await?;
    // A platform route refused for lack of the role is on the platform's record.
    // Only a refusal reads the request context and the route's template.
    let refuse_role = |reason: &'static str| async move {
        let context = asked
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_default();
        let route = asked
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map_or_else(|| asked.uri.path(), |p| p.as_str());
        let actor = context.actor().with_user(principal.user);
        state
            .identity
            .record_platform_refusal(&actor, route, reason)
            .await;
        Problem::new(ProblemKind::Forbidden, reason)
    };
    if principal.api_key.is_some() && !matches!(access, Access::Tenant(_)) {
        return Err(Problem::new(
            ProblemKind::Forbidden,
            "API keys work on tenant routes only",
        ));
    }
    let restriction = principal.restriction(state.config.require_admin_mfa);
    match access {
        Access::Public | Access::Account => {}
        Access::User | Access::Tenant(_) => {
            if let Some(reason) = restriction {
                return Err(Problem::new(ProblemKind::Forbidden, reason));
            }
        }
        Access::PlatformAdmin | Access::PlatformOperator => {
            if !principal.platform_admin {
                return Err(refuse_role("this needs a platform administrator").await);
            }
            if let Some(reason) = restriction {
                return Err(Problem::new(ProblemKind::Forbidden, reason));
            }
            if access == Access::PlatformOperator
                && !state.identity.operates_tenants(&principal).await?
            {
                return Err(
                    refuse_role("this needs a super-admin, ops-admin or billing-admin").await,
                );
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

/// The caller's authorisation inside the tenant of the path.
pub struct InTenant(pub TenantContext);

impl<S: Send + Sync> FromRequestParts<S> for InTenant {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<TenantContext>()
            .cloned()
            .map(InTenant)
            .ok_or_else(|| Problem::internal(&"a tenant handler on a route without tenant access"))
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
