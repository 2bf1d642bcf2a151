//! The consoles' server-driven table. A list page names its columns, filters and presets
//! once (a [`TableSpec`]); the address carries the view (`q`, the filters, `sort`,
//! `cols`, `cursor`), the page asks its service for one page of rows sorted and filtered
//! there, and [`Table`] renders it: sortable headers, a filter bar, column choice, next
//! and first page, saved views, presets, and a CSV export of the whole view.

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;
use plinth_identity::SavedView;

/// Rows on one page of a table.
pub const PAGE_ROWS: u32 = 25;
/// Rows a CSV export holds at most; a bigger export is the API's job.
pub const CSV_MAX_ROWS: usize = 10_000;
const MAX_SEARCH: usize = 100;

pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    /// The API's sort key for this column, when it sorts.
    pub sort: Option<&'static str>,
}

pub struct Filter {
    pub key: &'static str,
    pub label: &'static str,
    /// (value, label); the empty value is "any".
    pub options: &'static [(&'static str, &'static str)],
}

impl Column {
    /// A column shown as it is.
    pub const fn plain(key: &'static str, label: &'static str) -> Column {
        Column {
            key,
            label,
            sort: None,
        }
    }

    /// A column the list's service sorts by `sort`.
    pub const fn sorted(key: &'static str, label: &'static str, sort: &'static str) -> Column {
        Column {
            key,
            label,
            sort: Some(sort),
        }
    }
}

/// A pinned view every user of the page gets.
pub struct Preset {
    pub label: &'static str,
    pub query: &'static str,
}

impl Preset {
    pub const fn new(label: &'static str, query: &'static str) -> Preset {
        Preset { label, query }
    }
}

pub struct TableSpec {
    /// The key saved views are kept under.
    pub page: &'static str,
    pub caption: &'static str,
    pub columns: &'static [Column],
    pub filters: &'static [Filter],
    pub presets: &'static [Preset],
    /// The API's sort key, and whether descending.
    pub default_sort: (&'static str, bool),
    /// What an empty table says (with no filter applied).
    pub empty: &'static str,
}

/// The view an address asks for, reduced to the spec's own fields: anything else in the
/// query is dropped, and a value no option has is ignored, so a saved or forged address
/// can never reach further than the form could.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub q: String,
    pub filters: BTreeMap<&'static str, &'static str>,
    /// The API's sort key of a sortable column, and whether descending.
    pub sort: (&'static str, bool),
    /// Visible columns, in the spec's order; all when none chosen.
    pub cols: Vec<&'static str>,
    pub cursor: Option<String>,
}

/// `key` or `-key`, as the address carries a sort.
fn sort_param((key, desc): (&str, bool)) -> String {
    if desc {
        format!("-{key}")
    } else {
        key.to_owned()
    }
}

fn descending(sort: &str) -> (&str, bool) {
    match sort.strip_prefix('-') {
        Some(key) => (key, true),
        None => (sort, false),
    }
}

impl View {
    pub fn parse(spec: &TableSpec, query: Option<&str>) -> View {
        let mut view = View {
            sort: spec.default_sort,
            ..View::default()
        };
        let mut cols = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "q" => view.q = value.trim().chars().take(MAX_SEARCH).collect(),
                "cursor" if !value.is_empty() => {
                    view.cursor = Some(value.chars().take(200).collect())
                }
                "sort" => {
                    let (key, desc) = descending(&value);
                    if let Some(column) = spec
                        .columns
                        .iter()
                        .find_map(|c| c.sort.filter(|s| *s == key))
                    {
                        view.sort = (column, desc);
                    }
                }
                "cols" => {
                    for key in value.split(',') {
                        if let Some(column) = spec.columns.iter().find(|c| c.key == key) {
                            cols.push(column.key);
                        }
                    }
                }
                other => {
                    if let Some(filter) = spec.filters.iter().find(|f| f.key == other)
                        && let Some((option, _)) = filter
                            .options
                            .iter()
                            .find(|(v, _)| *v == value && !v.is_empty())
                    {
                        view.filters.insert(filter.key, option);
                    }
                }
            }
        }
        view.cols = spec
            .columns
            .iter()
            .map(|c| c.key)
            .filter(|key| cols.is_empty() || cols.contains(key))
            .collect();
        view
    }

    /// The view as a query string (without the cursor unless `cursor` is given); the
    /// default sort and a full column set are left out.
    pub fn to_query(&self, spec: &TableSpec, cursor: Option<&str>) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            out.append_pair("q", &self.q);
        }
        for (key, value) in &self.filters {
            out.append_pair(key, value);
        }
        if self.sort != spec.default_sort {
            out.append_pair("sort", &sort_param(self.sort));
        }
        if self.cols.len() != spec.columns.len() {
            out.append_pair("cols", &self.cols.join(","));
        }
        if let Some(cursor) = cursor {
            out.append_pair("cursor", cursor);
        }
        out.finish()
    }

    pub fn filter(&self, key: &str) -> Option<&'static str> {
        self.filters.get(key).copied()
    }

    fn is_filtered(&self) -> bool {
        !self.q.is_empty() || !self.filters.is_empty()
    }
}

pub struct HeaderCell {
    pub label: &'static str,
    pub href: Option<String>,
    /// `ascending` or `descending` on the sorted column.
    pub aria_sort: Option<&'static str>,
}

pub struct FilterField {
    pub key: &'static str,
    pub label: &'static str,
    pub options: Vec<(&'static str, &'static str, bool)>,
}

pub struct ColumnChoice {
    pub key: &'static str,
    pub label: &'static str,
    pub shown: bool,
}

pub struct ViewLink {
    pub id: Option<uuid::Uuid>,
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// One page of a table, ready for `console/parts/table.html`.
pub struct Table {
    pub page: &'static str,
    pub caption: &'static str,
    pub path: String,
    pub q: String,
    /// The view's sort when not the default, so the filter form keeps it.
    pub sort: Option<String>,
    pub headers: Vec<HeaderCell>,
    pub rows: Vec<Vec<String>>,
    pub filters: Vec<FilterField>,
    pub columns: Vec<ColumnChoice>,
    pub next: Option<String>,
    pub first: Option<String>,
    pub csv: String,
    /// The view's query string, for saving it.
    pub query: String,
    pub presets: Vec<ViewLink>,
    pub views: Vec<ViewLink>,
    pub empty: &'static str,
    pub filtered: bool,
}

fn href(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

impl Table {
    /// Renders `items` (one page, as the service sorted and filtered it) for `view`.
    pub fn new<T>(
        spec: &'static TableSpec,
        view: &View,
        path: &str,
        items: &[T],
        cell: impl Fn(&T, &str) -> String,
        next_cursor: Option<&str>,
        saved: Vec<SavedView>,
    ) -> Table {
        let query = view.to_query(spec, None);
        let (sorted_key, desc) = view.sort;
        let headers = spec
            .columns
            .iter()
            .filter(|c| view.cols.contains(&c.key))
            .map(|c| {
                let Some(sort) = c.sort else {
                    return HeaderCell {
                        label: c.label,
                        href: None,
                        aria_sort: None,
                    };
                };
                let current = sort == sorted_key;
                // A click on the sorted column turns it around; on another, sorts by it.
                let next_sort = (sort, current && !desc);
                let toggled = View {
                    sort: next_sort,
                    cursor: None,
                    ..view.clone()
                };
                HeaderCell {
                    label: c.label,
                    href: Some(href(path, &toggled.to_query(spec, None))),
                    aria_sort: current.then_some(if desc { "descending" } else { "ascending" }),
                }
            })
            .collect();
        let rows = items
            .iter()
            .map(|item| view.cols.iter().map(|key| cell(item, key)).collect())
            .collect();
        let link = |label: String, id: Option<uuid::Uuid>, target: &str| {
            let target_view = View::parse(spec, Some(target));
            ViewLink {
                id,
                label,
                href: href(path, &target_view.to_query(spec, None)),
                current: target_view
                    == View {
                        cursor: None,
                        ..view.clone()
                    },
            }
        };
        Table {
            page: spec.page,
            caption: spec.caption,
            path: path.to_owned(),
            q: view.q.clone(),
            sort: (view.sort != spec.default_sort).then(|| sort_param(view.sort)),
            headers,
            rows,
            filters: spec
                .filters
                .iter()
                .map(|f| FilterField {
                    key: f.key,
                    label: f.label,
                    options: f
                        .options
                        .iter()
                        .map(|(value, label)| {
                            (
                                *value,
                                *label,
                                view.filter(f.key).unwrap_or_default() == *value,
                            )
                        })
                        .collect(),
                })
                .collect(),
            columns: spec
                .columns
                .iter()
                .map(|c| ColumnChoice {
                    key: c.key,
                    label: c.label,
                    shown: view.cols.contains(&c.key),
                })
                .collect(),
            next: next_cursor.map(|cursor| href(path, &view.to_query(spec, Some(cursor)))),
            first: view.cursor.is_some().then(|| href(path, &query)),
            csv: {
                let with_format = if query.is_empty() {
                    "format=csv".to_owned()
                } else {
                    format!("{query}&format=csv")
                };
                href(path, &with_format)
            },
            presets: spec
                .presets
                .iter()
                .map(|p| link(p.label.to_owned(), None, p.query))
                .collect(),
            views: saved
                .into_iter()
                .map(|v| link(v.name, Some(v.id), &v.query))
                .collect(),
            query,
            empty: spec.empty,
            filtered: view.is_filtered(),
        }
    }
}

/// The view's rows as CSV (RFC 4180), the visible columns in order. A cell that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) is prefixed with `'`.
pub fn csv<T>(
    spec: &TableSpec,
    view: &View,
    items: &[T],
    cell: impl Fn(&T, &str) -> String,
) -> String {
    let mut out = String::new();
    let labels: Vec<String> = spec
        .columns
        .iter()
        .filter(|c| view.cols.contains(&c.key))
        .map(|c| c.label.to_owned())
        .collect();
    push_record(&mut out, &labels);
    for item in items {
        let cells: Vec<String> = view.cols.iter().map(|key| cell(item, key)).collect();
        push_record(&mut out, &cells);
    }
    out
}

fn push_record(out: &mut String, cells: &[String]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let guarded = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{cell}")
        } else {
            cell.clone()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
}

/// A page that is one table under a heading (members, the platform's tenants, …).
#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "console/table_page.html")]
pub struct TablePage {
    pub shell: Option<super::Shell>,
    pub title: String,
    pub table: Table,
    /// The list could not be read (a stale cursor, say): said above the table.
    pub error: Option<String>,
}

/// One page of rows for a table, or why it could not be read.
pub struct Rows<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    /// The error state: the reason the list could not be read (a stale cursor, say).
    pub error: Option<String>,
}

impl<T> Rows<T> {
    /// The service's answer as rows; a refusal becomes the page's error state, while a
    /// failure of the server stays an error.
    pub fn of<E: Into<Problem>>(
        result: Result<plinth_core::Page<T>, E>,
    ) -> Result<Rows<T>, Problem> {
        match result {
            Ok(found) => Ok(Rows {
                items: found.items,
                next: found.next_cursor,
                error: None,
            }),
            Err(e) => {
                let problem = e.into();
                if problem.kind.status().is_server_error() {
                    return Err(problem);
                }
                Ok(Rows {
                    items: Vec::new(),
                    next: None,
                    error: Some(format!("This list could not be read: {}", problem.detail)),
                })
            }
        }
    }
}

/// Every row of the view, page by page through `fetch` (the list's own service call), up
/// to [`CSV_MAX_ROWS`]: what an export holds.
pub async fn every_row<T, E, F, Fut>(mut fetch: F) -> Result<Vec<T>, Problem>
where
    E: Into<Problem>,
    F: FnMut(plinth_core::PageRequest) -> Fut,
    Fut: Future<Output = Result<plinth_core::Page<T>, E>>,
{
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = page_of(Some(plinth_core::MAX_PAGE_LIMIT), cursor.as_deref())?;
        let found = fetch(page).await.map_err(Into::into)?;
        all.extend(found.items);
        match found.next_cursor {
            Some(next) if all.len() < CSV_MAX_ROWS => cursor = Some(next),
            _ => break,
        }
    }
    all.truncate(CSV_MAX_ROWS);
    Ok(all)
}

/// One page of a view: its cursor is the opaque one the list handed out (as the API's).
pub fn page_of(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<plinth_core::PageRequest, Problem> {
    crate::routes::paging::page_request(limit, cursor)
}

/// Whether the address asks for the view as CSV (`format=csv`).
pub fn wants_csv(query: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(name, value)| name == "format" && value == "csv")
}

/// The view's rows as a CSV download named after the table and the day.
pub fn csv_response<T>(
    spec: &TableSpec,
    view: &View,
    items: &[T],
    cell: impl Fn(&T, &str) -> String,
) -> Response {
    let today = plinth_core::Timestamp::now().as_datetime().date();
    let disposition = format!("attachment; filename=\"{}-{today}.csv\"", spec.page);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv(spec, view, items, cell),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: TableSpec = TableSpec {
        page: "things",
        caption: "Things",
        columns: &[
            Column::sorted("name", "Name", "name"),
            Column::plain("size", "Size"),
            Column::sorted("made", "Made", "made_at"),
        ],
        filters: &[Filter {
            key: "kind",
            label: "Kind",
            options: &[("", "Any"), ("big", "Big"), ("small", "Small")],
        }],
        presets: &[Preset::new("Big", "kind=big")],
        default_sort: ("name", false),
        empty: "Nothing.",
    };

    #[test]
    fn a_view_keeps_only_the_tables_own_fields_and_options() {
        let view = View::parse(
            &SPEC,
            Some("kind=huge&q=%20lamp%20&sort=-size&cols=made,nope&evil=1&cursor=abc"),
        );
        assert_eq!(view.q, "lamp");
        assert!(
            view.filters.is_empty(),
            "an option the filter lacks is ignored"
        );
        assert_eq!(view.sort, ("name", false), "only sortable columns sort");
        assert_eq!(view.cols, ["made"]);
        assert_eq!(view.cursor.as_deref(), Some("abc"));
        assert_eq!(view.to_query(&SPEC, None), "q=lamp&cols=made");

        let sorted = View::parse(&SPEC, Some("kind=big&sort=-made_at"));
        assert_eq!(sorted.sort, ("made_at", true));
        assert_eq!(
            View::parse(&SPEC, Some(&sorted.to_query(&SPEC, None))),
            sorted
        );
    }

    #[test]
    fn headers_turn_the_sort_around_and_pages_keep_the_view() {
        let view = View::parse(&SPEC, Some("kind=big&cursor=c1"));
        let rows = [("lamp", 3), ("desk", 9)];
        let table = Table::new(
            &SPEC,
            &view,
            "/console/things",
            &rows,
            |row, key| match key {
                "name" => row.0.to_owned(),
                "size" => row.1.to_string(),
                _ => String::new(),
            },
            Some("c2"),
            Vec::new(),
        );
        assert_eq!(table.headers[0].aria_sort, Some("ascending"));
        assert_eq!(
            table.headers[0].href.as_deref(),
            Some("/console/things?kind=big&sort=-name"),
            "the sorted column turns around, back to the first page"
        );
        assert_eq!(table.headers[1].href, None, "size does not sort");
        assert_eq!(
            table.headers[2].href.as_deref(),
            Some("/console/things?kind=big&sort=made_at")
        );
        assert_eq!(
            table.next.as_deref(),
            Some("/console/things?kind=big&cursor=c2")
        );
        assert_eq!(table.first.as_deref(), Some("/console/things?kind=big"));
        assert_eq!(table.csv, "/console/things?kind=big&format=csv");
        assert!(table.presets[0].current, "the preset's filter is the view");
        assert_eq!(table.rows, [["lamp", "3", ""], ["desk", "9", ""]]);
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let view = View::parse(&SPEC, Some("cols=name,size"));
        let rows = [("=HYPERLINK(\"http://x\")", "a, b"), ("plain", "-3")];
        let text = csv(&SPEC, &view, &rows, |row, key| match key {
            "name" => row.0.to_owned(),
            _ => row.1.to_owned(),
        });
        assert_eq!(
            text,
            "Name,Size\r\n\"'=HYPERLINK(\"\"http://x\"\")\",\"a, b\"\r\nplain,'-3\r\n"
        );
    }
}
