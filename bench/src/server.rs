//! A Gatehouse server in the bench process over its own database, with a
//! signed-in platform staff member, for the scenarios measured over HTTP.

use std::time::Duration;

use anyhow::Context;
use event_store::postgres::{PgStore, PgStoreOptions};

const KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// A running server and a staff session on it.
pub struct BenchServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client.
    pub http: reqwest::Client,
    /// The server's log, for seeding and baselines.
    pub store: PgStore,
    /// A session token of a user who is platform staff.
    pub token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), api::server::ServerError>>,
}

/// The gateway token the bench server accepts.
pub const GATEWAY_TOKEN: &str = "bench-gateway-token";

impl BenchServer {
    /// Starts a server over `config` (migrated and projected by the
    /// server itself) and signs up a staff member.
    pub async fn start(
        config: tokio_postgres::Config,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        Self::start_node(config, data_dir, None).await
    }

    /// A server over a database a bench server already used: signs in as
    /// its staff member instead of signing up again.
    pub async fn reopen(
        config: tokio_postgres::Config,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let mut server = Self::start_node(config, data_dir, Some(String::new())).await?;
        let session: serde_json::Value = server
            .http
            .post(format!("{}/v1/sessions", server.base))
            .json(&serde_json::json!({"email": "bench@example.com", "password": "correct horse battery"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        server.token = session["token"]
            .as_str()
            .context("a session token")?
            .to_owned();
        Ok(server)
    }

    /// Another node over the same database as `self`: its own store,
    /// index and LISTEN connection, with `self`'s staff session.
    pub async fn second_node(
        &self,
        config: tokio_postgres::Config,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        Self::start_node(config, data_dir, Some(self.token.clone())).await
    }

    async fn start_node(
        config: tokio_postgres::Config,
        data_dir: &std::path::Path,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        if token.is_none() {
            // A first node over a fresh database: what an earlier run left
            // in the data directory belongs to that run's database (its
            // mail holds spent links; its checkpoint witness would read
            // as this log having gone backwards).
            let _ = std::fs::remove_dir_all(data_dir.join("mail"));
            let _ = std::fs::remove_file(data_dir.join(api::audit::key::WITNESS_FILE));
        }
        let store = PgStore::connect(config.clone(), PgStoreOptions::default()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let args = api::config::ServeArgs {
            event_store: "postgres".into(),
            db: api::config::DatabaseArgs {
                database_url: None,
                data_dir: data_dir.to_path_buf(),
                pool_size: 48,
            },
            listen: listener.local_addr()?,
            open: false,
            kek: Some(KEK.into()),
            previous_kek: None,
            body_limit: 1024 * 1024,
            read_wait_ms: 300_000,
            session_ttl_hours: 24,
            session_idle_minutes: 60,
            public_url: None,
            smtp_url: None,
            mail_from: "Gatehouse Bench <bench@localhost>".into(),
            mail: true,
            sign_ups_per_hour: 1_000_000,
            mails_per_address_per_hour: 1_000,
            invitation_ttl_secs: 3600,
            projections: true,
            auto_grant_sandbox: false,
            log_format: api::config::LogFormat::Text,
            command_cache_entries: 10_000,
            command_cache_mb: 256,
            key_prefix: "gh".into(),
            log_poll_ms: 1000,
            notice_interval_ms: 10_000,
            rotation_batch: 100,
            rotation_pause_ms: 0,
            oauth_issuer: "gatehouse".into(),
            oauth_audience: "platform".into(),
            oauth_token_ttl_secs: 900,
            oauth_token_rate: 10,
            secret_scanning_key: Vec::new(),
            secret_scanning_revoke_live: false,
            gateway_token: vec![GATEWAY_TOKEN.into()],
            usage_flush_secs: 60,
            webhooks: true,
            webhook_workers: 64,
            webhook_workers_per_org: 0,
            // The bench publishes as fast as it can: no quota in its way.
            publish_per_minute: u64::MAX / 2,
            publish_bytes_per_minute: u64::MAX / 2,
            webhook_timeout_ms: 15_000,
            webhook_lease_ms: 60_000,
            webhook_schedule: delivery::schedule::Schedule::default(),
            webhook_disable_after_secs: 5 * 24 * 3600,
            // The benchmark's receiver listens on loopback.
            webhook_allow_private: true,
            webhook_proxy: None,
            webhook_clock: Default::default(),
            webhook_retention_days: 90,
            audit_signing_key: None,
            checkpoint_interval_secs: 60,
            client_ip_header: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(api::server::run(args, config, listener, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if let Some(token) = token {
            return Ok(BenchServer {
                base,
                http,
                store,
                token,
                stop,
                task,
            });
        }
        let credentials =
            serde_json::json!({"email": "bench@example.com", "password": "correct horse battery"});
        let mut signup = credentials.clone();
        signup["name"] = "Bench".into();
        http.post(format!("{base}/v1/users"))
            .json(&signup)
            .send()
            .await?
            .error_for_status()?;
        let session: serde_json::Value = http
            .post(format!("{base}/v1/sessions"))
            .json(&credentials)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        // Staff must have proven their address: open the mailed link,
        // signed in as the link requires.
        let link_token = verification_token(&data_dir.join("mail")).await?;
        http.post(format!("{base}/v1/email-verifications"))
            .bearer_auth(session["token"].as_str().unwrap_or_default())
            .json(&serde_json::json!({ "token": link_token }))
            .send()
            .await?
            .error_for_status()?;
        api::admin::create_staff(
            &store,
            &api::vault::Vault::new([7u8; 32]),
            "bench@example.com",
        )
        .await?;
        let token = session["token"]
            .as_str()
            .context("a session token")?
            .to_owned();
        // The grant is an event: staff routes answer once the accounts read
        // model has applied it.
        let granted = std::time::Instant::now();
        loop {
            let status = http
                .get(format!("{base}/v1/staff/audit?limit=1"))
                .bearer_auth(&token)
                .send()
                .await?
                .status();
            if status.is_success() {
                break;
            }
            anyhow::ensure!(
                granted.elapsed() < Duration::from_secs(30),
                "the staff grant never reached the read model ({status})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(BenchServer {
            base,
            http,
            store,
            token,
            stop,
            task,
        })
    }

    /// `method path` with the staff token and a JSON body, after the read
    /// models reach `at`; fails on an error status.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        at: u64,
    ) -> anyhow::Result<(serde_json::Value, u64)> {
        self.clone_client().call(method, path, body, at).await
    }

    /// A client of this server with its staff session, to move into a task.
    pub fn clone_client(&self) -> Caller {
        Caller {
            base: self.base.clone(),
            http: self.http.clone(),
            token: self.token.clone(),
        }
    }

    /// A connection to the server's database.
    pub async fn pool_client(&self) -> anyhow::Result<deadpool_postgres::Client> {
        Ok(self.store.pool().get().await?)
    }

    /// Stops the server.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// A server's address and staff session.
#[derive(Clone)]
pub struct Caller {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Caller {
    /// `method path` with the staff token and a JSON body, after the read
    /// models reach `at`; fails on an error status.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        at: u64,
    ) -> anyhow::Result<(serde_json::Value, u64)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("gatehouse-min-position", at.to_string());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status();
        let position = r
            .headers()
            .get("gatehouse-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(at);
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {body}");
        Ok((body, position))
    }
}

/// The token of the verification link the server wrote (as an `.eml`
/// file, without `--smtp-url`) under `dir`, waiting up to 20 s for it.
async fn verification_token(dir: &std::path::Path) -> anyhow::Result<String> {
    for _ in 0..800 {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let raw = std::fs::read(entry.path())?;
            let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
                continue;
            };
            let text = message.body_text(0).unwrap_or_default();
            if let Some(token) = text
                .split_whitespace()
                .find_map(|w| w.split("/verify-email?token=").nth(1))
            {
                return Ok(token.to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("no verification mail under {}", dir.display())
}
