//! The tenant's members, through the server-driven table: searched, filtered by role and
//! status, sorted and paged by the members service, exported as CSV.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use plinth_tenancy::{MemberFilter, MemberSort, MemberView};

use crate::auth::InTenant;
use crate::console::Visit;
use crate::console::shell::when;
use crate::console::table::{self, Column, Filter, Preset, Table, TablePage, TableSpec, View};
use crate::problem::Problem;
use crate::state::AppState;

pub static MEMBERS: TableSpec = TableSpec {
    page: "members",
    caption: "Members",
    columns: &[
        Column::plain("name", "Name"),
        Column::sorted("email", "E-mail", "email"),
        Column::plain("roles", "Roles"),
        Column::plain("status", "Status"),
        Column::sorted("joined", "Joined", "joined_at"),
    ],
    filters: &[
        Filter {
            key: "role",
            label: "Role",
            options: &[
                ("", "Any role"),
                ("owner", "Owner"),
                ("admin", "Admin"),
                ("member", "Member"),
                ("viewer", "Viewer"),
            ],
        },
        Filter {
            key: "status",
            label: "Status",
            options: &[
                ("", "Any status"),
                ("active", "Active"),
                ("suspended", "Suspended"),
            ],
        },
    ],
    presets: &[
        Preset::new("Administrators", "role=admin"),
        Preset::new("Suspended", "status=suspended"),
        Preset::new("Newest first", "sort=-joined_at"),
    ],
    default_sort: ("email", false),
    empty: "No members yet.",
};

fn cell(member: &MemberView, key: &str) -> String {
    match key {
        "name" => member.display_name.clone(),
        "email" => member.email.clone(),
        "roles" => member.roles.join(", "),
        "status" => member.status.clone(),
        "joined" => when(member.joined_at),
        _ => String::new(),
    }
}

fn filter_of(view: &View) -> MemberFilter {
    MemberFilter {
        query: (!view.q.is_empty()).then(|| view.q.clone()),
        role: view.filter("role").map(str::to_owned),
        status: view.filter("status").map(str::to_owned),
        sort: match view.sort {
            ("joined_at", false) => MemberSort::JoinedAsc,
            ("joined_at", true) => MemberSort::JoinedDesc,
            (_, true) => MemberSort::EmailDesc,
            _ => MemberSort::EmailAsc,
        },
    }
}

pub async fn page(
    State(state): State<AppState>,
    visit: Visit,
    InTenant(ctx): InTenant,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let view = View::parse(&MEMBERS, query.as_deref());
    let filter = filter_of(&view);
    if table::wants_csv(query.as_deref()) {
        let (tenancy, scope, filter) = (&state.tenancy, &ctx.scope, &filter);
        let all =
            table::every_row(
                |page| async move { tenancy.list_members(scope, filter, &page).await },
            )
            .await?;
        return Ok(table::csv_response(&MEMBERS, &view, &all, cell));
    }
    let shell = visit.shell(&state, "members").await?;
    let saved = state.identity.saved_views(&visit.me, MEMBERS.page).await?;
    let rows = table::Rows::of(
        async {
            let page = table::page_of(Some(table::PAGE_ROWS), view.cursor.as_deref())?;
            Ok::<_, Problem>(
                state
                    .tenancy
                    .list_members(&ctx.scope, &filter, &page)
                    .await?,
            )
        }
        .await,
    )?;
    let path = format!("/console/t/{}/members", ctx.tenant_slug);
    let table = Table::new(
        &MEMBERS,
        &view,
        &path,
        &rows.items,
        cell,
        rows.next.as_deref(),
        saved,
    );
    let tenant_name = shell
        .tenant
        .as_ref()
        .map_or_else(|| ctx.tenant_slug.clone(), |t| t.name.clone());
    Ok(TablePage {
        shell: Some(shell),
        title: format!("Members of {tenant_name}"),
        table,
        error: rows.error,
    }
    .into_response())
}
