//! Rules every route must follow, checked on the real route table.

use plinth_server::Access;
use plinth_testkit::TestDatabase;

use crate::support::{SELECTED_TENANT_ROUTES, TestApp};

#[tokio::test]
async fn every_tenant_route_declares_a_known_tenant_permission() {
    let app = TestApp::spawn(TestDatabase::sqlite()).await;
    for route in app.routes.iter() {
        let tenant_path = route.path.contains("{tenant}")
            || SELECTED_TENANT_ROUTES.contains(&route.path.as_str());
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
