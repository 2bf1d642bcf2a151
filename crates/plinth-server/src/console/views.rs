//! Saving and deleting a table's views. A view is kept as the table's own fields only
//! (the spec reduces it), so a saved view reaches no further than the page's form.

use axum::extract::State;
use axum::response::Response;
use plinth_core::FieldErrors;
use serde::Deserialize;

use super::platform::tenants::TENANTS;
use super::table::{TableSpec, View};
use super::tenant::members::MEMBERS;
use super::{Visit, error_page, safe_next, see_other};
use crate::extract::{ApiForm, ApiPath};
use crate::problem::Problem;
use crate::state::AppState;

/// Every table whose views can be saved.
static TABLES: &[&TableSpec] = &[&MEMBERS, &TENANTS];

#[derive(Deserialize)]
pub struct SaveForm {
    page: String,
    name: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn save(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<SaveForm>,
) -> Response {
    let Some(spec) = TABLES.iter().find(|t| t.page == form.page) else {
        return error_page(Problem::validation(FieldErrors::single(
            "page",
            "invalid_value",
            "no such table",
        )));
    };
    let query = View::parse(spec, Some(&form.query)).to_query(spec, None);
    if let Err(e) = state
        .identity
        .save_view(&visit.me, spec.page, &form.name, &query)
        .await
    {
        return error_page(e.into());
    }
    let next = safe_next(form.next.as_deref());
    if query.is_empty() {
        see_other(&next)
    } else {
        see_other(&format!("{next}?{query}"))
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    next: Option<String>,
}

pub async fn delete(
    State(state): State<AppState>,
    visit: Visit,
    ApiPath(id): ApiPath<uuid::Uuid>,
    ApiForm(form): ApiForm<DeleteForm>,
) -> Response {
    match state.identity.delete_view(&visit.me, id).await {
        Ok(()) => see_other(&safe_next(form.next.as_deref())),
        Err(e) => error_page(e.into()),
    }
}
