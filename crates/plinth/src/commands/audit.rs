use plinth_core::config::Config;

pub async fn verify(config: &Config) -> Result<(), String> {
    let db = super::open(config).await?;
    let report = plinth_audit::verify_chain(&db, None).await.map_err(|e| e.to_string())?;
    db.close().await;
    match &report.first_break {
        None => {
            println!(
                "Audit chain `{}` intact: {} records verified.",
                report.chain, report.records
            );
            Ok(())
        }
        Some(first_break) => Err(format!(
            "audit chain `{}` is broken after {} intact records: {}",
            report.chain,
            report.records,
            serde_json::to_string(first_break).unwrap_or_default()
        )),
    }
}
