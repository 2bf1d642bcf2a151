//! Console sessions over HTTP as a browser uses them: the sign-in form, the session
//! cookie and its attributes, CSRF tokens on every change, sign-out and revocation.

use std::collections::BTreeMap;

use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::mfa::{code, enrol_totp};
use crate::support::{TestApp, assert_problem};

backend_tests!(
    signing_in_sets_a_session_cookie_that_pages_and_the_api_accept,
    changes_without_the_csrf_token_are_refused,
    a_wrong_password_sets_no_cookie_and_keeps_the_address,
    the_second_step_comes_before_the_cookie,
    signing_out_or_revoking_ends_the_cookie_session,
    an_idle_console_session_ends,
    cookies_are_secure_behind_tls,
    saved_views_are_their_owners_alone_and_reach_no_further_than_the_form,
    the_members_table_pages_through_every_member_once_in_order,
);

/// A browser: its own cookie jar, no automatic redirects, so every hop is visible.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
    jar: BTreeMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    pub(crate) body: String,
}

impl Page {
    /// The value of the first hidden field `name` in the page.
    pub(crate) fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            client: plinth_testkit::http_client()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("Mozilla/5.0 (plinth-tests)")
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.jar.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        self.send(request).await
    }

    /// Posts JSON as the console's script does, with the page's CSRF token in a header.
    pub(crate) async fn post_json(
        &mut self,
        path: &str,
        csrf: &str,
        body: &serde_json::Value,
    ) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", csrf)
            .json(body);
        self.send(request).await
    }

    /// Opens the sign-in page and submits it; returns the answer to the submission.
    pub(crate) async fn sign_in(&mut self, email: &str, password: &str, next: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, 200);
        let csrf = form.field("csrf_token");
        self.post_form(
            "/console/sign-in",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// The id of this browser's session, as its sessions list marks it current.
    pub(crate) async fn session_id(&mut self) -> String {
        let sessions: serde_json::Value =
            serde_json::from_str(&self.get("/api/v1/me/sessions").await.body).unwrap();
        sessions["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .unwrap()
    }

    /// The CSRF token of this browser's session, as the console's pages carry it.
    pub(crate) async fn csrf(&mut self) -> String {
        let page = self.get("/console/account/sessions").await;
        assert_eq!(page.status, 200);
        page.field("csrf_token")
    }
}

async fn signed_in_browser(app: &TestApp, email: &str) -> Browser {
    app.create_user(email, PASSWORD, true, &[]).await;
    let mut browser = Browser::new(app);
    let answer = browser.sign_in(email, PASSWORD, "/console").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    browser
}

async fn signing_in_sets_a_session_cookie_that_pages_and_the_api_accept(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("c@example.com", PASSWORD, true, &[]).await;
    let mut browser = Browser::new(&app);

    let anonymous = browser.get("/console/account/sessions").await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(
        anonymous.location.as_deref(),
        Some("/console/sign-in?next=%2Fconsole%2Faccount%2Fsessions")
    );

    let form = browser.get("/console/sign-in").await;
    let pre = form.set_cookie("plinth_presession").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/console"] {
        assert!(pre.contains(attribute), "{pre}");
    }
    let csrf = form.field("csrf_token");
    let answer = browser
        .post_form(
            "/console/sign-in",
            &[
                ("csrf_token", &csrf),
                ("email", "C@Example.com"),
                ("password", PASSWORD),
                ("next", "/console/account/sessions"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        answer.location.as_deref(),
        Some("/console/account/sessions")
    );
    let cookie = answer.set_cookie("plinth_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP cannot keep a Secure cookie: {cookie}"
    );
    assert!(
        !browser.jar.contains_key("plinth_presession"),
        "the pre-session cookie is cleared"
    );

    let sessions = browser.get("/console/account/sessions").await;
    assert_eq!(sessions.status, 200);
    assert!(sessions.body.contains("(this browser)"));
    assert!(sessions.body.contains("Console"));

    // The API takes the same cookie: reads freely, changes with the CSRF header.
    let me = browser.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["user"]["email"], "c@example.com");
    assert_eq!(me["amr"], json!(["pwd"]));
    let listed = browser.get("/api/v1/me/sessions").await;
    let listed: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    let listed = &listed["items"];
    assert_eq!(listed[0]["kind"], "browser");
    assert_eq!(listed[0]["current"], true);

    // Already signed in: the sign-in page goes straight on, and never off-site.
    let again = browser
        .get("/console/sign-in?next=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some("/console"));
    let overview = browser.get("/console").await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("Welcome, Test User"));
    assert!(overview.body.contains("no second factor yet"));
    app.stop().await;
}

async fn changes_without_the_csrf_token_are_refused(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("f@example.com", PASSWORD, true, &[]).await;

    // Sign-in forms: no cookie at all, then a token that is not this browser's.
    let mut forger = Browser::new(&app);
    let fields = [("email", "f@example.com"), ("password", PASSWORD)];
    let refused = forger.post_form("/console/sign-in", &fields).await;
    assert_eq!(refused.status, 403);
    assert!(refused.set_cookie("plinth_session").is_none());
    let mut other = Browser::new(&app);
    let foreign_token = other.get("/console/sign-in").await.field("csrf_token");
    forger.get("/console/sign-in").await;
    let refused = forger
        .post_form(
            "/console/sign-in",
            &[("csrf_token", foreign_token.as_str()), fields[0], fields[1]],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("did not come from this site"));
    assert!(refused.set_cookie("plinth_session").is_none());

    // Signed in: a form post without its token changes nothing.
    let mut browser = Browser::new(&app);
    assert_eq!(
        browser
            .sign_in("f@example.com", PASSWORD, "/console")
            .await
            .status,
        303
    );
    let refused = browser.post_form("/console/sign-out", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(browser.get("/console").await.status, 200, "still signed in");

    // The API: a cookie-authenticated change needs the header; a bearer token does not.
    let url = format!("{}/api/v1/me", app.base);
    let body = json!({"display_name": "Changed"});
    let request = browser.client.patch(&url).json(&body);
    let response = browser.send(request).await;
    assert_eq!(response.status, 403);
    let problem: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(problem["type"], "https://plinth.dev/problems/csrf-failed");
    let request = browser
        .client
        .patch(&url)
        .header("x-csrf-token", "wrong")
        .json(&body);
    assert_eq!(browser.send(request).await.status, 403);
    let csrf = browser.csrf().await;
    let request = browser
        .client
        .patch(&url)
        .header("x-csrf-token", &csrf)
        .json(&body);
    assert_eq!(browser.send(request).await.status, 200);
    let token = app.login("f@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.patch_as("/api/v1/me", &token, &body).await.status(),
        200
    );
    app.stop().await;
}

async fn a_wrong_password_sets_no_cookie_and_keeps_the_address(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("w@example.com", PASSWORD, true, &[]).await;
    let mut browser = Browser::new(&app);
    let answer = browser
        .sign_in("w@example.com", "not the password", "/console")
        .await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("is not right"));
    assert!(answer.body.contains("value=\"w@example.com\""));
    assert!(answer.set_cookie("plinth_session").is_none());
    // The same answer for an address nobody has.
    let unknown = browser
        .sign_in("nobody@example.com", PASSWORD, "/console")
        .await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("is not right"));
    app.stop().await;
}

async fn the_second_step_comes_before_the_cookie(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("m@example.com", PASSWORD, true, &[]).await;
    let token = app.login("m@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (secret, _) = enrol_totp(&app, &token).await;

    let mut browser = Browser::new(&app);
    let step = browser.sign_in("m@example.com", PASSWORD, "/console").await;
    assert_eq!(step.status, 200);
    assert!(step.body.contains("Two-step verification"));
    assert!(step.set_cookie("plinth_session").is_none());
    let mfa_token = step.field("mfa_token");
    let csrf = step.field("csrf_token");

    let wrong = browser
        .post_form(
            "/console/sign-in/mfa",
            &[
                ("csrf_token", &csrf),
                ("mfa_token", &mfa_token),
                ("code", "000000"),
                ("next", "/console"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not right"));
    assert!(wrong.set_cookie("plinth_session").is_none());

    // The code of the enrolment step was used up; the next step is accepted.
    let current = code(&secret, 1);
    let done = browser
        .post_form(
            "/console/sign-in/mfa",
            &[
                ("csrf_token", &csrf),
                ("mfa_token", &mfa_token),
                ("code", &current),
                ("next", "/console"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.set_cookie("plinth_session").is_some());
    let me: serde_json::Value =
        serde_json::from_str(&browser.get("/api/v1/me").await.body).unwrap();
    assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]));
    app.stop().await;
}

async fn signing_out_or_revoking_ends_the_cookie_session(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let mut laptop = signed_in_browser(&app, "s@example.com").await;
    let mut phone = Browser::new(&app);
    assert_eq!(
        phone
            .sign_in("s@example.com", PASSWORD, "/console")
            .await
            .status,
        303
    );

    // The laptop ends the phone's session from its sessions page.
    let phone_session = phone.session_id().await;
    let csrf = laptop.csrf().await;
    let ended = laptop
        .post_form(
            &format!("/console/account/sessions/{phone_session}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location.as_deref(), Some("/console/account/sessions"));
    assert_eq!(phone.get("/console").await.status, 303);
    assert_problem(
        app.client
            .get(app.url("/api/v1/me"))
            .header("cookie", phone.cookie_header())
            .send()
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;

    // The laptop signs itself out: the cookie is cleared and no longer works if replayed.
    let stolen = laptop.cookie_header();
    let out = laptop
        .post_form("/console/sign-out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/console/sign-in"));
    assert!(
        out.set_cookie("plinth_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let replay = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    app.stop().await;
}

async fn an_idle_console_session_ends(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let mut browser = signed_in_browser(&app, "i@example.com").await;
    assert_eq!(browser.get("/console").await.status, 200);
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE kind = 'browser'")
        .bind(plinth_core::Timestamp::now() - time::Duration::minutes(61)).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    let page = browser.get("/console").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/console/sign-in?next=%2Fconsole")
    );
    let mut conn = app.db.read().await.unwrap();
    let logins: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.login'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(logins, 1);
    drop(conn);
    app.stop().await;
}

async fn cookies_are_secure_behind_tls(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("public_url", "https://console.example.com")
        .spawn()
        .await;
    app.create_user("t@example.com", PASSWORD, true, &[]).await;
    let mut browser = Browser::new(&app);
    let form = browser.get("/console/sign-in").await;
    assert!(
        form.set_cookie("plinth_presession")
            .unwrap()
            .contains("Secure")
    );
    let answer = browser.sign_in("t@example.com", PASSWORD, "/console").await;
    assert_eq!(answer.status, 303);
    assert!(
        answer
            .set_cookie("plinth_session")
            .unwrap()
            .contains("Secure")
    );
    app.stop().await;
}

/// The id of the saved view `name` as the members page lists it for this browser.
async fn view_id(browser: &mut Browser, tenant: &str, name: &str) -> Option<String> {
    let page = browser.get(&format!("/console/t/{tenant}/members")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // A saved view's link is current on its own page; open each to find its delete form.
    let marker = format!(">{name}</a>");
    let end = page.body.find(&marker)?;
    let start = page.body[..end].rfind("href=\"")? + "href=\"".len();
    let href = page.body[start..end]
        .trim_end_matches('"')
        .replace("&#38;", "&");
    let view = browser.get(&href).await;
    let form = "action=\"/console/views/";
    let at = view.body.find(form)? + form.len();
    Some(view.body[at..at + 36].to_owned())
}

async fn saved_views_are_their_owners_alone_and_reach_no_further_than_the_form(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let mut owner = signed_in_browser(&app, "views-owner@example.com").await;
    let token = app.access_token("views-owner@example.com", PASSWORD).await;
    let tenant = app.create_tenant(&token, "views").await;
    let other_id = app
        .create_user("views-other@example.com", PASSWORD, true, &[])
        .await;
    app.add_member(tenant["id"].as_str().unwrap(), other_id, "admin")
        .await;
    let mut other = Browser::new(&app);
    other
        .sign_in("views-other@example.com", PASSWORD, "/console")
        .await;

    let csrf = owner.csrf().await;
    let saved = owner
        .post_form(
            "/console/views",
            &[
                ("csrf_token", &csrf),
                ("page", "members"),
                ("name", "Mine"),
                (
                    "query",
                    "role=admin&tenant=elsewhere&sort=password_hash&cols=email",
                ),
                ("next", "/console/t/views/members"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(
        saved.location.as_deref(),
        Some("/console/t/views/members?role=admin&cols=email"),
        "only the table's own fields and values are kept"
    );
    let id = view_id(&mut owner, "views", "Mine")
        .await
        .expect("the owner sees it");
    assert_eq!(
        view_id(&mut other, "views", "Mine").await,
        None,
        "another member does not"
    );

    let other_csrf = other.csrf().await;
    let refused = other
        .post_form(
            &format!("/console/views/{id}/delete"),
            &[("csrf_token", &other_csrf)],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert!(view_id(&mut owner, "views", "Mine").await.is_some());

    let unknown = owner
        .post_form(
            "/console/views",
            &[("csrf_token", &csrf), ("page", "secrets"), ("name", "x")],
        )
        .await;
    assert_eq!(unknown.status, 422);
    for n in 0..20 {
        let name = format!("View {n}");
        let page = owner
            .post_form(
                "/console/views",
                &[("csrf_token", &csrf), ("page", "members"), ("name", &name)],
            )
            .await;
        let expected = if n < 19 { 303 } else { 422 };
        assert_eq!(page.status, expected, "view {n}: {}", page.body);
    }
    app.stop().await;
}

async fn the_members_table_pages_through_every_member_once_in_order(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let mut owner = signed_in_browser(&app, "pager@example.com").await;
    let token = app.access_token("pager@example.com", PASSWORD).await;
    let tenant = app.create_tenant(&token, "pager").await;
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    // More than the export's page of 200, so the export follows a cursor too.
    for n in 0..210 {
        let user = app
            .create_user(&format!("m{n:03}@pager.test"), PASSWORD, true, &[])
            .await;
        let role = if n % 3 == 0 { "viewer" } else { "member" };
        app.add_member(&tenant_id, user, role).await;
    }

    // Viewers only, by e-mail descending: 70 of them, on three pages of 25.
    let mut path = "/console/t/pager/members?role=viewer&sort=-email".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = owner.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        for row in page.body.split("<tr>").skip(2) {
            let email = row.split("<td>").nth(2).unwrap().split('<').next().unwrap();
            seen.push(email.to_owned());
        }
        let Some(at) = page.body.find("\" rel=\"next\"") else {
            break;
        };
        let start = page.body[..at].rfind("href=\"").unwrap() + "href=\"".len();
        path = page.body[start..at].replace("&#38;", "&");
        assert!(
            path.contains("role=viewer") && path.contains("sort=-email"),
            "{path}"
        );
    }
    let mut expected: Vec<String> = (0..210)
        .filter(|n| n % 3 == 0)
        .map(|n| format!("m{n:03}@pager.test"))
        .collect();
    expected.reverse();
    assert_eq!(seen, expected, "every viewer once, by e-mail descending");
    assert_eq!(pages, 3);

    let mut path = "/console/t/pager/members".to_owned();
    let mut all = Vec::new();
    loop {
        let page = owner.get(&path).await;
        for row in page.body.split("<tr>").skip(2) {
            let email = row.split("<td>").nth(2).unwrap().split('<').next().unwrap();
            all.push(email.to_owned());
        }
        assert!(!page.body.contains("could not be read"), "{path}");
        let Some(at) = page.body.find("\" rel=\"next\"") else {
            assert!(
                page.body.contains(">First page</a>"),
                "the last page leads back"
            );
            break;
        };
        let start = page.body[..at].rfind("href=\"").unwrap() + "href=\"".len();
        path = page.body[start..at].replace("&#38;", "&");
    }
    assert_eq!(all.len(), 211, "210 members and the owner, on nine pages");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "in order, none twice");

    let csv = owner.get("/console/t/pager/members?format=csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.body.lines().count(),
        212,
        "a header and every member, past an export page of 200"
    );
    app.stop().await;
}
