//! The `plinth` binary as an operator uses it: real processes, real signals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use plinth_testkit::{TestDatabase, backend_tests};

mod common;

use common::{BIN, Server, open_store, plinth, run};

/// `plinth admin create-superadmin --password-stdin` with `password` on standard input.
fn create_superadmin(db: &TestDatabase, email: &str, password: &str) -> (bool, String, String) {
    let mut command = plinth(db);
    command.args(["admin", "create-superadmin", "--email", email, "--password-stdin"]);
    run(command, Some(&format!("{password}\n")))
}

const PASSPHRASE: &str = "a sufficiently long passphrase";

backend_tests!(
    serve_prints_a_setup_link_that_creates_the_first_admin,
    sigterm_lets_an_in_flight_request_finish,
    backup_and_restore_round_trip_through_the_cli,
    migrate_dry_run_lists_pending_then_migrate_applies,
    a_database_from_a_newer_version_is_refused,
    create_superadmin_reads_the_password_from_stdin,
    audit_verify_reports_an_intact_chain,
    audit_verify_reports_every_broken_chain_with_the_kind_of_break,
    an_audit_export_verifies_offline_and_an_edit_to_it_does_not,
    signed_heads_are_kept_outside_and_checked_later,
    demo_seeds_a_living_system_once,
);

async fn demo_seeds_a_living_system_once(db: TestDatabase) {
    let mut demo = plinth(&db);
    demo.arg("demo");
    let (ok, out, err) = run(demo, None);
    assert!(ok, "{err}");
    assert!(out.contains("acme") && out.contains("olivia@acme.example"), "{out}");
    let mut again = plinth(&db);
    again.arg("demo");
    let (ok, _, err) = run(again, None);
    assert!(!ok);
    assert!(err.contains("already here"), "{err}");

    let server = Server::start(&db);
    assert!(server.setup_link.is_none(), "the demo has an operator");
    let client = plinth_testkit::http_client().build().unwrap();
    let token = server.access_token("olivia@acme.example", "plinth demo password").await;
    let members: serde_json::Value = client
        .get(format!("{}/api/v1/tenants/acme/members", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        members["items"].as_array().unwrap().len(),
        7,
        "six people and the consultant"
    );
    let portal = server.get_json("/api/v1/portals/globex-customers").await;
    assert_eq!(portal["tenant_name"], "Globex");
}

async fn serve_prints_a_setup_link_that_creates_the_first_admin(db: TestDatabase) {
    let server = Server::start(&db);
    let link = server.setup_link.clone().expect("a setup link on first start");
    let token = link.rsplit('=').next().unwrap().to_owned();
    let client = plinth_testkit::http_client().build().unwrap();
    assert_eq!(client.get(&link).send().await.unwrap().status(), 200);
    let created = client
        .post(format!("{}/api/v1/setup", server.base))
        .json(&serde_json::json!({"token": token, "email": "root@example.com", "password": "a sufficiently long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.terminate();
    assert!(server.wait().success());

    let again = Server::start(&db);
    assert!(again.setup_link.is_none(), "no link once an administrator exists");
}

async fn sigterm_lets_an_in_flight_request_finish(db: TestDatabase) {
    let server = Server::start(&db);
    let address = server.base.trim_start_matches("http://").to_owned();
    let body = br#"{"token": "x", "email": "slow@example.com", "password": "a sufficiently long passphrase"}"#;
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "POST /api/v1/setup HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    server.terminate();
    std::thread::sleep(Duration::from_millis(500));
    // Draining: new connections are refused while the slow request goes on.
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "the listener is closed after SIGTERM"
    );
    stream.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 400"),
        "the in-flight request completed: {response}"
    );
    assert!(response.contains("invalid-token"));
    assert!(server.wait().success(), "a clean exit after draining");
}

async fn backup_and_restore_round_trip_through_the_cli(db: TestDatabase) {
    let (ok, _, err) = create_superadmin(&db, "keep@example.com", PASSPHRASE);
    assert!(ok, "{err}");

    let file = db.scratch().join("plinth.backup");
    let mut backup = plinth(&db);
    backup.args(["backup", "--out"]).arg(&file);
    let (ok, out, err) = run(backup, None);
    assert!(ok, "{err}");
    assert!(out.contains("Backup written"), "{out}");

    let backend = db.backend;
    let target = TestDatabase::create(backend).await.unwrap();
    let mut restore = plinth(&target);
    restore.arg("restore").arg(&file);
    let (ok, out, err) = run(restore, None);
    assert!(ok, "{err}");
    assert!(out.contains("Restored"), "{out}");

    // The restored database already has the administrator.
    let (ok, _, err) = create_superadmin(&target, "KEEP@example.com", PASSPHRASE);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");

    // A second restore over data needs --force.
    let mut refused = plinth(&target);
    refused.arg("restore").arg(&file);
    let (ok, _, err) = run(refused, None);
    assert!(!ok);
    assert!(err.contains("--force"), "{err}");
    let mut forced = plinth(&target);
    forced.args(["restore", "--force"]).arg(&file);
    let (ok, _, err) = run(forced, None);
    assert!(ok, "{err}");
}

async fn migrate_dry_run_lists_pending_then_migrate_applies(db: TestDatabase) {
    let mut dry = plinth(&db);
    dry.args(["migrate", "--dry-run"]);
    let (ok, out, err) = run(dry, None);
    assert!(ok, "{err}");
    assert!(
        out.contains("pending migration(s)") && out.contains("0001_foundation"),
        "{out}"
    );

    let mut migrate = plinth(&db);
    migrate.arg("migrate");
    let (ok, out, err) = run(migrate, None);
    assert!(ok, "{err}");
    assert!(out.contains("Applied"), "{out}");

    let mut again = plinth(&db);
    again.args(["migrate", "--dry-run"]);
    let (ok, out, _) = run(again, None);
    assert!(ok);
    assert!(out.contains("up to date"), "{out}");
}

async fn a_database_from_a_newer_version_is_refused(db: TestDatabase) {
    let mut migrate = plinth(&db);
    migrate.arg("migrate");
    assert!(run(migrate, None).0);
    let store = plinth_store::Db::open(&plinth_store::DbOptions {
        url: Some(secrecy::SecretString::from(db.url.clone())),
        data_dir: db.data_dir.clone(),
        max_connections: 1,
        sqlite_synchronous: plinth_core::config::SqliteSynchronous::Full,
    })
    .await
    .unwrap();
    let mut tx = store.begin().await.unwrap();
    plinth_store::exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO plinth_schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'from_the_future', 'x', 0)"
    ).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let mut serve = plinth(&db);
    serve.args(["serve", "--bind", "127.0.0.1:0"]);
    let (ok, _, err) = run(serve, None);
    assert!(!ok, "serve must refuse");
    assert!(err.contains("newer Plinth") && err.contains("9999"), "{err}");
}

async fn create_superadmin_reads_the_password_from_stdin(db: TestDatabase) {
    let (ok, _, err) = create_superadmin(&db, "a@example.com", "short");
    assert!(!ok);
    assert!(err.contains("password"), "{err}");

    let mut flag = plinth(&db);
    flag.args([
        "admin",
        "create-superadmin",
        "--email",
        "a@example.com",
        "--password",
        "x",
    ]);
    let (ok, _, err) = run(flag, None);
    assert!(!ok, "there is no --password flag");
    assert!(err.contains("unexpected argument"), "{err}");

    let (ok, out, err) = create_superadmin(&db, "a@example.com", PASSPHRASE);
    assert!(ok, "{err}");
    assert!(out.contains("Created super-admin a@example.com"), "{out}");
}

async fn audit_verify_reports_an_intact_chain(db: TestDatabase) {
    assert!(create_superadmin(&db, "a@example.com", PASSPHRASE).0);
    let mut verify = plinth(&db);
    verify.args(["audit", "verify"]);
    let (ok, out, err) = run(verify, None);
    assert!(ok, "{err}");
    assert!(out.contains("intact: 1 records verified"), "{out}");
}

/// Tampering made in SQL to tenant chains and to the platform chain: each broken chain is
/// named with the record and the kind of break, and the intact ones are not.
async fn audit_verify_reports_every_broken_chain_with_the_kind_of_break(db: TestDatabase) {
    assert!(create_superadmin(&db, "a@example.com", PASSPHRASE).0);
    let mut demo = plinth(&db);
    demo.arg("demo");
    let (ok, _, err) = run(demo, None);
    assert!(ok, "{err}");
    let mut verify = plinth(&db);
    verify.args(["audit", "verify"]);
    let (ok, out, err) = run(verify, None);
    assert!(ok, "{err}");
    assert!(out.contains("4 audit chain(s) intact"), "{out}");

    let store = open_store(&db).await;
    let mut tx = store.begin().await.unwrap();
    let tenants: Vec<(uuid::Uuid, String)> = plinth_store::on!(tx.conn(), c => sqlx::query_as(
        "SELECT id, slug FROM tenants"
    ).fetch_all(c).await)
    .unwrap();
    let id_of = |slug: &str| tenants.iter().find(|t| t.1 == slug).unwrap().0.to_string();
    let (acme, globex, initech) = (id_of("acme"), id_of("globex"), id_of("initech"));
    for (sql, chain) in [
        (
            "UPDATE audit_log SET reason = 'nothing happened' WHERE chain = $1 AND seq = 2",
            &acme,
        ),
        ("DELETE FROM audit_log WHERE chain = $1 AND seq = 2", &globex),
        ("UPDATE audit_log SET seq = -1 WHERE chain = $1 AND seq = 2", &initech),
        ("UPDATE audit_log SET seq = 2 WHERE chain = $1 AND seq = 3", &initech),
        ("UPDATE audit_log SET seq = 3 WHERE chain = $1 AND seq = -1", &initech),
        (
            "DELETE FROM audit_log WHERE chain = $1 AND seq = (SELECT max(seq) FROM audit_log WHERE chain = $1)",
            &"platform".to_owned(),
        ),
    ] {
        plinth_store::exec!(tx.conn(), c => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(chain).execute(c).await)
            .unwrap();
    }
    tx.commit().await.unwrap();
    store.close().await;

    let mut verify = plinth(&db);
    verify.args(["audit", "verify"]);
    let (ok, _, err) = run(verify, None);
    assert!(!ok, "a broken chain fails the command");
    assert!(err.contains(&format!("chain {acme}: edited at record 2")), "{err}");
    assert!(err.contains(&format!("chain {globex}: deleted at record 2")), "{err}");
    assert!(
        err.contains(&format!("chain {initech}: reordered at record 2")),
        "{err}"
    );
    assert!(err.contains("chain platform: truncated at record"), "{err}");
    assert!(err.contains("4 of 4 audit chain(s) broken"), "{err}");

    let mut one = plinth(&db);
    one.args(["audit", "verify", "--tenant", "globex"]);
    let (ok, _, err) = run(one, None);
    assert!(!ok);
    assert!(err.contains(&format!("chain {globex}: deleted")), "{err}");
    assert!(!err.contains(&acme), "only the named tenant's chain: {err}");
    assert!(err.contains("1 of 1 audit chain(s) broken"), "{err}");
}

async fn an_audit_export_verifies_offline_and_an_edit_to_it_does_not(db: TestDatabase) {
    let mut demo = plinth(&db);
    demo.arg("demo");
    assert!(run(demo, None).0);
    let mut export = plinth(&db);
    export.args(["audit", "export", "--tenant", "acme"]);
    let (ok, ndjson, err) = run(export, None);
    assert!(ok, "{err}");
    assert!(ndjson.lines().count() > 5, "{ndjson}");
    let file = db.scratch().join("acme.ndjson");
    std::fs::write(&file, &ndjson).unwrap();
    let mut verify = plinth(&db);
    verify.args(["audit", "verify", "--file"]).arg(&file);
    let (ok, out, err) = run(verify, None);
    assert!(ok, "{err}");
    assert!(out.contains("intact in 1 run(s)"), "{out}");
    assert!(out.contains("from the chain's first record"), "{out}");

    let forged = ndjson.replacen("\"outcome\":\"success\"", "\"outcome\":\"denied\"", 1);
    std::fs::write(&file, forged).unwrap();
    let mut verify = plinth(&db);
    verify.args(["audit", "verify", "--file"]).arg(&file);
    let (ok, _, err) = run(verify, None);
    assert!(!ok);
    assert!(err.contains("record 1 ") && err.contains("edited"), "{err}");

    let mut csv = plinth(&db);
    csv.args([
        "audit", "export", "--tenant", "acme", "--format", "csv", "--action", "member.*",
    ]);
    let (ok, out, err) = run(csv, None);
    assert!(ok, "{err}");
    assert!(out.starts_with("id,chain,seq,"), "{out}");
    assert!(out.lines().skip(1).all(|l| l.contains(",member.")), "{out}");
}

async fn signed_heads_are_kept_outside_and_checked_later(db: TestDatabase) {
    let mut demo = plinth(&db);
    demo.arg("demo");
    assert!(run(demo, None).0);
    let mut heads = plinth(&db);
    heads.args(["audit", "heads", "--sign"]);
    let (ok, json, err) = run(heads, None);
    assert!(ok, "{err}");
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        parsed.as_array().unwrap().len(),
        4,
        "the platform chain and three tenants: {json}"
    );
    let file = db.scratch().join("heads.json");
    std::fs::write(&file, &json).unwrap();
    let mut verify = plinth(&db);
    verify.args(["audit", "verify", "--against"]).arg(&file);
    let (ok, out, err) = run(verify, None);
    assert!(ok, "{err}");
    assert_eq!(out.matches("matches its signed head").count(), 4, "{out}");

    let first_hash = parsed[1]["hash"].as_str().unwrap();
    std::fs::write(&file, json.replace(first_hash, &"f".repeat(64))).unwrap();
    let mut verify = plinth(&db);
    verify.args(["audit", "verify", "--against"]).arg(&file);
    let (ok, _, err) = run(verify, None);
    assert!(!ok);
    assert!(err.contains("the signature (key"), "{err}");
    assert!(err.contains("1 of 4 signed head(s) do not hold"), "{err}");
}

#[test]
fn configuration_layers_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plinth.toml"),
        "bind = \"127.0.0.1:1111\"\nlog_level = \"debug\"\nbody_limit_bytes = 4096\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PLINTH_LOG", "warn")
        .env("PLINTH_BIND", "127.0.0.1:2222")
        .args(["config", "--data-dir", "/srv/plinth"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.contains("bind = 127.0.0.1:2222"), "{out}");
    assert!(out.contains("log_level = warn"), "{out}");
    assert!(out.contains("body_limit_bytes = 4096"), "{out}");
    assert!(out.contains("data_dir = /srv/plinth"), "{out}");

    let bad = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PLINTH_BIND", "nope")
        .arg("config")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PLINTH_BIND"));
}

#[test]
fn every_setting_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for setting in plinth_core::config::SETTINGS {
        assert!(
            readme.contains(setting.env),
            "README.md does not document {}",
            setting.env
        );
    }
}
