//! Every route that takes a JSON body, found by walking the route table, answers bad
//! bodies with a 4xx problem document: never a 500, never axum's plain-text rejection.
//! Every route refuses a NUL character (which PostgreSQL cannot store) in its path,
//! query and body with a 4xx, on both databases.

use plinth_identity::PlatformRole;
use plinth_server::RouteInfo;
use plinth_testkit::{TestDatabase, backend_tests};
use reqwest::header::CONTENT_TYPE;

use crate::support::{TestApp, assert_problem};

backend_tests!(
    every_json_route_rejects_bad_bodies_with_problems,
    every_route_refuses_a_nul_character_in_path_query_and_body,
);

const PASSWORD: &str = "a sufficiently long passphrase";

/// The route's path with its parameters filled: the sweeper's own tenant, user and the
/// default workspace, so every guard lets the request through to its body; other ids
/// are fresh.
fn concrete_path(route: &RouteInfo, user: &str) -> String {
    route
        .path
        .split('/')
        .map(|segment| match segment {
            "{tenant}" => "sweep".to_owned(),
            "{user}" => user.to_owned(),
            "{workspace}" => "general".to_owned(),
            s if s.starts_with('{') => uuid::Uuid::now_v7().to_string(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A verified platform administrator, owner of the tenant `sweep`: it passes every
/// guard, so each request reaches its extractors.
async fn sweeper(app: &TestApp) -> (plinth_core::UserId, String) {
    let sweeper = app
        .create_user(
            "sweeper@example.com",
            PASSWORD,
            true,
            &[PlatformRole::SuperAdmin],
        )
        .await;
    let token = app.login("sweeper@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_tenant(&token, "sweep").await;
    (sweeper, token)
}

async fn every_json_route_rejects_bad_bodies_with_problems(db: TestDatabase) {
    let limit = 4096;
    let app = TestApp::on(db)
        .with("body_limit_bytes", limit)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let (sweeper, token) = sweeper(&app).await;
    let json_routes: Vec<&RouteInfo> = app.routes.iter().filter(|r| r.json_body).collect();
    assert!(!json_routes.is_empty(), "no route takes a JSON body");
    for route in json_routes {
        let url = app.url(&concrete_path(route, &sweeper.to_string()));
        let send = |body: Vec<u8>, content_type: &'static str| {
            app.client
                .request(route.method.clone(), &url)
                .bearer_auth(&token)
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
        };

        let malformed = send(b"{\"unterminated".to_vec(), "application/json")
            .await
            .unwrap();
        assert_problem(malformed, 400, "malformed-request").await;

        let unknown = send(br#"{"__not_a_field__": 1}"#.to_vec(), "application/json")
            .await
            .unwrap();
        let body = assert_problem(unknown, 422, "validation-failed").await;
        assert_eq!(
            body["errors"][0]["pointer"], "/__not_a_field__",
            "{} {}",
            route.method, route.path
        );
        assert_eq!(body["errors"][0]["code"], "unknown_field");

        let wrong_type = send(b"[1, 2, 3]".to_vec(), "application/json")
            .await
            .unwrap();
        assert_problem(wrong_type, 422, "validation-failed").await;

        let mut oversized = b"{\"padding\": \"".to_vec();
        oversized.extend(std::iter::repeat_n(b'x', limit + 1));
        oversized.extend_from_slice(b"\"}");
        let too_large = send(oversized, "application/json").await.unwrap();
        assert_problem(too_large, 413, "payload-too-large").await;

        let wrong_media = send(br#"{"email": "a@example.com"}"#.to_vec(), "text/plain")
            .await
            .unwrap();
        assert_problem(wrong_media, 415, "unsupported-media-type").await;

        let no_type = app
            .client
            .request(route.method.clone(), &url)
            .bearer_auth(&token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_problem(no_type, 415, "unsupported-media-type").await;
    }
    app.stop().await;
}

async fn every_route_refuses_a_nul_character_in_path_query_and_body(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let (sweeper, token) = sweeper(&app).await;
    let mut probes = 0;
    for route in app.routes.iter() {
        let path = concrete_path(route, &sweeper.to_string());
        let mut urls = vec![format!("{path}?limit=10&probe=a%00b")];
        // Every parameter of the path in turn, authenticated or not.
        let segments: Vec<&str> = route.path.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            if segment.starts_with('{') {
                let mut concrete: Vec<String> = path.split('/').map(str::to_owned).collect();
                concrete[i] = format!("{}%00", concrete[i]);
                urls.push(concrete.join("/"));
            }
        }
        for url in urls {
            for bearer in [Some(token.as_str()), None] {
                let mut request = app.client.request(route.method.clone(), app.url(&url));
                if let Some(bearer) = bearer {
                    request = request.bearer_auth(bearer);
                }
                if route.json_body {
                    request = request.header(CONTENT_TYPE, "application/json").body("{}");
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                assert_eq!(status, 400, "{} {url}", route.method);
                assert_problem(response, 400, "malformed-request").await;
                probes += 1;
            }
        }
        if route.json_body {
            let response = app
                .client
                .request(route.method.clone(), app.url(&path))
                .bearer_auth(&token)
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"probe": "a\u0000b"}"#)
                .send()
                .await
                .unwrap();
            let body = assert_problem(response, 422, "validation-failed").await;
            assert_eq!(
                body["errors"][0]["pointer"], "/probe",
                "{} {}",
                route.method, route.path
            );
            assert_eq!(body["errors"][0]["code"], "nul_character");
            probes += 1;
        }
    }
    assert!(probes > 100, "only {probes} probes");
    // The reported cases, by name.
    for url in [
        "/api/v1/tenants/sweep%00/workspaces",
        "/api/v1/portals/x%00",
    ] {
        assert_problem(app.get(url).await, 400, "malformed-request").await;
    }
    let nul_name = app
        .post_as(
            "/api/v1/tenants/sweep/workspaces",
            &token,
            &serde_json::json!({"slug": "nul", "name": "a\u{0}b"}),
        )
        .await;
    let body = assert_problem(nul_name, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["pointer"], "/name");
    app.stop().await;
}
