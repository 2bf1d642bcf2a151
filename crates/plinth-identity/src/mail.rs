//! E-mail: templates (text and HTML), a transactional queue, and the SMTP sender.
//!
//! `enqueue` writes the message into `email_outbox` inside the caller's transaction, so
//! a message exists exactly when the change that caused it was committed. When SMTP is
//! configured, `Sender::run` delivers queued messages with retries (8 attempts over
//! about 4 hours); otherwise the queue is a development outbox read with
//! `plinth outbox list`.

use std::time::Duration as StdDuration;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use plinth_core::Timestamp;
use plinth_store::{Conn, Db, Tx, exec, on};
use serde::Serialize;
use time::Duration;

use crate::error::{IdentityError, IdentityResult};

const PRODUCT: &str = "Plinth";
const MAX_ATTEMPTS: i64 = 8;

/// A rendered message.
pub struct Email {
    pub template: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The messages Plinth sends. Fields are plain text; HTML escaping is the template's.
pub enum EmailKind {
    Verify {
        name: String,
        email: String,
        link: String,
    },
    Reset {
        name: String,
        link: String,
    },
    SignupExisting {
        name: String,
        email: String,
        link: String,
    },
    NewSignIn {
        name: String,
        ip: String,
        user_agent: String,
        time: String,
        link: String,
    },
    MfaChanged {
        name: String,
        change: String,
        link: String,
    },
    Invite {
        inviter: String,
        tenant: String,
        link: String,
    },
    WebhookDisabled {
        tenant: String,
        url: String,
        reason: String,
        link: String,
    },
}

mod templates {
    use askama::Template;

    macro_rules! pair {
        ($text:ident, $html:ident, $text_path:literal, $html_path:literal, { $($field:ident),* }) => {
            #[derive(Template)]
            #[template(path = $text_path, escape = "none")]
            pub struct $text<'a> {
                pub product: &'a str,
                pub base_url: &'a str,
                $( pub $field: &'a str, )*
            }

            #[derive(Template)]
            #[template(path = $html_path)]
            pub struct $html<'a> {
                pub product: &'a str,
                pub base_url: &'a str,
                $( pub $field: &'a str, )*
            }
        };
    }

    pair!(VerifyText, VerifyHtml, "email/verify.txt", "email/verify.html", { name, email, link });
    pair!(ResetText, ResetHtml, "email/reset.txt", "email/reset.html", { name, link });
    pair!(SignupExistingText, SignupExistingHtml, "email/signup_existing.txt", "email/signup_existing.html", { name, email, link });
    pair!(NewSignInText, NewSignInHtml, "email/new_sign_in.txt", "email/new_sign_in.html", { name, ip, user_agent, time, link });
    pair!(MfaChangedText, MfaChangedHtml, "email/mfa_changed.txt", "email/mfa_changed.html", { name, change, link });
    pair!(InviteText, InviteHtml, "email/invite.txt", "email/invite.html", { inviter, tenant, link });
    pair!(WebhookDisabledText, WebhookDisabledHtml, "email/webhook_disabled.txt", "email/webhook_disabled.html", { tenant, url, reason, link });
}

fn render(text: impl Template, html: impl Template) -> IdentityResult<(String, String)> {
    let text = text.render().map_err(|e| IdentityError::Mail(e.to_string()))?;
    let html = html.render().map_err(|e| IdentityError::Mail(e.to_string()))?;
    Ok((text, html))
}

impl EmailKind {
    pub fn render(&self, base_url: &str) -> IdentityResult<Email> {
        use templates::*;
        let p = PRODUCT;
        let b = base_url;
        let (template, subject, (text, html)) = match self {
            EmailKind::Verify { name, email, link } => (
                "verify",
                format!("Confirm your e-mail address for {p}"),
                render(
                    VerifyText {
                        product: p,
                        base_url: b,
                        name,
                        email,
                        link,
                    },
                    VerifyHtml {
                        product: p,
                        base_url: b,
                        name,
                        email,
                        link,
                    },
                )?,
            ),
            EmailKind::Reset { name, link } => (
                "reset",
                format!("Reset your {p} password"),
                render(
                    ResetText {
                        product: p,
                        base_url: b,
                        name,
                        link,
                    },
                    ResetHtml {
                        product: p,
                        base_url: b,
                        name,
                        link,
                    },
                )?,
            ),
            EmailKind::SignupExisting { name, email, link } => (
                "signup_existing",
                format!("You already have a {p} account"),
                render(
                    SignupExistingText {
                        product: p,
                        base_url: b,
                        name,
                        email,
                        link,
                    },
                    SignupExistingHtml {
                        product: p,
                        base_url: b,
                        name,
                        email,
                        link,
                    },
                )?,
            ),
            EmailKind::NewSignIn {
                name,
                ip,
                user_agent,
                time,
                link,
            } => (
                "new_sign_in",
                format!("New sign-in to your {p} account"),
                render(
                    NewSignInText {
                        product: p,
                        base_url: b,
                        name,
                        ip,
                        user_agent,
                        time,
                        link,
                    },
                    NewSignInHtml {
                        product: p,
                        base_url: b,
                        name,
                        ip,
                        user_agent,
                        time,
                        link,
                    },
                )?,
            ),
            EmailKind::MfaChanged { name, change, link } => (
                "mfa_changed",
                format!("Two-step verification changed on your {p} account"),
                render(
                    MfaChangedText {
                        product: p,
                        base_url: b,
                        name,
                        change,
                        link,
                    },
                    MfaChangedHtml {
                        product: p,
                        base_url: b,
                        name,
                        change,
                        link,
                    },
                )?,
            ),
            EmailKind::Invite { inviter, tenant, link } => (
                "invite",
                format!("{inviter} invited you to {tenant}"),
                render(
                    InviteText {
                        product: p,
                        base_url: b,
                        inviter,
                        tenant,
                        link,
                    },
                    InviteHtml {
                        product: p,
                        base_url: b,
                        inviter,
                        tenant,
                        link,
                    },
                )?,
            ),
            EmailKind::WebhookDisabled {
                tenant,
                url,
                reason,
                link,
            } => (
                "webhook_disabled",
                format!("A webhook endpoint of {tenant} was disabled"),
                render(
                    WebhookDisabledText {
                        product: p,
                        base_url: b,
                        tenant,
                        url,
                        reason,
                        link,
                    },
                    WebhookDisabledHtml {
                        product: p,
                        base_url: b,
                        tenant,
                        url,
                        reason,
                        link,
                    },
                )?,
            ),
        };
        Ok(Email {
            template,
            subject,
            text,
            html,
        })
    }
}

/// Queues `email` for `to` inside `tx`.
pub async fn enqueue(tx: &mut Tx, to: &str, email: &Email) -> IdentityResult<()> {
    let now = Timestamp::now();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO email_outbox (id, template, to_address, subject, text_body, html_body, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    ).bind(uuid::Uuid::now_v7()).bind(email.template).bind(to).bind(&email.subject)
    .bind(&email.text).bind(&email.html).bind(now).execute(c).await)?;
    Ok(())
}

/// A queued message, as `plinth outbox list` and tests read it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QueuedEmail {
    pub id: uuid::Uuid,
    pub template: String,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub sent_at: Option<Timestamp>,
    pub failed_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

pub async fn list_outbox(conn: Conn<'_>, limit: i64) -> IdentityResult<Vec<QueuedEmail>> {
    Ok(on!(conn, c => sqlx::query_as(
        "SELECT id, template, to_address, subject, text_body, created_at, attempts, sent_at, failed_at, last_error
         FROM email_outbox ORDER BY created_at DESC LIMIT $1"
    ).bind(limit).fetch_all(c).await)?)
}

/// Delivers queued messages over SMTP.
pub struct Sender {
    db: Db,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: uuid::Uuid,
    to_address: String,
    subject: String,
    text_body: String,
    html_body: String,
    attempts: i64,
}

impl Sender {
    /// `url` is `smtp://`, `smtps://` or `smtp://…?tls=required` as lettre reads it.
    pub fn new(db: Db, url: &str, from: &str) -> IdentityResult<Sender> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| IdentityError::Mail(format!("invalid SMTP URL: {e}")))?
            .timeout(Some(StdDuration::from_secs(20)))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| IdentityError::Mail(format!("invalid sender address {from:?}: {e}")))?;
        Ok(Sender { db, transport, from })
    }

    /// Sends what is due; returns how many were sent.
    pub async fn deliver_due(&self) -> IdentityResult<usize> {
        let now = Timestamp::now();
        let mut conn = self.db.read().await?;
        let due: Vec<Pending> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, to_address, subject, text_body, html_body, attempts FROM email_outbox
             WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
             ORDER BY next_attempt_at LIMIT 50"
        ).bind(now).fetch_all(c).await)?;
        drop(conn);
        let mut sent = 0;
        for message in due {
            let result = self.send(&message).await;
            let mut tx = self.db.begin().await?;
            match result {
                Ok(()) => {
                    exec!(tx.conn(), c => sqlx::query(
                        "UPDATE email_outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2"
                    ).bind(Timestamp::now()).bind(message.id).execute(c).await)?;
                    sent += 1;
                }
                Err(error) => {
                    let attempts = message.attempts + 1;
                    tracing::warn!(email.id = %message.id, attempts, error = %error, "e-mail delivery failed");
                    let (next, failed) = if attempts >= MAX_ATTEMPTS {
                        (now, Some(Timestamp::now()))
                    } else {
                        // 1, 2, 4 … 64 minutes between attempts.
                        (now + Duration::minutes(1 << (attempts - 1).min(6)), None)
                    };
                    exec!(tx.conn(), c => sqlx::query(
                        "UPDATE email_outbox SET attempts = $1, next_attempt_at = $2, failed_at = $3, last_error = $4 WHERE id = $5"
                    ).bind(attempts).bind(next).bind(failed).bind(error.chars().take(500).collect::<String>())
                    .bind(message.id).execute(c).await)?;
                }
            }
            tx.commit().await?;
        }
        Ok(sent)
    }

    async fn send(&self, message: &Pending) -> Result<(), String> {
        let to: Mailbox = message
            .to_address
            .parse()
            .map_err(|e| format!("invalid recipient: {e}"))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .multipart(MultiPart::alternative_plain_html(
                message.text_body.clone(),
                message.html_body.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Delivers due messages every `interval` until the task is dropped.
    pub async fn run(self, interval: StdDuration) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "e-mail sender");
            }
            tokio::time::sleep(interval).await;
        }
    }
}
