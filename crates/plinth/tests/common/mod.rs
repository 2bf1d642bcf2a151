//! What the binary's tests share: the binary, its environment, and a running server.

#![allow(dead_code, reason = "each test file uses its own part of this")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use plinth_testkit::TestDatabase;

pub const BIN: &str = env!("CARGO_BIN_EXE_plinth");

pub fn plinth(db: &TestDatabase) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(db.scratch())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PLINTH_DATABASE_URL", &db.url)
        .env("PLINTH_DATA_DIR", &db.data_dir)
        .env("PLINTH_LOG", "warn");
    command
}

/// Runs a command to completion; returns (success, stdout, stderr).
pub fn run(mut command: Command, stdin: Option<&str>) -> (bool, String, String) {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `plinth serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub setup_link: Option<String>,
}

impl Server {
    pub fn start(db: &TestDatabase) -> Server {
        Self::start_with(db, &[])
    }

    /// Starts `plinth serve` with `env` added to the test environment.
    pub fn start_with(db: &TestDatabase, env: &[(&str, String)]) -> Server {
        let mut command = plinth(db);
        command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Drains to the end, so the server never writes into a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("serve printed nothing");
        let base = first
            .strip_prefix("Plinth listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        // The setup block follows at once when setup is needed.
        let mut setup_link = None;
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
            if let Some(link) = line.trim().strip_prefix(&format!("{base}/setup?token=")) {
                setup_link = Some(format!("{base}/setup?token={link}"));
                break;
            }
        }
        Server {
            child,
            base,
            setup_link,
        }
    }

    /// `GET path` on this server, read as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        plinth_testkit::http_client()
            .build()
            .unwrap()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Signs in with a password; returns the access token.
    pub async fn access_token(&self, email: &str, password: &str) -> String {
        let login: serde_json::Value = plinth_testkit::http_client()
            .build()
            .unwrap()
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        login["access_token"].as_str().unwrap().to_owned()
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait(mut self) -> std::process::ExitStatus {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("plinth serve did not exit within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's database, opened as Plinth opens it.
pub async fn open_store(db: &TestDatabase) -> plinth_store::Db {
    plinth_store::Db::open(&plinth_store::DbOptions {
        url: Some(secrecy::SecretString::from(db.url.clone())),
        data_dir: db.data_dir.clone(),
        max_connections: 2,
        sqlite_synchronous: plinth_core::config::SqliteSynchronous::Full,
    })
    .await
    .unwrap()
}

/// The demo's owner of tenant `acme`, and the demo password.
pub const OWNER: &str = "olivia@acme.example";
pub const DEMO_PASSWORD: &str = "plinth demo password";

/// Seeds the demo data (`plinth demo`) into `db`.
pub fn seed_demo(db: &TestDatabase) {
    let mut demo = plinth(db);
    demo.arg("demo");
    let (ok, _, err) = run(demo, None);
    assert!(ok, "{err}");
}

/// Ids of the workspaces the writers were told were created.
pub type Acknowledged = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Four writers creating workspaces (`load-<writer>-<n>`) of tenant `acme` through `base`
/// until it stops answering; the id of each acknowledged one is added to the list.
pub fn write_until_gone(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> (Acknowledged, Vec<tokio::task::JoinHandle<()>>) {
    let acknowledged = Acknowledged::default();
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, token, base) = (client.clone(), token.to_owned(), base.to_owned());
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let response = client
                    .post(format!("{base}/api/v1/tenants/acme/workspaces"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"slug": format!("load-{writer}-{n}"), "name": "load"}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => {
                        let body: serde_json::Value = r.json().await.unwrap();
                        let id = body["id"].as_str().unwrap().to_owned();
                        acknowledged.lock().unwrap().push(id);
                    }
                    Ok(r) => panic!("a write answered {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    (acknowledged, writers)
}
