mod admin;
mod audit;
mod backup;
mod config;
mod demo;
mod keys;
mod migrate;
mod outbox;
mod serve;
mod tenants;

use plinth_core::config::{Config, ConfigSources};
use plinth_store::{Db, DbOptions};

use plinth_identity::{Identity, IdentityConfig, MasterKey};

use crate::cli::{AdminCommand, AuditCommand, Cli, Command, KeysCommand, OutboxCommand, TenantsCommand};

pub async fn run(cli: Cli) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut flags = cli.global.flag_layer();
    if let Command::Serve { bind: Some(bind) } = &cli.command {
        flags.bind = Some(*bind);
    }
    let env = |key: &str| std::env::var(key).ok();
    let config = Config::load(ConfigSources {
        file: cli.global.config.as_deref(),
        env: &env,
        flags,
    })
    .map_err(|e| e.to_string())?;
    crate::logging::init(&config)?;
    match cli.command {
        Command::Serve { .. } => serve::run(config, started).await,
        Command::Migrate { dry_run } => migrate::run(&config, dry_run).await,
        Command::Admin {
            command:
                AdminCommand::CreateSuperadmin {
                    email,
                    display_name,
                    password_stdin,
                },
        } => admin::create_superadmin(&config, email, display_name, password_stdin).await,
        Command::Backup { out } => backup::backup(&config, &out).await,
        Command::Restore { file, force } => backup::restore(&config, &file, force).await,
        Command::Config { list } => {
            config::show(&config, list);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { file: Some(file), .. },
        } => audit::verify_file(&file),
        Command::Audit {
            command: AuditCommand::Verify {
                against: Some(heads), ..
            },
        } => audit::verify_against(&config, &heads).await,
        Command::Audit {
            command: AuditCommand::Verify { tenant, .. },
        } => audit::verify(&config, tenant.as_deref()).await,
        Command::Audit {
            command: AuditCommand::Heads { sign },
        } => audit::heads(&config, sign).await,
        Command::Audit {
            command: AuditCommand::Prune,
        } => audit::prune(&config).await,
        Command::Audit {
            command:
                AuditCommand::Export {
                    tenant,
                    format,
                    since,
                    until,
                    action,
                },
        } => {
            let request = audit::ExportRequest {
                tenant,
                format,
                since,
                until,
                action,
            };
            audit::export(&config, request).await
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys::rotate(&config).await,
        Command::Demo => demo::run(&config).await,
        Command::Tenants {
            command: TenantsCommand::Purge { dry_run },
        } => tenants::purge(&config, dry_run).await,
        Command::Tenants {
            command: TenantsCommand::Import { file },
        } => tenants::import(&config, &file).await,
        Command::Outbox {
            command: OutboxCommand::List { limit },
        } => outbox::list(&config, limit).await,
    }
}

/// Opens the configured database without migrating it.
pub async fn open(config: &Config) -> Result<Db, String> {
    let options = DbOptions::from_config(config);
    Db::open(&options)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// Opens the configured database and brings its schema up to date.
pub async fn open_migrated(config: &Config) -> Result<Db, String> {
    let db = open(config).await?;
    db.migrate(|_| {}).await.map_err(|e| e.to_string())?;
    Ok(db)
}

/// The identity service over `db`, with the master key from the configuration.
pub async fn identity(config: &Config, db: &Db, base_url: String) -> Result<Identity, String> {
    let master = MasterKey::load(config.master_key.as_ref(), &config.data_dir).map_err(|e| e.to_string())?;
    Identity::new(db.clone(), IdentityConfig::from_config(config, base_url), master)
        .await
        .map_err(|e| e.to_string())
}
