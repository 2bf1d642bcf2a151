//! Route handlers, one module per resource.

pub mod assets;
pub mod health;
pub mod openapi;
pub mod setup;

use axum::http::Method;
use axum::routing::get;
use utoipa_axum::routes;

use crate::router::{Access, RouteKind, Routes};

pub fn register(routes: Routes) -> Routes {
    routes
        .documented(
            RouteKind::Operations,
            Access::Public,
            routes!(health::healthz),
        )
        .documented(
            RouteKind::Operations,
            Access::Public,
            routes!(health::readyz),
        )
        .documented(
            RouteKind::Operations,
            Access::Public,
            routes!(health::metrics),
        )
        .documented(RouteKind::Api, Access::Public, routes!(openapi::spec))
        .documented(
            RouteKind::Api,
            Access::Public,
            routes!(setup::api::create_super_admin),
        )
        .page(
            Access::Public,
            "/setup",
            &[Method::GET, Method::POST],
            get(setup::page::form).post(setup::page::submit),
        )
        .page(
            Access::Public,
            "/assets/{file}",
            &[Method::GET],
            get(assets::serve),
        )
}
