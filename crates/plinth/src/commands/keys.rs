use plinth_core::config::Config;
use plinth_identity::MasterKey;

pub async fn rotate(config: &Config) -> Result<(), String> {
    let db = super::open_migrated(config).await?;
    let master = MasterKey::load(config.master_key.as_ref(), &config.data_dir).map_err(|e| e.to_string())?;
    master.check_against(&db).await.map_err(|e| e.to_string())?;
    let lifetime = time::Duration::seconds(i64::try_from(config.access_token_ttl_secs).unwrap_or(600));
    let (kid, retired) = plinth_identity::crypto::signing::rotate(&db, &master, lifetime)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "New signing key {kid}; {retired} previous key(s) keep verifying for {} s and then leave the JWKS.",
        lifetime.whole_seconds() + 60
    );
    db.close().await;
    Ok(())
}
