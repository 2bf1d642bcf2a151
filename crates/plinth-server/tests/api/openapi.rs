//! The served OpenAPI document: valid OpenAPI 3.1 (our parser and, where installed, the
//! independent `openapi-spec-validator`), complete (every API route, nothing else),
//! parameters where they really are, and snapshotted so any change to the API shows in
//! review.

use std::collections::BTreeSet;

use plinth_server::RouteKind;
use plinth_testkit::{TestDatabase, backend_tests};

use crate::support::TestApp;

backend_tests!(the_spec_is_openapi_3_1_and_lists_every_api_route);

/// Every route the README's "API at a glance" names exists: shorthand paths are under
/// `/api/v1`; entries with an ellipsis or optional parts are prose, not paths.
#[tokio::test]
async fn the_readme_names_only_routes_that_exist() {
    let app = TestApp::spawn(TestDatabase::sqlite()).await;
    let served: BTreeSet<String> = app.routes.iter().map(|r| r.path.clone()).collect();
    app.stop().await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## API at a glance")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has an API section");
    let mut named = 0;
    for row in section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| area"))
    {
        for (i, span) in row.split('`').enumerate() {
            // Odd pieces are inside backticks.
            let Some(path) = (i % 2 == 1)
                .then(|| span.split_whitespace().last())
                .flatten()
            else {
                continue;
            };
            if !path.starts_with('/') || path.contains('…') || path.contains('[') {
                continue;
            }
            let path = path.split('?').next().unwrap_or(path);
            let full = if ["/api/", "/.well-known/", "/console"]
                .iter()
                .any(|p| path.starts_with(p))
            {
                path.to_owned()
            } else {
                format!("/api/v1{path}")
            };
            assert!(
                served.contains(&full),
                "the README names {full}, which is not a route"
            );
            named += 1;
        }
    }
    assert!(named > 60, "only {named} routes named");
}

#[tokio::test]
async fn the_spec_passes_an_independent_validator_and_matches_its_snapshot() {
    let app = TestApp::spawn(TestDatabase::sqlite()).await;
    let text = app.get("/api/v1/openapi.json").await.text().await.unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    app.stop().await;
    validate_independently(&text);
    // The version changes with every release; the API itself is what reviewers read.
    spec["info"]["version"] = "(version)".into();
    insta::assert_json_snapshot!("openapi", spec);
}

/// Runs `openapi-spec-validator` (PyPI) on the document. CI installs it, so there a
/// missing validator fails; elsewhere the check is skipped with a note.
fn validate_independently(text: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    match std::process::Command::new("openapi-spec-validator")
        .arg(file.path())
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "openapi-spec-validator refused the document:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("openapi-spec-validator is not installed on CI: {e}")
        }
        Err(_) => eprintln!(
            "skipped: openapi-spec-validator not installed (pip install openapi-spec-validator)"
        ),
    }
}

/// The `{name}`s of a path template.
fn template_names(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

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

    // Path parameters are exactly the template's names; everything else is a query
    // parameter (a query parameter declared `in: path` breaks generated clients).
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (path, item) in raw["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let declared: BTreeSet<String> = operation["parameters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                declared,
                template_names(path),
                "{method} {path}: path parameters differ from the template"
            );
        }
    }
    app.stop().await;
}
