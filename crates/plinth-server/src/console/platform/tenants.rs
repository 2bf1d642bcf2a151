//! Every tenant of the installation, newest first, through the server-driven table.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use plinth_tenancy::{Tenant, TenantStatus};

use crate::console::Visit;
use crate::console::shell::when;
use crate::console::table::{self, Column, Filter, Preset, Table, TablePage, TableSpec, View};
use crate::problem::Problem;
use crate::state::AppState;

pub static TENANTS: TableSpec = TableSpec {
    page: "platform-tenants",
    caption: "Tenants",
    columns: &[
        Column::plain("name", "Name"),
        Column::plain("slug", "Slug"),
        Column::plain("status", "Status"),
        Column::plain("trial", "Trial ends"),
        Column::plain("created", "Created"),
    ],
    filters: &[Filter {
        key: "status",
        label: "Status",
        options: &[
            ("", "Any status"),
            ("trial", "Trial"),
            ("active", "Active"),
            ("suspended", "Suspended"),
            ("expired", "Expired"),
            ("pending_deletion", "Pending deletion"),
        ],
    }],
    presets: &[
        Preset::new("On trial", "status=trial"),
        Preset::new("Suspended", "status=suspended"),
    ],
    // Newest first, as the service lists them; no column sorts otherwise.
    default_sort: ("created", true),
    empty: "No tenants yet.",
};

fn cell(tenant: &Tenant, key: &str) -> String {
    match key {
        "name" => tenant.name.clone(),
        "slug" => tenant.slug.clone(),
        "status" => tenant.status.as_str().to_owned(),
        "trial" => tenant.trial_ends_at.map(when).unwrap_or_default(),
        "created" => when(tenant.created_at),
        _ => String::new(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    visit: Visit,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let view = View::parse(&TENANTS, query.as_deref());
    let status = view.filter("status").and_then(TenantStatus::parse);
    let search = (!view.q.is_empty()).then_some(view.q.as_str());
    let tenancy = &state.tenancy;
    if table::wants_csv(query.as_deref()) {
        let all =
            table::every_row(
                |page| async move { tenancy.all_tenants(status, search, &page).await },
            )
            .await?;
        return Ok(table::csv_response(&TENANTS, &view, &all, cell));
    }
    let shell = visit.shell(&state, "platform-tenants").await?;
    let saved = state.identity.saved_views(&visit.me, TENANTS.page).await?;
    let rows = table::Rows::of(
        async {
            let page = table::page_of(Some(table::PAGE_ROWS), view.cursor.as_deref())?;
            Ok::<_, Problem>(tenancy.all_tenants(status, search, &page).await?)
        }
        .await,
    )?;
    let path = "/console/platform/tenants";
    let table = Table::new(
        &TENANTS,
        &view,
        path,
        &rows.items,
        cell,
        rows.next.as_deref(),
        saved,
    );
    Ok(TablePage {
        shell: Some(shell),
        title: "Tenants".to_owned(),
        table,
        error: rows.error,
    }
    .into_response())
}
