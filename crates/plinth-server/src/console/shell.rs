//! The frame around every signed-in page: who is signed in, the tenant they work in
//! (with its branding), the navigation their roles open, and their theme.

use axum::http::HeaderMap;
use plinth_access::PermissionSet;
use plinth_core::{PageRequest, TenantId, Timestamp};

use super::{Visit, csrf};
use crate::cookies;
use crate::problem::Problem;
use crate::state::AppState;

/// The switcher lists this many tenants; someone in more picks the rest on the tenants page.
const SWITCHER_TENANTS: u32 = 50;

/// The theme chosen in this browser; without a choice the system's applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn parse(value: &str) -> Option<Theme> {
        match value {
            "system" => Some(Theme::System),
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn of(headers: &HeaderMap) -> Theme {
        cookies::read(headers, cookies::THEME)
            .and_then(|value| Theme::parse(&value))
            .unwrap_or(Theme::System)
    }
}

pub struct TenantChoice {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
}

/// The tenant the console works in, as the header shows it.
pub struct SelectedTenant {
    pub slug: String,
    pub name: String,
    pub logo_url: Option<String>,
    /// Whether the tenant set colours (served as its own stylesheet).
    pub branded: bool,
}

pub struct NavEntry {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
}

pub struct NavSection {
    pub title: String,
    pub entries: Vec<NavEntry>,
}

pub struct Shell {
    pub name: String,
    pub email: String,
    pub csrf: String,
    /// The navigation entry of this page.
    pub current: &'static str,
    /// This page's path, to come back to after switching tenant or theme.
    pub path: String,
    pub theme: Theme,
    pub tenants: Vec<TenantChoice>,
    pub tenant: Option<SelectedTenant>,
    /// What the caller may do in the selected tenant (empty without one).
    pub permissions: PermissionSet,
    pub sections: Vec<NavSection>,
}

fn entry(key: &'static str, label: &'static str, href: &str) -> NavEntry {
    NavEntry {
        key,
        label,
        href: href.to_owned(),
    }
}

impl Shell {
    pub async fn new(
        state: &AppState,
        visit: &Visit,
        current: &'static str,
    ) -> Result<Shell, Problem> {
        let (principal, headers, path) = (&visit.me, &visit.headers, visit.path.as_str());
        let (user, _) = state.identity.me(principal).await?;
        let mine = state
            .tenancy
            .my_tenants(
                principal.user,
                &PageRequest::new(Some(SWITCHER_TENANTS), None),
            )
            .await?
            .items;
        // The tenant of the page's own address (`/console/t/<tenant>/…`), else the one
        // chosen in this browser while the user is still a member of it; one membership
        // needs no choosing.
        let chosen = path
            .strip_prefix("/console/t/")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
            .or_else(|| cookies::read(headers, cookies::TENANT));
        let selected = match (chosen, mine.as_slice()) {
            (Some(slug), _) if mine.iter().any(|t| t.slug == slug) => Some(slug),
            (_, [only]) => Some(only.slug.clone()),
            _ => None,
        };
        let mut tenant = None;
        let mut permissions = PermissionSet::default();
        if let Some(slug) = selected {
            // Suspended tenants and revoked roles refuse here exactly as the API does; the
            // console then shows the account pages only.
            if let Ok(ctx) = visit.membership(state, &slug).await {
                let found = state.tenancy.tenant(&ctx.scope).await?;
                permissions = ctx.permissions;
                tenant = Some(SelectedTenant {
                    slug: found.slug,
                    name: found.name,
                    logo_url: found.branding.logo_url,
                    branded: found.branding.primary_color.is_some()
                        || found.branding.accent_color.is_some(),
                });
            }
        }
        let mut sections = vec![NavSection {
            title: "Your account".to_owned(),
            entries: vec![
                entry("overview", "Overview", "/console"),
                entry(
                    "profile",
                    "Profile and password",
                    "/console/account/profile",
                ),
                entry(
                    "security",
                    "Two-step and passkeys",
                    "/console/account/security",
                ),
                entry("sessions", "Sessions", "/console/account/sessions"),
                entry("api-keys", "API keys", "/console/account/api-keys"),
                entry("tenants", "Tenants", "/console/account/tenants"),
            ],
        }];
        if let Some(selected) = &tenant {
            // Only the pages this member may use; each page's guard checks again.
            let entries: Vec<NavEntry> = [("members", "Members", "members:read")]
                .into_iter()
                .filter(|(_, _, permission)| permissions.contains(permission))
                .map(|(key, label, _)| NavEntry {
                    key,
                    label,
                    href: format!("/console/t/{}/{key}", selected.slug),
                })
                .collect();
            if !entries.is_empty() {
                sections.push(NavSection {
                    title: selected.name.clone(),
                    entries,
                });
            }
        }
        if principal.platform_admin {
            sections.push(NavSection {
                title: "Platform".to_owned(),
                entries: vec![entry(
                    "platform-tenants",
                    "Tenants",
                    "/console/platform/tenants",
                )],
            });
        }
        Ok(Shell {
            name: user.display_name,
            email: user.email,
            csrf: csrf::token_of(headers).unwrap_or_default(),
            current,
            path: path.to_owned(),
            theme: Theme::of(headers),
            tenants: mine
                .into_iter()
                .map(|t| TenantChoice {
                    id: t.id,
                    slug: t.slug,
                    name: t.name,
                })
                .collect(),
            tenant,
            permissions,
            sections,
        })
    }

    pub fn selected_slug(&self) -> Option<&str> {
        self.tenant.as_ref().map(|t| t.slug.as_str())
    }
}

/// Minutes are enough to recognise a moment; seconds would only be noise.
pub fn when(t: Timestamp) -> String {
    let d = t.as_datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute()
    )
}
