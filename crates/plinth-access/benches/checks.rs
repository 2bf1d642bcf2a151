//! In-process permission checks: `cargo bench -p plinth-access`.

use plinth_access::{PermissionSet, TenantRole};

fn main() {
    divan::main();
}

/// A check against a resolved permission set: what every guarded request does.
#[divan::bench]
fn role_check(bencher: divan::Bencher) {
    let set = TenantRole::Admin.permissions().union(TenantRole::Viewer.permissions());
    bencher.bench(|| divan::black_box(&set).contains(divan::black_box("members:invite")));
}

/// Resolving a member's roles into their permission set (once per request).
#[divan::bench]
fn resolve_roles(bencher: divan::Bencher) {
    let roles = [TenantRole::Member, TenantRole::Viewer];
    bencher.bench(|| {
        divan::black_box(&roles)
            .iter()
            .fold(PermissionSet::empty(), |set, role| set.union(role.permissions()))
    });
}

/// Twenty policy documents of the kinds tenants write: MFA and network conditions on
/// sensitive actions, office hours, ownership.
fn twenty_policies() -> plinth_access::TenantPolicies {
    let actions = [
        "members:invite",
        "members:update",
        "members:remove",
        "tenant:update",
        "tenant:export",
        "workspaces:delete",
        "roles:update",
        "audit:read",
        "workspaces:update",
        "tenant:delete",
    ];
    let mut documents = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        documents.push((
            format!("mfa-{i}"),
            format!(r#"forbid(principal, action == Plinth::Action::"{action}", resource) unless {{ context.mfa }};"#),
        ));
        documents.push((
            format!("network-{i}"),
            format!(
                r#"forbid(principal in Plinth::Role::"member", action == Plinth::Action::"{action}", resource)
                   unless {{ context.ip.isInRange(ip("10.0.0.0/8")) && context.hour >= 7 && context.hour < 20 }};"#
            ),
        ));
    }
    documents[19] = (
        "own-workspaces".to_owned(),
        r#"permit(principal, action == Plinth::Action::"workspaces:read", resource)
           when { resource has owner && resource.owner == principal };"#
            .to_owned(),
    );
    let compiled = plinth_access::TenantPolicies::compile(documents.iter().map(|(n, s)| (n.as_str(), s.as_str())));
    match compiled {
        Ok(policies) => policies,
        Err(e) => panic!("the benchmark's policies compile: {e}"),
    }
}

fn policy_request<'a>(roles: &'a [String], action: &'a str) -> plinth_access::PolicyRequest<'a> {
    plinth_access::PolicyRequest {
        principal: "0193a8e0-7c1a-7000-8000-000000000001",
        roles,
        action,
        resource: plinth_access::ResourceFacts {
            kind: "workspace",
            id: "w1",
            owner: Some("0193a8e0-7c1a-7000-8000-000000000001"),
            workspace: None,
        },
        mfa: true,
        ip: std::env::var("BENCH_NO_IP")
            .is_err()
            .then(|| std::net::IpAddr::from([10, 1, 2, 3])),
        now: time::OffsetDateTime::now_utc(),
    }
}

/// Cedar evaluation against a tenant's 20 policies, where a forbid's conditions are
/// evaluated and the permit scopes are consulted (the slowest path).
#[divan::bench]
fn cedar_twenty_policies_conditioned_action(bencher: divan::Bencher) {
    let policies = twenty_policies();
    let roles = vec!["member".to_owned()];
    let request = policy_request(&roles, "members:invite");
    bencher.bench(|| policies.evaluate(divan::black_box(&request)));
}

/// Cedar evaluation where the only matching policy is a permit (resource ownership).
#[divan::bench]
fn cedar_twenty_policies_permit(bencher: divan::Bencher) {
    let policies = twenty_policies();
    let roles = vec!["member".to_owned()];
    let request = policy_request(&roles, "workspaces:read");
    bencher.bench(|| policies.evaluate(divan::black_box(&request)));
}

/// A request for an action none of the 20 policies names: the index answers without Cedar.
#[divan::bench]
fn cedar_twenty_policies_unrelated_action(bencher: divan::Bencher) {
    let policies = twenty_policies();
    let roles = vec!["member".to_owned()];
    let request = policy_request(&roles, "members:read");
    bencher.bench(|| policies.evaluate(divan::black_box(&request)));
}
