use indicatif::{ProgressBar, ProgressStyle};
use plinth_audit::VerifyReport;
use plinth_core::config::Config;
use plinth_tenancy::Tenancy;

/// Verifies every chain (or one tenant's), reporting each broken chain's first break.
pub async fn verify(config: &Config, tenant: Option<&str>) -> Result<(), String> {
    let db = super::open(config).await?;
    let chains = match tenant {
        Some(reference) => {
            let id = Tenancy::new(db.clone())
                .tenant_id_of(reference)
                .await
                .map_err(|e| format!("tenant {reference}: {e}"))?;
            vec![plinth_audit::chain_of(Some(id))]
        }
        None => plinth_audit::chains(&db).await.map_err(|e| e.to_string())?,
    };
    let bar = ProgressBar::new(chains.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} chains {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut broken: Vec<VerifyReport> = Vec::new();
    let mut records = 0u64;
    for chain in &chains {
        bar.set_message(chain.clone());
        // Each chain is verified to its first break; the others are still checked.
        let (report, _) = plinth_audit::verify_named(&db, chain, None)
            .await
            .map_err(|e| e.to_string())?;
        records += report.records;
        if !report.is_intact() {
            broken.push(report);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    db.close().await;
    for report in &broken {
        if let Some(first_break) = &report.first_break {
            eprintln!(
                "chain {}: {} at record {}: {first_break}",
                report.chain,
                first_break.kind(),
                first_break.seq()
            );
        }
    }
    if broken.is_empty() {
        println!("{} audit chain(s) intact: {records} records verified.", chains.len());
        Ok(())
    } else {
        Err(format!("{} of {} audit chain(s) broken", broken.len(), chains.len()))
    }
}
