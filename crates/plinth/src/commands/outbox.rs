use plinth_core::config::Config;

pub async fn list(config: &Config, limit: i64) -> Result<(), String> {
    let db = super::open_migrated(config).await?;
    let mut conn = db.read().await.map_err(|e| e.to_string())?;
    let emails = plinth_identity::mail::list_outbox(conn.conn(), limit.clamp(1, 1000))
        .await
        .map_err(|e| e.to_string())?;
    drop(conn);
    if emails.is_empty() {
        println!("The outbox is empty.");
    }
    for email in emails {
        let status = match (email.sent_at, email.failed_at) {
            (Some(at), _) => format!("sent {at}"),
            (None, Some(at)) => format!("failed {at}: {}", email.last_error.unwrap_or_default()),
            (None, None) if config.smtp_url.is_some() => format!("queued ({} attempts)", email.attempts),
            (None, None) => "kept (no SMTP server configured)".to_owned(),
        };
        println!("── {} · {} · {status}", email.created_at, email.template);
        println!(
            "To: {}\nSubject: {}\n\n{}\n",
            email.to_address,
            email.subject,
            email.text_body.trim_end()
        );
    }
    db.close().await;
    Ok(())
}
