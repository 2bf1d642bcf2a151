use indicatif::{ProgressBar, ProgressStyle};
use plinth_core::config::Config;

pub async fn run(config: &Config, dry_run: bool) -> Result<(), String> {
    let db = super::open(config).await?;
    let status = db.migration_status().await.map_err(|e| e.to_string())?;
    if status.pending.is_empty() {
        println!(
            "The database is up to date ({} migrations applied).",
            status.applied.len()
        );
        return Ok(());
    }
    if dry_run {
        println!("{} pending migration(s):", status.pending.len());
        for (version, name) in &status.pending {
            println!("  {version:>4}  {name}");
        }
        return Ok(());
    }
    let bar = ProgressBar::new(status.pending.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let applied = db
        .migrate(|m| {
            bar.set_message(m.name);
            bar.inc(1);
        })
        .await
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!("Applied {applied} migration(s).");
    db.close().await;
    Ok(())
}
