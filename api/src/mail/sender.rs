//! The `mail` role: leases due mail, sends it, records the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::outbox::seal_context;
use super::Letter;
use crate::vault::Vault;

/// Attempts before a mail is given up on.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a node holds a mail it is sending before another may.
const LEASE_SECS: i32 = 60;
/// Mails leased per round.
const BATCH: i64 = 16;

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server (`--smtp-url`).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a directory (the embedded default).
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    // The SMTP URL may carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Files(dir) => write!(f, "Transport::Files({})", dir.display()),
        }
    }
}

impl Transport {
    /// From `--smtp-url` (`smtp://host:port` for a local relay,
    /// `smtps://user:pass@host` for implicit TLS,
    /// `smtp://user:pass@host:587?tls=required` for STARTTLS), or files
    /// under `dir` without one.
    pub fn from_config(smtp_url: Option<&str>, dir: PathBuf) -> Result<Transport, String> {
        match smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|b| Transport::Smtp(b.timeout(Some(Duration::from_secs(20))).build()))
                .map_err(|e| format!("--smtp-url is not a usable SMTP URL: {e}")),
            None => Ok(Transport::Files(dir)),
        }
    }
}

/// The sender's settings.
#[derive(Debug, Clone)]
pub struct Sender {
    /// Connections to the outbox.
    pub pool: Pool,
    /// Opens the sealed messages.
    pub vault: Vault,
    /// Where mail goes.
    pub transport: Transport,
    /// The `From` of every mail.
    pub from: Mailbox,
    /// How often the outbox is looked at besides wake-ups.
    pub poll: Duration,
}

/// Why one mail was not sent.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the sealed message does not open")]
    Open,
    #[error("building the message: {0}")]
    Build(String),
    #[error("{0}")]
    Transport(String),
}

impl Sender {
    /// Sends due mail until `stop`, woken by `wake` when a handler queues
    /// some.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        if let Transport::Files(dir) = &self.transport {
            tracing::info!(dir = %dir.display(), "no --smtp-url: mail is written as .eml files");
        }
        loop {
            match self.round().await {
                // A full batch: more may be due.
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the mail outbox cannot be read; retrying"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Leases and sends one batch of due mail; returns how many.
    pub async fn round(&self) -> Result<usize, crate::error::ApiError> {
        let client = self.pool.get().await?;
        let due = client
            .query(
                "UPDATE mail_outbox SET leased_until = now() + make_interval(secs => $1), \
                     attempts = attempts + 1 \
                 WHERE mail_id IN ( \
                     SELECT mail_id FROM mail_outbox \
                     WHERE status = 'pending' AND next_attempt_at <= now() \
                       AND (leased_until IS NULL OR leased_until < now()) \
                     ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING mail_id, kind, sealed, attempts",
                &[&f64::from(LEASE_SECS), &BATCH],
            )
            .await?;
        drop(client);
        let n = due.len();
        for row in due {
            let (mail_id, kind, sealed, attempts): (Uuid, String, Option<Vec<u8>>, i32) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let outcome = self.send(mail_id, sealed.as_deref()).await;
            self.record(mail_id, &kind, attempts, outcome).await?;
        }
        Ok(n)
    }

    async fn send(&self, mail_id: Uuid, sealed: Option<&[u8]>) -> Result<(), SendError> {
        let json = sealed
            .and_then(|s| self.vault.open_service(&seal_context(mail_id), s).ok())
            .ok_or(SendError::Open)?;
        let letter: Letter = serde_json::from_slice(&json).map_err(|_| SendError::Open)?;
        let to: Mailbox = letter
            .to
            .parse()
            .map_err(|e| SendError::Build(format!("the recipient: {e}")))?;
        let text = letter.text().map_err(|e| SendError::Build(e.to_string()))?;
        let html = letter.html().map_err(|e| SendError::Build(e.to_string()))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject.clone())
            .message_id(Some(format!("<{mail_id}@gatehouse>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| SendError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transport(e.to_string())),
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| SendError::Transport(format!("{}: {e}", dir.display())))?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| SendError::Transport(e.to_string()))?;
                // Where, never what: the file holds the link.
                tracing::info!(mail = %mail_id, file = %dir.join(format!("{id}.eml")).display(), "mail written");
                Ok(())
            }
        }
    }

    async fn record(
        &self,
        mail_id: Uuid,
        kind: &str,
        attempts: i32,
        outcome: Result<(), SendError>,
    ) -> Result<(), crate::error::ApiError> {
        let client = self.pool.get().await?;
        match outcome {
            Ok(()) => {
                tracing::debug!(mail = %mail_id, kind, "mail sent");
                client
                    .execute(
                        "UPDATE mail_outbox SET status = 'sent', sent_at = now(), sealed = NULL, \
                         leased_until = NULL, last_error = NULL WHERE mail_id = $1",
                        &[&mail_id],
                    )
                    .await?;
            }
            Err(e) => {
                let error: String = e.to_string().chars().take(500).collect();
                let give_up = attempts >= MAX_ATTEMPTS || matches!(e, SendError::Open);
                if give_up {
                    tracing::error!(mail = %mail_id, kind, attempts, error, "mail given up on");
                } else {
                    tracing::warn!(mail = %mail_id, kind, attempts, error, "mail not sent; will retry");
                }
                // Backoff doubles from 5 s: 5, 10, 20 ... about 10 minutes in all.
                let delay = 5.0 * 2f64.powi(attempts.clamp(1, 10) - 1);
                client
                    .execute(
                        "UPDATE mail_outbox SET leased_until = NULL, last_error = $2, \
                             status = CASE WHEN $3 THEN 'failed' ELSE 'pending' END, \
                             sealed = CASE WHEN $3 THEN NULL ELSE sealed END, \
                             next_attempt_at = now() + make_interval(secs => $4) \
                         WHERE mail_id = $1",
                        &[&mail_id, &error, &give_up, &delay],
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
