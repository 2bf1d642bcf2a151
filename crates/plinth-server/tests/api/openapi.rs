use std::collections::BTreeSet;

use plinth_server::RouteKind;
use plinth_testkit::{TestDatabase, backend_tests};

use crate::support::TestApp;

backend_tests!(the_spec_is_openapi_3_1_and_lists_every_api_route);

async fn the_spec_is_openapi_3_1_and_lists_every_api_route(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "version {}", spec.openapi);

    let documented: BTreeSet<(String, String)> = spec
        .paths
        .iter()
        .flatten()
        .flat_map(|(path, item)| {
            item.methods()
                .into_iter()
                .map(move |(method, _)| (method.as_str().to_owned(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = app
        .routes
        .iter()
        .filter(|r| r.kind != RouteKind::Page)
        .map(|r| (r.method.as_str().to_owned(), r.path.clone()))
        .collect();
    assert!(!served.is_empty());
    assert_eq!(documented, served, "the spec and the router disagree");
    for route in app.routes.iter().filter(|r| r.kind == RouteKind::Api) {
        assert!(
            route.path.starts_with("/api/v1/"),
            "{} is not under /api/v1",
            route.path
        );
    }
    app.stop().await;
}
