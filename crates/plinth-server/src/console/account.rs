//! The signed-in user's own pages: the overview and their sessions.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use plinth_core::{MAX_PAGE_LIMIT, PageRequest, SessionId, Timestamp};
use plinth_tenancy::MyTenant;

use super::{Shell, error_page, see_other, with_cookies};
use crate::auth::Caller;
use crate::extract::{ApiPath, RequestContext};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    shell: Option<Shell>,
    restriction: Option<&'static str>,
    tenants: Vec<MyTenant>,
    second_factor: bool,
}

pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Caller(me): Caller,
) -> Result<Response, Problem> {
    let shell = Shell::new(&state, &me, &headers, "overview").await?;
    // The console's server-driven table (with paging) replaces this first page.
    let first_page = PageRequest::new(Some(MAX_PAGE_LIMIT), None);
    let tenants = state.tenancy.my_tenants(me.user, &first_page).await?.items;
    Ok(OverviewPage {
        shell: Some(shell),
        restriction: me.restriction(state.config.require_admin_mfa),
        tenants,
        second_factor: me.mfa_enrolled,
    }
    .into_response())
}

struct SessionRow {
    id: SessionId,
    console: bool,
    device: String,
    ip: String,
    signed_in: String,
    last_seen: String,
    current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    shell: Option<Shell>,
    sessions: Vec<SessionRow>,
}

/// Minutes are enough to recognise a sign-in; seconds would only be noise.
fn when(t: Timestamp) -> String {
    let d = t.as_datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute()
    )
}

pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Caller(me): Caller,
) -> Result<Response, Problem> {
    let shell = Shell::new(&state, &me, &headers, "sessions").await?;
    let sessions = state
        .identity
        .my_sessions(&me, &PageRequest::new(Some(MAX_PAGE_LIMIT), None))
        .await?
        .items
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            console: s.kind == "browser",
            device: s.user_agent.unwrap_or_else(|| "Unknown device".into()),
            ip: s.ip.unwrap_or_else(|| "unknown address".into()),
            signed_in: when(s.created_at),
            last_seen: when(s.last_seen_at),
            current: s.current,
        })
        .collect();
    Ok(SessionsPage {
        shell: Some(shell),
        sessions,
    }
    .into_response())
}

/// Ends one of the user's sessions; ending this one signs the browser out.
pub async fn revoke(
    State(state): State<AppState>,
    context: RequestContext,
    Caller(me): Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Response {
    if let Err(e) = state
        .identity
        .revoke_my_session(&me, id, &context.client())
        .await
    {
        return error_page(e.into());
    }
    if id == me.session {
        return with_cookies(see_other(super::SIGN_IN), [super::clear_session(&state)]);
    }
    see_other("/console/account/sessions")
}
