use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use plinth_core::config::Config;
use plinth_store::BackupProgress;

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn update(bar: &ProgressBar, progress: BackupProgress) {
    match progress.total {
        Some(total) => bar.set_length(total),
        None => bar.set_length(progress.done.max(1)),
    }
    bar.set_position(progress.done);
}

pub async fn backup(config: &Config, out: &Path) -> Result<(), String> {
    let db = super::open(config).await?;
    let bar = progress_bar();
    let written = plinth_store::backup_to_file(&db, config.database_url.as_ref(), out, &mut |p| update(&bar, p))
        .await
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!("Backup written to {} ({written} bytes).", out.display());
    db.close().await;
    Ok(())
}

pub async fn restore(config: &Config, file: &Path, force: bool) -> Result<(), String> {
    let db = super::open(config).await?;
    let bar = progress_bar();
    let read =
        plinth_store::restore_from_file(&db, config.database_url.as_ref(), file, force, &mut |p| update(&bar, p))
            .await
            .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let status = db.migration_status().await.map_err(|e| e.to_string())?;
    println!(
        "Restored {} ({read} bytes); {} migration(s) pending, applied on the next start.",
        file.display(),
        status.pending.len()
    );
    db.close().await;
    Ok(())
}
