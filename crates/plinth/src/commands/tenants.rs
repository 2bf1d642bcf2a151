use plinth_core::config::Config;
use plinth_core::{Actor, Timestamp};
use plinth_tenancy::Tenancy;

pub async fn purge(config: &Config, dry_run: bool) -> Result<(), String> {
    let db = super::open_migrated(config).await?;
    let tenancy = Tenancy::new(db.clone());
    let plans = tenancy.purge_plan(Timestamp::now()).await.map_err(|e| e.to_string())?;
    if plans.is_empty() {
        println!("No tenant is due for purging.");
    }
    for plan in &plans {
        let due = plan.purge_after.map(|t| t.to_string()).unwrap_or_default();
        println!("{} {} (deletion requested, due {due})", plan.slug, plan.tenant_id);
        for (table, rows) in &plan.rows {
            println!("    {table:<18} {rows:>8} rows");
        }
        if !dry_run {
            tenancy
                .purge(&Actor::system(), plan.tenant_id)
                .await
                .map_err(|e| e.to_string())?;
            println!("  purged.");
        }
    }
    if dry_run && !plans.is_empty() {
        println!("Dry run: nothing was removed.");
    }
    db.close().await;
    Ok(())
}

pub async fn import(config: &Config, file: &std::path::Path) -> Result<(), String> {
    let archive = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let db = super::open_migrated(config).await?;
    let manifest = Tenancy::new(db.clone())
        .import(&Actor::system(), &archive)
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    println!(
        "Imported tenant {} ({}), exported {}:",
        manifest.tenant_slug, manifest.tenant_id, manifest.exported_at
    );
    for f in &manifest.files {
        println!("    {:<22} {:>8} rows", f.name, f.rows);
    }
    println!("Imported accounts have no password: they set one with \"forgot password\".");
    Ok(())
}
