//! The signed-in user's own pages: the overview, profile and password, second factors
//! and passkeys, sessions, API keys and tenant memberships.

pub mod api_keys;
pub mod profile;
pub mod security;
pub mod tenants;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use plinth_core::{MAX_PAGE_LIMIT, PageRequest, SessionId};
use plinth_tenancy::MyTenant;
use serde::Deserialize;

use super::shell::when;
use super::{Shell, Visit, error_page, see_other, with_cookies};
use crate::extract::ApiPath;
use crate::problem::Problem;
use crate::state::AppState;

/// `?done=…` after a change: which confirmation to show. Only known words are shown,
/// so nothing from the address reaches the page.
#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    fn message(&self, known: &[(&str, &'static str)]) -> Option<&'static str> {
        let done = self.done.as_deref()?;
        known
            .iter()
            .find(|(key, _)| *key == done)
            .map(|(_, text)| *text)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    shell: Option<Shell>,
    restriction: Option<&'static str>,
    tenants: Vec<MyTenant>,
    second_factor: bool,
}

pub async fn overview(State(state): State<AppState>, visit: Visit) -> Result<Response, Problem> {
    let shell = visit.shell(&state, "overview").await?;
    let first_page = PageRequest::new(Some(MAX_PAGE_LIMIT), None);
    let tenants = state
        .tenancy
        .my_tenants(visit.me.user, &first_page)
        .await?
        .items;
    Ok(OverviewPage {
        shell: Some(shell),
        restriction: visit.me.restriction(state.config.require_admin_mfa),
        tenants,
        second_factor: visit.me.mfa_enrolled,
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

pub async fn sessions(State(state): State<AppState>, visit: Visit) -> Result<Response, Problem> {
    let shell = visit.shell(&state, "sessions").await?;
    let sessions = state
        .identity
        .my_sessions(&visit.me, &PageRequest::new(Some(MAX_PAGE_LIMIT), None))
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
    visit: Visit,
    ApiPath(id): ApiPath<SessionId>,
) -> Response {
    if let Err(e) = state
        .identity
        .revoke_my_session(&visit.me, id, &visit.context.client())
        .await
    {
        return error_page(e.into());
    }
    if id == visit.me.session {
        return with_cookies(see_other(super::SIGN_IN), [super::clear_session(&state)]);
    }
    see_other("/console/account/sessions")
}
