//! The daily clean-up of spent credentials, so token tables do not grow without bound.

use plinth_core::Timestamp;
use plinth_store::{Db, exec};
use serde::Serialize;
use time::Duration;

use crate::error::IdentityResult;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CleanupReport {
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub one_time_tokens: u64,
    pub emails: u64,
}

/// Removes sessions and refresh tokens revoked, expired or rotated more than 30 days
/// before `now`, one-time tokens used or expired more than 7 days before, and e-mails
/// delivered more than 30 days before.
pub async fn cleanup(db: &Db, now: Timestamp) -> IdentityResult<CleanupReport> {
    let month = now - Duration::days(30);
    let week = now - Duration::days(7);
    let mut tx = db.begin().await?;
    let refresh_tokens = exec!(tx.conn(), c => sqlx::query(
        "DELETE FROM refresh_tokens WHERE revoked_at < $1 OR expires_at < $1 OR used_at < $1"
    ).bind(month).execute(c).await)?;
    let sessions = exec!(tx.conn(), c => sqlx::query(
        "DELETE FROM sessions WHERE revoked_at < $1 OR expires_at < $1"
    ).bind(month).execute(c).await)?;
    let one_time_tokens = exec!(tx.conn(), c => sqlx::query(
        "DELETE FROM one_time_tokens WHERE used_at < $1 OR expires_at < $1"
    ).bind(week).execute(c).await)?;
    let emails = exec!(tx.conn(), c => sqlx::query(
        "DELETE FROM email_outbox WHERE sent_at < $1"
    ).bind(month).execute(c).await)?;
    tx.commit().await?;
    Ok(CleanupReport {
        sessions,
        refresh_tokens,
        one_time_tokens,
        emails,
    })
}
