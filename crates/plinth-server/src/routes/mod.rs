//! Route handlers, one module per resource, and the table that registers them. Each
//! route names its access level here, next to its path.

pub mod access;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod events;
pub mod flags;
pub mod health;
pub mod invitations;
pub mod me;
pub mod members;
pub mod openapi;
pub mod paging;
pub mod passkeys;
pub mod platform;
pub mod policies;
pub mod portals;
pub mod setup;
pub mod tenants;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use axum::http::Method;
use axum::routing::{get, post};
use utoipa_axum::routes;

use crate::console;
use crate::router::{Access, Routes};

pub fn register(routes: Routes) -> Routes {
    use Access::{Account, PlatformAdmin, PlatformOperator, Public, Tenant, User};
    routes
        // Operations
        .operations(routes!(health::healthz))
        .operations(routes!(health::readyz))
        .operations(routes!(health::metrics))
        .operations(routes!(auth::well_known::jwks))
        .operations(routes!(auth::well_known::openid_configuration))
        .api(Public, routes!(openapi::spec))
        // First run
        .api(Public, routes!(setup::api::create_super_admin))
        .page(
            Public,
            "/setup",
            &[Method::GET, Method::POST],
            get(setup::page::form).post(setup::page::submit),
        )
        .page(Public, "/assets/{file}", &[Method::GET], get(assets::serve))
        // Consoles
        .page(
            Public,
            console::SIGN_IN,
            &[Method::GET, Method::POST],
            get(console::sign_in::form).post(console::sign_in::submit),
        )
        .page(
            Public,
            "/console/sign-in/mfa",
            &[Method::POST],
            post(console::sign_in::submit_mfa),
        )
        .page(
            Account,
            "/console/sign-out",
            &[Method::POST],
            post(console::sign_in::sign_out),
        )
        .page(
            Public,
            "/console/sign-in/passkey/begin",
            &[Method::POST],
            // The API's own begin: a challenge is the same for a token or a cookie.
            post(passkeys::begin_sign_in),
        )
        .page(
            Public,
            "/console/sign-in/passkey/finish",
            &[Method::POST],
            post(console::sign_in::finish_passkey),
        )
        .page(
            Account,
            console::PREFIX,
            &[Method::GET],
            get(console::account::overview),
        )
        .page(
            Account,
            "/console/tenant",
            &[Method::POST],
            post(console::prefs::tenant),
        )
        .page(
            Account,
            "/console/theme",
            &[Method::POST],
            post(console::prefs::theme),
        )
        .page(
            Account,
            "/console/branding/{file}",
            &[Method::GET],
            get(console::prefs::branding),
        )
        .page(
            Account,
            "/console/account/profile",
            &[Method::GET, Method::POST],
            get(console::account::profile::page).post(console::account::profile::save_name),
        )
        .page(
            Account,
            "/console/account/password",
            &[Method::POST],
            post(console::account::profile::change_password),
        )
        .page(
            Account,
            "/console/account/security",
            &[Method::GET],
            get(console::account::security::page),
        )
        .page(
            Account,
            "/console/account/totp",
            &[Method::POST],
            post(console::account::security::begin_totp),
        )
        .page(
            Account,
            "/console/account/totp/confirm",
            &[Method::POST],
            post(console::account::security::confirm_totp),
        )
        .page(
            Account,
            "/console/account/totp/disable",
            &[Method::POST],
            post(console::account::security::disable_totp),
        )
        .page(
            Account,
            "/console/account/recovery-codes",
            &[Method::POST],
            post(console::account::security::recovery_codes),
        )
        .page(
            Account,
            "/console/account/passkeys/{id}/rename",
            &[Method::POST],
            post(console::account::security::rename_passkey),
        )
        .page(
            Account,
            "/console/account/passkeys/{id}/remove",
            &[Method::POST],
            post(console::account::security::remove_passkey),
        )
        .page(
            Account,
            "/console/account/sessions",
            &[Method::GET],
            get(console::account::sessions),
        )
        .page(
            Account,
            "/console/account/sessions/{id}/revoke",
            &[Method::POST],
            post(console::account::revoke),
        )
        .page(
            Account,
            "/console/account/api-keys",
            &[Method::GET, Method::POST],
            get(console::account::api_keys::page).post(console::account::api_keys::create),
        )
        .page(
            Account,
            "/console/account/api-keys/{id}/revoke",
            &[Method::POST],
            post(console::account::api_keys::revoke),
        )
        .page(
            Account,
            "/console/account/tenants",
            &[Method::GET],
            get(console::account::tenants::page),
        )
        .page(
            Account,
            "/console/views",
            &[Method::POST],
            post(console::views::save),
        )
        .page(
            Account,
            "/console/views/{id}/delete",
            &[Method::POST],
            post(console::views::delete),
        )
        .page(
            PlatformAdmin,
            "/console/platform/tenants",
            &[Method::GET],
            get(console::platform::tenants::page),
        )
        .page(
            Tenant("members:read"),
            "/console/t/{tenant}/members",
            &[Method::GET],
            get(console::tenant::members::page),
        )
        // Sign-in and tokens
        .api(Public, routes!(auth::credentials::login))
        .api(Public, routes!(auth::credentials::mfa))
        .api(Public, routes!(passkeys::begin_second_factor))
        .api(Public, routes!(passkeys::finish_second_factor))
        .api(Public, routes!(passkeys::begin_sign_in))
        .api(Public, routes!(passkeys::finish_sign_in))
        .api(Public, routes!(auth::credentials::refresh))
        .api(Account, routes!(auth::credentials::logout))
        .api(Account, routes!(auth::credentials::logout_all))
        .api(User, routes!(auth::credentials::introspect))
        // Self-service flows
        .api(Public, routes!(auth::flows::signup))
        .api(Public, routes!(auth::flows::verify_email))
        .api(Account, routes!(auth::flows::resend_verification))
        .api(Public, routes!(auth::flows::forgot_password))
        .api(Public, routes!(auth::flows::reset_password))
        // The caller's account
        .api(Account, routes!(me::get, me::update))
        .api(Account, routes!(me::change_password))
        .api(Account, routes!(me::sessions))
        .api(Account, routes!(me::revoke_session))
        .api(Account, routes!(me::mfa_status))
        .api(Account, routes!(me::begin_totp))
        .api(Account, routes!(me::confirm_totp))
        .api(Account, routes!(me::disable_totp))
        .api(Account, routes!(me::regenerate_recovery_codes))
        .api(Account, routes!(passkeys::list))
        .api(Account, routes!(passkeys::begin_registration))
        .api(Account, routes!(passkeys::finish_registration))
        .api(Account, routes!(passkeys::rename, passkeys::remove))
        .api(User, routes!(api_keys::create))
        .api(Account, routes!(api_keys::list))
        .api(Account, routes!(api_keys::revoke))
        // Platform administration
        .api(PlatformAdmin, routes!(users::revoke_sessions))
        .api(PlatformAdmin, routes!(users::unlock))
        .api(PlatformAdmin, routes!(tenants::list))
        .api(PlatformOperator, routes!(platform::suspend))
        .api(PlatformOperator, routes!(platform::reactivate))
        .api(PlatformOperator, routes!(platform::restore))
        // Tenants
        .api(User, routes!(tenants::create))
        .api(Account, routes!(tenants::mine))
        .api(User, routes!(tenants::select))
        .api(Tenant("tenant:read"), routes!(tenants::get))
        .api(Tenant("tenant:update"), routes!(tenants::update))
        .api(Tenant("tenant:delete"), routes!(tenants::delete))
        .api(Tenant("tenant:export"), routes!(tenants::export))
        .api(Tenant("audit:read"), routes!(audit::verify))
        .api(Tenant("audit:read"), routes!(audit::list))
        .api(PlatformAdmin, routes!(audit::platform_list))
        .api(Tenant("audit:read"), routes!(audit::export))
        .api(PlatformAdmin, routes!(audit::platform_export))
        .api(PlatformAdmin, routes!(audit::heads))
        .api(PlatformOperator, routes!(audit::sign_heads))
        .api(User, routes!(audit::actions))
        .api(User, routes!(events::types))
        .api(Tenant("events:read"), routes!(events::list))
        .api(Tenant("events:read"), routes!(events::stream))
        .api(
            Tenant("webhooks:manage"),
            routes!(webhooks::list, webhooks::create),
        )
        .api(
            Tenant("webhooks:manage"),
            routes!(webhooks::get, webhooks::update, webhooks::delete),
        )
        .api(Tenant("webhooks:manage"), routes!(webhooks::rotate_secret))
        .api(Tenant("webhooks:manage"), routes!(webhooks::send_test))
        .api(Tenant("webhooks:manage"), routes!(webhooks::deliveries))
        .api(Tenant("webhooks:manage"), routes!(webhooks::replay))
        .api(Tenant("members:read"), routes!(members::list))
        .api(Tenant("members:update"), routes!(members::update))
        .api(Tenant("members:remove"), routes!(members::remove))
        .api(Tenant("workspaces:read"), routes!(workspaces::list))
        .api(Tenant("workspaces:create"), routes!(workspaces::create))
        .api(Tenant("workspaces:read"), routes!(workspaces::get))
        .api(Tenant("workspaces:update"), routes!(workspaces::update))
        .api(Tenant("workspaces:delete"), routes!(workspaces::delete))
        .api(
            Tenant("members:invite"),
            routes!(invitations::create, invitations::list),
        )
        .api(Tenant("members:invite"), routes!(invitations::revoke))
        .api(Tenant("members:invite"), routes!(invitations::resend))
        .api(Account, routes!(invitations::accept))
        .api(Public, routes!(invitations::accept_new))
        // Portals and feature flags
        .api(Public, routes!(portals::public))
        .api(User, routes!(portals::enter))
        .api(Tenant("tenant:read"), routes!(portals::list))
        .api(Tenant("tenant:update"), routes!(portals::create))
        .api(Tenant("tenant:read"), routes!(portals::get))
        .api(Tenant("tenant:update"), routes!(portals::update))
        .api(Tenant("tenant:update"), routes!(portals::delete))
        .api(Account, routes!(flags::mine))
        .api(Tenant("tenant:read"), routes!(flags::resolved))
        .api(
            Tenant("tenant:update"),
            routes!(flags::set_tenant, flags::delete_tenant),
        )
        .api(
            Tenant("tenant:update"),
            routes!(flags::set_portal, flags::delete_portal),
        )
        .api(PlatformAdmin, routes!(flags::platform_list))
        .api(
            PlatformAdmin,
            routes!(flags::platform_set, flags::platform_delete),
        )
        // Access control
        .api(Account, routes!(access::catalog))
        .api(Tenant("roles:read"), routes!(access::roles))
        .api(Tenant("roles:update"), routes!(access::create_role))
        .api(
            Tenant("roles:update"),
            routes!(access::update_role, access::delete_role),
        )
        .api(Tenant("roles:read"), routes!(access::matrix))
        .api(Tenant("roles:update"), routes!(access::update_matrix))
        .api(Account, routes!(policies::schema))
        .api(Tenant("policies:read"), routes!(policies::list))
        .api(Tenant("policies:update"), routes!(policies::create))
        .api(Tenant("policies:read"), routes!(policies::validate))
        .api(Tenant("policies:read"), routes!(policies::get_one))
        .api(
            Tenant("policies:update"),
            routes!(policies::update, policies::delete),
        )
        .api(User, routes!(access::check))
        .api(User, routes!(access::check_batch))
        .api(User, routes!(access::mine))
}
