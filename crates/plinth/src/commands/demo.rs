//! `plinth demo`: a living system in one command, for trying Plinth out.

use plinth_access::TenantRole;
use plinth_core::Actor;
use plinth_core::config::Config;
use plinth_identity::{Email, NewUser, PasswordHasher, PlatformRole, Users};
use plinth_tenancy::{Branding, FlagInput, Inviter, Isolation, NavItem, NewTenant, PortalInput, Tenancy, TenantUpdate};
use secrecy::SecretString;

/// Every demo account signs in with this password. The demo is for trying Plinth out;
/// never run it on a database that holds real accounts.
pub const DEMO_PASSWORD: &str = "plinth demo password";

struct DemoTenant {
    slug: &'static str,
    name: &'static str,
    trial_days: Option<i64>,
    domain: &'static str,
    /// The tenant's brand colour, shown in the console.
    colour: &'static str,
    /// The consultant's role here, if they work here too.
    consultant: Option<TenantRole>,
}

/// Someone who works in several tenants, to try the console's tenant switcher with.
const CONSULTANT: (&str, &str) = ("casey@consulting.example", "Casey Consultant");

const TENANTS: [DemoTenant; 3] = [
    DemoTenant {
        slug: "acme",
        name: "Acme Corporation",
        trial_days: None,
        domain: "acme.example",
        colour: "#c2410c",
        consultant: Some(TenantRole::Admin),
    },
    DemoTenant {
        slug: "globex",
        name: "Globex",
        trial_days: Some(14),
        domain: "globex.example",
        colour: "#047857",
        consultant: Some(TenantRole::Member),
    },
    DemoTenant {
        slug: "initech",
        name: "Initech",
        trial_days: None,
        domain: "initech.example",
        colour: "#6d28d9",
        consultant: None,
    },
];

const PEOPLE: [(&str, &str, TenantRole); 6] = [
    ("olivia", "Olivia Owner", TenantRole::Owner),
    ("adam", "Adam Admin", TenantRole::Admin),
    ("mia", "Mia Member", TenantRole::Member),
    ("max", "Max Member", TenantRole::Member),
    ("vera", "Vera Viewer", TenantRole::Viewer),
    ("victor", "Victor Viewer", TenantRole::Viewer),
];

pub async fn run(config: &Config) -> Result<(), String> {
    let db = super::open_migrated(config).await?;
    let tenancy = Tenancy::new(db.clone());
    let hasher = PasswordHasher::default();
    let hash = hasher
        .hash(SecretString::from(DEMO_PASSWORD.to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    let actor = Actor::system();

    let admin_email = Email::parse("operator@plinth.example").map_err(|e| e.to_string())?;
    {
        let mut conn = db.read().await.map_err(|e| e.to_string())?;
        if Users::find_by_email(conn.conn(), &admin_email)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err("the demo data is already here (operator@plinth.example exists)".into());
        }
    }
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    let operator = Users::insert(
        &mut tx,
        NewUser {
            email: &admin_email,
            display_name: "Platform Operator",
            password_hash: Some(&hash),
            email_verified: true,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Users::grant_platform_role(&mut tx, operator.id, PlatformRole::SuperAdmin, None)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    tenancy
        .set_platform_flag(
            &actor,
            "new-dashboard",
            FlagInput {
                value: serde_json::json!(false),
                description: Some("The redesigned dashboard".into()),
            },
        )
        .await
        .map_err(|e| e.to_string())?;

    let consultant = {
        let email = Email::parse(CONSULTANT.0).map_err(|e| e.to_string())?;
        let mut tx = db.begin().await.map_err(|e| e.to_string())?;
        let user = Users::insert(
            &mut tx,
            NewUser {
                email: &email,
                display_name: CONSULTANT.1,
                password_hash: Some(&hash),
                email_verified: true,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        user.id
    };

    let base_url = config.public_base_url();
    for demo in TENANTS {
        let mut members = Vec::new();
        for (name, display, role) in PEOPLE {
            let email = Email::parse(&format!("{name}@{}", demo.domain)).map_err(|e| e.to_string())?;
            let mut tx = db.begin().await.map_err(|e| e.to_string())?;
            let user = Users::insert(
                &mut tx,
                NewUser {
                    email: &email,
                    display_name: display,
                    password_hash: Some(&hash),
                    email_verified: true,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            members.push((user.id, role));
        }
        let owner = members[0].0;
        tenancy
            .create_tenant(
                &actor,
                NewTenant {
                    slug: demo.slug.into(),
                    name: demo.name.into(),
                    owner,
                    isolation: Isolation::Pool,
                    trial_days: demo.trial_days,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        // The owner's own authorisation, as any request of theirs would get it.
        let owner_ctx = tenancy
            .authorize(owner, Actor::user(owner), demo.slug, "members:invite", false)
            .await
            .map_err(|e| e.to_string())?;
        for (user, role) in &members[1..] {
            tenancy
                .add_member(&owner_ctx, *user, &[*role])
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(role) = demo.consultant {
            tenancy
                .add_member(&owner_ctx, consultant, &[role])
                .await
                .map_err(|e| e.to_string())?;
        }
        tenancy
            .update_tenant(
                &owner_ctx,
                TenantUpdate {
                    name: None,
                    settings: None,
                    branding: Some(Branding {
                        primary_color: Some(demo.colour.into()),
                        ..Branding::default()
                    }),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let scope = &owner_ctx.scope;
        for (slug, name) in [("engineering", "Engineering"), ("support", "Support")] {
            tenancy
                .create_workspace(scope, slug, name)
                .await
                .map_err(|e| e.to_string())?;
        }
        for (suffix, name, roles, nav) in [
            (
                "staff",
                "Staff",
                vec![],
                vec![("Dashboard", "/console"), ("Members", "/console/members")],
            ),
            (
                "customers",
                "Customers",
                vec!["viewer".to_owned()],
                vec![("Orders", "/orders"), ("Help", "https://help.example.com")],
            ),
        ] {
            tenancy
                .create_portal(
                    scope,
                    PortalInput {
                        slug: Some(format!("{}-{suffix}", demo.slug)),
                        name: Some(name.into()),
                        navigation: Some(
                            nav.into_iter()
                                .map(|(label, href)| NavItem {
                                    label: label.into(),
                                    href: href.into(),
                                })
                                .collect(),
                        ),
                        allowed_roles: Some(roles),
                        signup_enabled: Some(suffix == "customers"),
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        tenancy
            .set_tenant_flag(
                scope,
                "new-dashboard",
                FlagInput {
                    value: serde_json::json!(demo.slug == "acme"),
                    description: None,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let ctx = tenancy
            .authorize(owner, Actor::user(owner), demo.slug, "members:invite", false)
            .await
            .map_err(|e| e.to_string())?;
        tenancy
            .invite(
                &ctx,
                &format!("newcomer@{}", demo.domain),
                "member",
                &Inviter {
                    name: "Olivia Owner",
                    base_url: &base_url,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "  {:<10} {:<18} {} members, 3 workspaces, portals {0}-staff and {0}-customers",
            demo.slug,
            demo.name,
            members.len()
        );
    }
    db.close().await;
    println!();
    println!("Demo data created. Every account's password is: {DEMO_PASSWORD}");
    println!("  platform super-admin: operator@plinth.example");
    println!("  per tenant: olivia (owner), adam (admin), mia and max (members), vera and victor (viewers)");
    println!("              at acme.example, globex.example and initech.example, e.g. olivia@acme.example");
    println!("  in two tenants (admin of acme, member of globex): {}", CONSULTANT.0);
    Ok(())
}
