//! Rules every route must follow, checked on the real route table.

use plinth_server::Access;
use plinth_testkit::TestDatabase;

use crate::support::TestApp;

#[tokio::test]
async fn every_tenant_route_declares_a_known_tenant_permission() {
    let app = TestApp::spawn(TestDatabase::sqlite()).await;
    for route in app.routes.iter() {
        let tenant_path = route.path.contains("{tenant}");
        match route.access {
            Access::Tenant(permission) => {
                assert!(
                    tenant_path,
                    "{} {} checks a tenant permission without a {{tenant}}",
                    route.method, route.path
                );
                assert!(
                    plinth_access::is_known(permission),
                    "{} {}: unknown permission {permission}",
                    route.method,
                    route.path
                );
            }
            _ => assert!(
                !tenant_path,
                "{} {} is under a tenant but not tenant-guarded",
                route.method, route.path
            ),
        }
    }
    app.stop().await;
}

/// A `TenantScope` is proof of membership; only the tenancy crate's authorisation (and
/// tenant creation, where the creator is the new owner) may construct one.
#[test]
fn only_tenant_authorisation_constructs_scopes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let allowed = [
        "crates/plinth-tenancy/src/authorize.rs",
        "crates/plinth-tenancy/src/service.rs",
        "crates/plinth-core/src/scope.rs",
    ];
    let mut offenders = Vec::new();
    let mut stack = vec![root.join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target") && !path.ends_with("tests") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("TenantScope::authorized(")
                    && !allowed.contains(&relative.as_str())
                {
                    offenders.push(relative);
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "TenantScope constructed outside tenant authorisation: {offenders:?}"
    );
}
