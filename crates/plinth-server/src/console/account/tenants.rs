//! The tenants the user belongs to, with their roles, and the switch between them.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use plinth_core::{MAX_PAGE_LIMIT, PageRequest};
use plinth_tenancy::MyTenant;

use crate::console::{Shell, Visit};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    shell: Option<Shell>,
    tenants: Vec<MyTenant>,
}

pub async fn page(State(state): State<AppState>, visit: Visit) -> Result<Response, Problem> {
    let shell = visit.shell(&state, "tenants").await?;
    let tenants = state
        .tenancy
        .my_tenants(visit.me.user, &PageRequest::new(Some(MAX_PAGE_LIMIT), None))
        .await?
        .items;
    Ok(TenantsPage {
        shell: Some(shell),
        tenants,
    }
    .into_response())
}
