//! Backups and restores.
//!
//! SQLite: the online backup API, copying pages in steps while the server keeps running.
//! A read transaction held on the source for the whole copy pins one snapshot, so the
//! result is consistent even while other connections write (WAL mode lets them).
//! PostgreSQL: `pg_dump`/`pg_restore` in the custom format, streamed through this
//! process so progress can be shown; the password travels in `PGPASSWORD`, never argv.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::db::{Backend, Db};
use crate::error::{StoreError, StoreResult};
use crate::on;

/// Progress of a backup or restore, in bytes; `total` is unknown for PostgreSQL dumps.
#[derive(Debug, Clone, Copy)]
pub struct BackupProgress {
    pub done: u64,
    pub total: Option<u64>,
}

/// Writes a backup of `db` to `out` (which must not exist). Returns the bytes written.
pub async fn backup_to_file(
    db: &Db,
    database_url: Option<&SecretString>,
    out: &Path,
    progress: &mut (dyn FnMut(BackupProgress) + Send),
) -> StoreResult<u64> {
    if out.exists() {
        return Err(StoreError::Backup(format!(
            "{} already exists; choose another file or remove it first",
            out.display()
        )));
    }
    match db.backend() {
        Backend::Sqlite => {
            let source = db
                .sqlite_path()
                .ok_or_else(|| StoreError::Backup("no SQLite file".into()))?
                .to_path_buf();
            sqlite_copy(&source, out, Direction::Backup, progress).await
        }
        Backend::Postgres => {
            let url = database_url.ok_or_else(|| StoreError::Backup("no PostgreSQL URL configured".into()))?;
            pg_dump(url, out, progress).await
        }
    }
}

/// Restores `input` into the configured database. Refuses when the database already
/// holds data unless `force` is set.
pub async fn restore_from_file(
    db: &Db,
    database_url: Option<&SecretString>,
    input: &Path,
    force: bool,
    progress: &mut (dyn FnMut(BackupProgress) + Send),
) -> StoreResult<u64> {
    if !input.is_file() {
        return Err(StoreError::Backup(format!("{} is not a file", input.display())));
    }
    if !force && !is_empty(db).await? {
        return Err(StoreError::Backup(
            "the target database is not empty; pass --force to overwrite it".into(),
        ));
    }
    match db.backend() {
        Backend::Sqlite => {
            check_sqlite_backup(input).await?;
            let target = db
                .sqlite_path()
                .ok_or_else(|| StoreError::Backup("no SQLite file".into()))?
                .to_path_buf();
            sqlite_copy(input, &target, Direction::Restore, progress).await
        }
        Backend::Postgres => {
            let url = database_url.ok_or_else(|| StoreError::Backup("no PostgreSQL URL configured".into()))?;
            pg_restore(url, input, force, progress).await
        }
    }
}

/// True when no Plinth schema has been applied (a fresh database).
async fn is_empty(db: &Db) -> StoreResult<bool> {
    let mut conn = db.read().await?;
    let tables: i64 = match db.backend() {
        Backend::Sqlite => on!(conn.conn(), c => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetch_one(c).await)?,
        Backend::Postgres => on!(conn.conn(), c => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetch_one(c).await)?,
    };
    Ok(tables == 0)
}

async fn check_sqlite_backup(input: &Path) -> StoreResult<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(input)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| StoreError::Backup(format!("{} is not a SQLite database: {e}", input.display())))?;
    let has_ledger: Result<i64, _> = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'plinth_schema_migrations'",
    )
    .fetch_one(&mut conn)
    .await;
    conn.close().await?;
    match has_ledger {
        Ok(1) => Ok(()),
        Ok(_) => Err(StoreError::Backup(format!(
            "{} is a SQLite database but not a Plinth backup",
            input.display()
        ))),
        Err(e) => Err(StoreError::Backup(format!(
            "{} is not a SQLite database: {e}",
            input.display()
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Backup,
    Restore,
}

async fn sqlite_copy(
    source: &Path,
    dest: &Path,
    direction: Direction,
    progress: &mut (dyn FnMut(BackupProgress) + Send),
) -> StoreResult<u64> {
    // A backup is written next to its final name and renamed when complete, so a crash
    // never leaves a truncated file under the requested name.
    let write_path: PathBuf = match direction {
        Direction::Backup => dest.with_extension("partial"),
        Direction::Restore => dest.to_path_buf(),
    };
    if direction == Direction::Backup {
        // A leftover from an interrupted run; the target of a restore is never removed,
        // since open connections of the pool refer to it.
        let _ = std::fs::remove_file(&write_path);
    }
    let mut src = SqliteConnectOptions::new()
        .filename(source)
        .read_only(direction == Direction::Restore)
        .connect()
        .await?;
    let mut dst = SqliteConnectOptions::new()
        .filename(&write_path)
        .create_if_missing(true)
        .connect()
        .await?;
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut src).await?;
    let mut snapshot = src.begin().await?;
    // The first read opens the snapshot that the whole copy sees.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .execute(&mut *snapshot)
        .await?;
    let copied = {
        let mut src_handle = snapshot.lock_handle().await?;
        let mut dst_handle = dst.lock_handle().await?;
        ffi::backup(
            dst_handle.as_raw_handle().as_ptr(),
            src_handle.as_raw_handle().as_ptr(),
            |done_pages, total_pages| {
                let to_bytes = |pages: i32| u64::try_from(i64::from(pages) * page_size).unwrap_or(0);
                progress(BackupProgress {
                    done: to_bytes(done_pages),
                    total: Some(to_bytes(total_pages)),
                });
            },
        )
        .map_err(StoreError::Backup)?
    };
    snapshot.rollback().await?;
    src.close().await?;
    dst.close().await?;
    if direction == Direction::Backup {
        std::fs::rename(&write_path, dest)
            .map_err(|e| StoreError::io(format!("cannot move backup to {}", dest.display()), e))?;
    }
    Ok(u64::try_from(i64::from(copied) * page_size).unwrap_or(0))
}

#[expect(unsafe_code, reason = "SQLite's online backup API has no safe wrapper in sqlx")]
mod ffi {
    use std::ffi::CStr;

    use libsqlite3_sys as sys;

    /// Copies every page of `src` into `dest`; returns the page count.
    pub(super) fn backup(
        dest: *mut sys::sqlite3,
        src: *mut sys::sqlite3,
        mut on_step: impl FnMut(i32, i32),
    ) -> Result<i32, String> {
        const PAGES_PER_STEP: i32 = 1024;
        // SAFETY: both handles are open connections locked for our exclusive use by
        // sqlx's `LockedSqliteHandle` for the duration of this call; the backup object
        // is finished before returning on every path.
        unsafe {
            let main = c"main".as_ptr();
            let backup = sys::sqlite3_backup_init(dest, main, src, main);
            if backup.is_null() {
                return Err(message(dest));
            }
            loop {
                let rc = sys::sqlite3_backup_step(backup, PAGES_PER_STEP);
                let total = sys::sqlite3_backup_pagecount(backup);
                let remaining = sys::sqlite3_backup_remaining(backup);
                on_step(total - remaining, total);
                match rc {
                    sys::SQLITE_OK => {}
                    sys::SQLITE_DONE => {
                        let rc = sys::sqlite3_backup_finish(backup);
                        return if rc == sys::SQLITE_OK {
                            Ok(total)
                        } else {
                            Err(message(dest))
                        };
                    }
                    sys::SQLITE_BUSY | sys::SQLITE_LOCKED => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    _ => {
                        sys::sqlite3_backup_finish(backup);
                        return Err(message(dest));
                    }
                }
            }
        }
    }

    fn message(db: *mut sys::sqlite3) -> String {
        // SAFETY: `db` is a valid connection; sqlite3_errmsg returns a NUL-terminated
        // string owned by SQLite, copied before any further call.
        unsafe {
            let text = sys::sqlite3_errmsg(db);
            if text.is_null() {
                "unknown SQLite error".into()
            } else {
                format!("SQLite backup failed: {}", CStr::from_ptr(text).to_string_lossy())
            }
        }
    }
}

/// The URL without its password, and the password for `PGPASSWORD`.
fn split_pg_url(url: &SecretString) -> StoreResult<(String, Option<String>)> {
    let mut parsed =
        url::Url::parse(url.expose_secret()).map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
    let password = parsed
        .password()
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), password))
}

fn pg_tool(name: &str, url: &SecretString) -> StoreResult<(tokio::process::Command, String)> {
    let (url, password) = split_pg_url(url)?;
    let mut command = tokio::process::Command::new(name);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    // A backup and a restore are platform work: the fail-closed row-level security
    // policies show (and accept) tenant rows only to a session that declares it.
    let mut options = std::env::var("PGOPTIONS").unwrap_or_default();
    options.push_str(" -c plinth.scope=platform");
    command.env("PGOPTIONS", options.trim_start());
    command.stderr(Stdio::piped()).kill_on_drop(true);
    Ok((command, url))
}

fn spawn_error(name: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::Backup(format!(
            "{name} was not found on PATH; PostgreSQL backups need the PostgreSQL client tools \
             (for example `apt-get install postgresql-client`) in a version at least that of the server"
        ))
    } else {
        StoreError::io(format!("cannot start {name}"), e)
    }
}

async fn pg_dump(
    url: &SecretString,
    out: &Path,
    progress: &mut (dyn FnMut(BackupProgress) + Send),
) -> StoreResult<u64> {
    let (mut command, url) = pg_tool("pg_dump", url)?;
    command
        .args([
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--enable-row-security",
            "--dbname",
        ])
        .arg(url)
        .stdout(Stdio::piped());
    let mut child = command.spawn().map_err(|e| spawn_error("pg_dump", e))?;
    let partial = out.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| StoreError::io(format!("cannot create {}", partial.display()), e))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| StoreError::Backup("pg_dump gave no output".into()))?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = stdout
            .read(&mut buffer)
            .await
            .map_err(|e| StoreError::io("reading pg_dump output", e))?;
        if n == 0 {
            break;
        }
        file.write_all(&buffer[..n])
            .await
            .map_err(|e| StoreError::io("writing backup", e))?;
        written += n as u64;
        progress(BackupProgress {
            done: written,
            total: None,
        });
    }
    file.sync_all().await.map_err(|e| StoreError::io("writing backup", e))?;
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| StoreError::io("waiting for pg_dump", e))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(StoreError::Backup(format!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    std::fs::rename(&partial, out)
        .map_err(|e| StoreError::io(format!("cannot move backup to {}", out.display()), e))?;
    Ok(written)
}

async fn pg_restore(
    url: &SecretString,
    input: &Path,
    clean: bool,
    progress: &mut (dyn FnMut(BackupProgress) + Send),
) -> StoreResult<u64> {
    let (mut command, url) = pg_tool("pg_restore", url)?;
    command.args([
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
    ]);
    if clean {
        command.args(["--clean", "--if-exists"]);
    }
    command
        .arg("--dbname")
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let total = std::fs::metadata(input)
        .map_err(|e| StoreError::io(format!("cannot read {}", input.display()), e))?
        .len();
    let mut child = command.spawn().map_err(|e| spawn_error("pg_restore", e))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| StoreError::Backup("cannot write to pg_restore".into()))?;
    let mut file = tokio::fs::File::open(input)
        .await
        .map_err(|e| StoreError::io(format!("cannot open {}", input.display()), e))?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    let mut write_failed = false;
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|e| StoreError::io("reading backup", e))?;
        if n == 0 {
            break;
        }
        if stdin.write_all(&buffer[..n]).await.is_err() {
            // pg_restore exited early; its stderr below says why.
            write_failed = true;
            break;
        }
        sent += n as u64;
        progress(BackupProgress {
            done: sent,
            total: Some(total),
        });
    }
    drop(stdin);
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| StoreError::io("waiting for pg_restore", e))?;
    if !output.status.success() || write_failed {
        return Err(StoreError::Backup(format!(
            "pg_restore failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_password_is_split_from_the_url() {
        let url = SecretString::from("postgres://alice:p%40ss@db:5432/app".to_owned());
        let (bare, password) = split_pg_url(&url).unwrap();
        assert_eq!(bare, "postgres://alice@db:5432/app");
        assert_eq!(password.as_deref(), Some("p@ss"));
    }
}
