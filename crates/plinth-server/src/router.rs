//! Route registration. Every route is added through [`Routes`], which records its
//! method, path and access declaration in a [`RouteTable`]; tests walk that table
//! (OpenAPI coverage, malformed input on every body, permissions on every route).

use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::MethodRouter;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::state::AppState;

/// Who may call a route. Every route declares one; there is no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (health checks, sign-in, the setup flow, which its
    /// one-time token protects).
    Public,
    /// Any signed-in user, including one who must still verify their e-mail address or
    /// enrol a second factor: their own account, sessions and MFA enrolment.
    Account,
    /// A signed-in user with no pending restriction.
    User,
    /// A platform administrator (any platform role) with no pending restriction.
    PlatformAdmin,
    /// A platform administrator whose role operates tenants (super-admin, ops-admin,
    /// billing-admin; not support).
    PlatformOperator,
    /// An active member of the tenant named by the `{tenant}` path parameter whose roles
    /// grant this permission.
    Tenant(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// JSON API under `/api/v1`, documented in the OpenAPI spec.
    Api,
    /// Operational endpoints (health, metrics), documented too.
    Operations,
    /// Server-rendered HTML pages.
    Page,
}

#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    /// Template in OpenAPI form, e.g. `/api/v1/tenants/{id}`.
    pub path: String,
    pub access: Access,
    pub kind: RouteKind,
    /// Whether the route takes a JSON request body.
    pub json_body: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable(pub Vec<RouteInfo>);

impl RouteTable {
    pub fn iter(&self) -> impl Iterator<Item = &RouteInfo> {
        self.0.iter()
    }
}

pub struct Routes {
    state: AppState,
    router: OpenApiRouter<AppState>,
    table: RouteTable,
}

fn operations(item: &utoipa::openapi::PathItem) -> Vec<(Method, &Operation)> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
        (Method::HEAD, &item.head),
        (Method::OPTIONS, &item.options),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

/// Adds the error responses every route of its kind can give (where the route did not
/// describe them itself), so the document lists every status a client may see: the
/// extractors' 400/413/415/422, the guard's 401/403, and 404 for an unknown path
/// parameter.
fn document_standard_errors(operation: &mut Operation, access: Access, has_path_parameters: bool) {
    let mut standard = vec![(
        "400",
        "The request could not be read: bad syntax, a malformed parameter, or a NUL character",
    )];
    if operation.request_body.is_some() {
        standard.extend([
            ("413", "The request body is larger than the limit"),
            ("415", "The request body is not JSON"),
            ("422", "A value is invalid; `errors` points at each"),
        ]);
    }
    let has_query = operation.parameters.as_ref().is_some_and(|parameters| {
        parameters
            .iter()
            .any(|p| matches!(p, utoipa::openapi::RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Query))
    });
    if has_query {
        standard.push(("422", "A query parameter is invalid"));
    }
    if access != Access::Public {
        standard.extend([
            ("401", "No valid access token, API key or console session"),
            ("403", "The caller may not do this"),
        ]);
    }
    if has_path_parameters || matches!(access, Access::Tenant(_)) {
        standard.push(("404", "No such resource, or none the caller may see"));
    }
    for (status, description) in standard {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
}

fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDocument")))
                .build(),
        )
        .build()
        .into()
}

/// Handlers are named for what they do inside their module (`list`, `create`); an
/// operation id must be unique in the document, so it becomes `<tag>_<handler>`
/// (`workspaces_list`), which is also what generated clients name their methods.
fn qualify_operation_id(operation: &mut Operation) {
    let tag = operation
        .tags
        .as_ref()
        .and_then(|tags| tags.first())
        .map(|tag| tag.replace('-', "_"));
    if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
        *id = format!("{tag}_{id}");
    }
}

/// OpenAPI requires a description on every response; where a route gave none, the
/// status's reason phrase ("OK", "Not Found") is the honest minimum.
fn describe_every_response(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if let utoipa::openapi::RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response")
                .to_owned();
        }
    }
}

/// Every operation of a path item, to change.
fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

impl Routes {
    pub fn new(state: AppState, openapi: OpenApi) -> Self {
        Self {
            state,
            router: OpenApiRouter::with_openapi(openapi),
            table: RouteTable::default(),
        }
    }

    /// Adds documented routes (from `utoipa_axum::routes!`).
    /// Wraps `router` in the authentication guard its access level needs.
    fn guarded(
        &self,
        access: Access,
        kind: RouteKind,
        router: MethodRouter<AppState>,
    ) -> MethodRouter<AppState> {
        match access {
            Access::Public => router,
            _ => router.route_layer(from_fn_with_state(
                (self.state.clone(), access, kind),
                crate::auth::guard,
            )),
        }
    }

    pub fn documented(
        mut self,
        kind: RouteKind,
        access: Access,
        routes: UtoipaMethodRouter<AppState>,
    ) -> Self {
        let (schemas, mut paths, method_router) = routes;
        for (path, item) in paths.paths.iter_mut() {
            let has_path_parameters = path.contains('{');
            for operation in operations_mut(item) {
                if access != Access::Public {
                    // Documents the bearer requirement on each operation.
                    operation.security =
                        Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                            "bearer",
                            Vec::<String>::new(),
                        )]);
                }
                document_standard_errors(operation, access, has_path_parameters);
                describe_every_response(operation);
                qualify_operation_id(operation);
            }
        }
        let routes = (schemas, paths, self.guarded(access, kind, method_router));
        for (path, item) in routes.1.paths.iter() {
            for (method, operation) in operations(item) {
                self.table.0.push(RouteInfo {
                    method,
                    path: path.clone(),
                    access,
                    kind,
                    json_body: operation.request_body.is_some(),
                });
            }
        }
        self.router = self.router.routes(routes);
        self
    }

    /// Adds documented JSON API routes.
    pub fn api(self, access: Access, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.documented(RouteKind::Api, access, routes)
    }

    /// Adds documented public operational routes (health, metrics, well-known).
    pub fn operations(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.documented(RouteKind::Operations, Access::Public, routes)
    }

    /// Adds an HTML page route (not part of the API spec).
    pub fn page(
        mut self,
        access: Access,
        path: &str,
        methods: &[Method],
        router: MethodRouter<AppState>,
    ) -> Self {
        for method in methods {
            self.table.0.push(RouteInfo {
                method: method.clone(),
                path: path.to_owned(),
                access,
                kind: RouteKind::Page,
                json_body: false,
            });
        }
        let mut router = self.guarded(access, RouteKind::Page, router);
        if path.starts_with(crate::console::PREFIX) {
            // Outermost, so a forged form is refused before anything else runs.
            router = router.route_layer(axum::middleware::from_fn(crate::console::csrf::check));
        }
        self.router = self.router.route(path, router);
        self
    }

    pub fn finish(self) -> (axum::Router<AppState>, OpenApi, RouteTable) {
        let (router, openapi) = self.router.split_for_parts();
        (router, openapi, self.table)
    }
}
