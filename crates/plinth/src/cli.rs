use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use plinth_core::config::{ConfigLayer, LogFormat};

#[derive(Parser)]
#[command(
    name = "plinth",
    version,
    about = "The platform core of multi-tenant SaaS products, in one binary."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Accepted by every subcommand, so all of them act on the database `serve` uses.
#[derive(Args, Clone)]
pub struct GlobalArgs {
    /// Configuration file (default: ./plinth.toml when present; also PLINTH_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (PLINTH_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log output format (PLINTH_LOG_FORMAT).
    #[arg(long, global = true, value_name = "pretty|json")]
    pub log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (PLINTH_BIND).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
    },
    /// Apply pending database migrations.
    Migrate {
        /// List pending migrations without applying them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Write an online backup of the database.
    Backup {
        /// The file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore the database from a backup written by `plinth backup`.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Overwrite a database that already holds data.
        #[arg(long)]
        force: bool,
    },
    /// Show the effective configuration, or with --list every setting and its variable.
    Config {
        #[arg(long)]
        list: bool,
    },
    /// Verify the tamper-evident audit chains.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage the keys that sign access tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Seed a demo: tenants with portals, members in every role, workspaces, flags.
    /// For trying Plinth out; every demo account shares one published password.
    Demo,
    /// Tenant maintenance.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// The e-mail queue (the development outbox when no SMTP server is configured).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; the previous one stays published until its tokens expire.
    Rotate,
}

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Purge every tenant whose deletion grace period has passed (the server also does
    /// this daily).
    Purge {
        /// List what would be removed, row counts per table, without removing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Import a tenant archive (downloaded from GET /api/v1/tenants/{tenant}/export).
    Import { file: std::path::PathBuf },
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// List queued and sent e-mail, newest first, with their text.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a super-admin. The password is read from a prompt, or from standard
    /// input with --password-stdin; never from a flag.
    CreateSuperadmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute every audit chain (the platform's and each tenant's) and report the
    /// first break of each broken one; exits non-zero when any is broken.
    Verify {
        /// Verify one tenant's chain only (id or slug).
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Verify an NDJSON export instead of the database (no database needed).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["tenant", "against"])]
        file: Option<std::path::PathBuf>,
        /// Check the chains against signed heads kept outside Plinth (the JSON of
        /// `plinth audit heads` or `GET /api/v1/audit/heads`): catches a chain rewritten
        /// and recomputed by someone with database access.
        #[arg(long, value_name = "FILE", conflicts_with = "tenant")]
        against: Option<std::path::PathBuf>,
    },
    /// Prune every chain's records past their retention now (the server does it daily),
    /// each batch verified first and replaced by a signed checkpoint.
    Prune,
    /// Print the newest signed head of every chain as JSON, to keep outside Plinth.
    Heads {
        /// Sign the heads that moved since their last signature first.
        #[arg(long)]
        sign: bool,
    },
    /// Write a chain's records, oldest first, to standard output as NDJSON or CSV, each
    /// with `seq`, `prev_hash` and `hash` (verify it with `audit verify --file`).
    Export {
        /// A tenant's chain (id or slug); the platform chain without it.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// `ndjson` or `csv`.
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// Records at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Records before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// An action, or a prefix ending in `.*`.
        #[arg(long)]
        action: Option<String>,
    },
}

impl GlobalArgs {
    pub fn flag_layer(&self) -> ConfigLayer {
        ConfigLayer {
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            ..ConfigLayer::default()
        }
    }
}
