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
