//! A Gatehouse server for one test: in this process on port 0, over the
//! test's own database, stopped when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;

use api::config::{DatabaseArgs, LogFormat, ServeArgs};
use tokio::sync::oneshot;

use crate::TestDb;

/// A fixed key-encryption key for tests (32 bytes of 0x07, base64).
pub const TEST_KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// A fixed audit signing key for tests (an Ed25519 seed of 32 bytes of
/// 0x09, base64).
pub const TEST_AUDIT_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/// A running test server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for it.
    pub http: reqwest::Client,
    /// The mail it wrote (without `--smtp-url`).
    pub mail: crate::mail::Inbox,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Server options the tests change.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest body.
    pub body_limit: usize,
    /// Longest read-your-writes wait.
    pub read_wait_ms: u64,
    /// Run projections.
    pub projections: bool,
    /// Invitation lifetime, in seconds.
    pub invitation_ttl_secs: i64,
    /// Usage flush interval, in seconds.
    pub usage_flush_secs: u64,
    /// GitHub secret scanning keys (`<id>=<base64 DER>`).
    pub secret_scanning_keys: Vec<String>,
    /// Access token lifetime, in seconds.
    pub oauth_token_ttl_secs: i64,
    /// Run the webhook feeder and dispatcher.
    pub webhooks: bool,
    /// Webhook retry delays (compressed for tests).
    pub webhook_schedule: String,
    /// Timeout of one webhook attempt, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// Endpoints delivered to at once, and of one organisation.
    pub webhook_workers: (u64, u64),
    /// Messages an organisation may publish a minute.
    pub publish_per_minute: u64,
    /// The clock delivery reads.
    pub webhook_clock: delivery::Clock,
    /// The backstop re-read of the log (and the rewind watcher's period).
    pub log_poll_ms: u64,
    /// How long a webhook lease lasts, in milliseconds.
    pub webhook_lease_ms: u64,
    /// Failing this long disables an endpoint, in seconds.
    pub webhook_disable_after_secs: u64,
    /// Let endpoints reach loopback (the tests' receivers listen there).
    pub webhook_allow_private: bool,
    /// The key-encryption key (base64).
    pub kek: String,
    /// The previous one, during a rotation.
    pub previous_kek: Option<String>,
    /// The audit signing key (base64 Ed25519 seed).
    pub audit_signing_key: String,
    /// Seconds between signed checkpoints.
    pub checkpoint_interval_secs: u64,
    /// An SMTP server to send mail through; without one, mail is written
    /// as `.eml` files under the data directory (see [`TestServer::mail`]).
    pub smtp_url: Option<String>,
    /// Minutes a session may sit unused.
    pub session_idle_minutes: i64,
    /// The header naming the client's address (`x-forwarded-for`), so a
    /// test can speak from several addresses.
    pub client_ip_header: Option<String>,
    /// Mails of one kind to one address per hour.
    pub mails_per_address_per_hour: u32,
}

/// The gateway token every test server accepts.
pub const GATEWAY_TOKEN: &str = "test-gateway-token";

impl Default for Options {
    fn default() -> Self {
        Options {
            body_limit: 1024 * 1024,
            read_wait_ms: 5000,
            projections: true,
            invitation_ttl_secs: 7 * 24 * 3600,
            usage_flush_secs: 60,
            secret_scanning_keys: Vec::new(),
            oauth_token_ttl_secs: 900,
            webhooks: true,
            webhook_schedule: "0s,200ms,400ms".into(),
            webhook_timeout_ms: 2000,
            webhook_workers: (32, 0),
            publish_per_minute: 6_000,
            webhook_clock: delivery::Clock::default(),
            log_poll_ms: 1000,
            webhook_lease_ms: 6000,
            webhook_disable_after_secs: 5 * 24 * 3600,
            webhook_allow_private: true,
            kek: TEST_KEK.into(),
            previous_kek: None,
            audit_signing_key: TEST_AUDIT_KEY.into(),
            checkpoint_interval_secs: 60,
            smtp_url: None,
            session_idle_minutes: 60,
            client_ip_header: None,
            mails_per_address_per_hour: 1_000,
        }
    }
}

/// The arguments a test server runs with.
pub fn serve_args(data_dir: PathBuf, options: &Options) -> ServeArgs {
    ServeArgs {
        event_store: "postgres".into(),
        db: DatabaseArgs {
            database_url: None,
            data_dir,
            pool_size: 8,
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        open: false,
        kek: Some(options.kek.clone()),
        previous_kek: options.previous_kek.clone(),
        body_limit: options.body_limit,
        read_wait_ms: options.read_wait_ms,
        session_ttl_hours: 24,
        session_idle_minutes: options.session_idle_minutes,
        public_url: None,
        smtp_url: options.smtp_url.clone(),
        mail_from: "Gatehouse Tests <gatehouse@tests.local>".into(),
        mail: true,
        // The tests sign many accounts up from one address.
        sign_ups_per_hour: 1_000_000,
        mails_per_address_per_hour: options.mails_per_address_per_hour,
        invitation_ttl_secs: options.invitation_ttl_secs,
        projections: options.projections,
        auto_grant_sandbox: false,
        log_format: LogFormat::Text,
        command_cache_entries: 10_000,
        command_cache_mb: 256,
        key_prefix: "gh".into(),
        log_poll_ms: options.log_poll_ms,
        notice_interval_ms: 500,
        rotation_batch: 100,
        rotation_pause_ms: 0,
        oauth_issuer: "gatehouse".into(),
        oauth_audience: "platform".into(),
        oauth_token_ttl_secs: options.oauth_token_ttl_secs,
        oauth_token_rate: 10,
        secret_scanning_key: options.secret_scanning_keys.clone(),
        secret_scanning_revoke_live: false,
        gateway_token: vec![GATEWAY_TOKEN.into()],
        usage_flush_secs: options.usage_flush_secs,
        webhooks: options.webhooks,
        webhook_workers: options.webhook_workers.0,
        webhook_workers_per_org: options.webhook_workers.1,
        publish_per_minute: options.publish_per_minute,
        publish_bytes_per_minute: 64 * 1024 * 1024,
        webhook_timeout_ms: options.webhook_timeout_ms,
        webhook_lease_ms: options.webhook_lease_ms,
        webhook_schedule: options
            .webhook_schedule
            .parse()
            .expect("a test schedule parses"),
        webhook_disable_after_secs: options.webhook_disable_after_secs,
        webhook_allow_private: options.webhook_allow_private,
        webhook_proxy: None,
        webhook_clock: options.webhook_clock.clone(),
        webhook_retention_days: 90,
        audit_signing_key: Some(options.audit_signing_key.clone()),
        checkpoint_interval_secs: options.checkpoint_interval_secs,
        client_ip_header: options
            .client_ip_header
            .as_deref()
            .map(|h| h.parse().expect("a header name")),
    }
}

impl TestServer {
    /// Starts a server over `db` with default options.
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, Options::default()).await
    }

    /// Starts a server over `db`.
    pub async fn start_with(db: &TestDb, options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let args = serve_args(dir.path().to_path_buf(), &options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let config = db.config.clone();
        let task = tokio::spawn(async move {
            api::server::run(args, config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("the test server runs");
        });
        let server = TestServer {
            base,
            http: reqwest::Client::new(),
            mail: crate::mail::Inbox::files(&dir.path().join("mail")),
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    /// A client for a server running elsewhere (a child process).
    pub fn attach(base: &str) -> Self {
        TestServer {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            mail: crate::mail::Inbox::default(),
            stop: None,
            task: None,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the test server did not become healthy");
    }

    /// The server's data directory (its generated keys, the checkpoint
    /// witness).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// An absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `/readyz` as an operator sees it (with the gateway token): the log
    /// head, each projection, the verification index.
    pub async fn readiness(&self) -> serde_json::Value {
        self.http
            .get(self.url("/readyz"))
            .bearer_auth(GATEWAY_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// POSTs JSON.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GETs with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// GETs with a bearer token, asking read models to reach `position`.
    pub async fn get_at(&self, path: &str, token: &str, position: u64) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .header("gatehouse-min-position", position.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Signs up and signs in; returns (user id, token, position).
    pub async fn user(&self, email: &str) -> (String, String, u64) {
        let r = self
            .post(
                "/v1/users",
                serde_json::json!({"email": email, "name": "Test User", "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(r.status(), 201, "sign-up of {email}");
        let body: serde_json::Value = r.json().await.unwrap();
        let r = self
            .post(
                "/v1/sessions",
                serde_json::json!({"email": email, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(r.status(), 201, "sign-in of {email}");
        let position = position_of(&r);
        let session: serde_json::Value = r.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            session["token"].as_str().unwrap().to_owned(),
            position,
        )
    }

    /// Proves `email`'s address with the link of the next verification
    /// mail to it, signed in (as the link requires) with `session`; returns
    /// the position of the proof.
    pub async fn verify_email_as(&self, email: &str, session: &str) -> u64 {
        self.verify_email_in(&self.mail, email, session).await
    }

    /// [`TestServer::verify_email_as`] with the mail of `inbox` (an
    /// [`crate::mail::SmtpSink`]'s, for a server sending by SMTP).
    pub async fn verify_email_in(
        &self,
        inbox: &crate::mail::Inbox,
        email: &str,
        session: &str,
    ) -> u64 {
        let mail = inbox.next(email, "Confirm your email").await;
        let body = serde_json::json!({"token": mail.token("/verify-email")});
        let (status, answer, position) = self
            .call(
                reqwest::Method::POST,
                "/v1/email-verifications",
                session,
                Some(body),
                0,
            )
            .await;
        assert_eq!(status, 200, "verification of {email}: {answer}");
        position
    }

    /// [`TestServer::verify_email_as`], signed in with the password
    /// [`TestServer::user`] gives every account.
    pub async fn verify_email(&self, email: &str) -> u64 {
        let r = self
            .post(
                "/v1/sessions",
                serde_json::json!({"email": email, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(r.status(), 201, "sign-in of {email} to verify");
        let session: serde_json::Value = r.json().await.unwrap();
        self.verify_email_as(email, session["token"].as_str().unwrap())
            .await
    }

    /// Signs up, signs in, and proves the address by the mailed link;
    /// returns (user id, token, position).
    pub async fn verified_user(&self, email: &str) -> (String, String, u64) {
        let (id, token, _) = self.user(email).await;
        let position = self.verify_email_as(email, &token).await;
        (id, token, position)
    }

    /// The owner (`owner_token`) invites `email` to `org` with `role`, and the
    /// invitee (`member_token`) accepts with the token of the mailed link;
    /// returns the position of the join.
    pub async fn join(
        &self,
        owner_token: &str,
        org: &str,
        email: &str,
        role: &str,
        member_token: &str,
    ) -> u64 {
        let r = self
            .http
            .post(self.url(&format!("/v1/orgs/{org}/invitations")))
            .bearer_auth(owner_token)
            .json(&serde_json::json!({"email": email, "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "invitation of {email}");
        let position = position_of(&r);
        let mail = self.mail.next(email, "You are invited").await;
        let r = self
            .http
            .post(self.url("/v1/invitations/accept"))
            .bearer_auth(member_token)
            .header("gatehouse-min-position", position.to_string())
            .json(&serde_json::json!({"token": mail.token("/invitations/accept")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{email} accepts");
        position_of(&r)
    }

    /// Sends `method path` with a bearer token and an optional JSON body,
    /// after the read models reach `at`; returns status, body (`null` when
    /// empty) and `Gatehouse-Position` (0 when absent).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
        at: u64,
    ) -> (u16, serde_json::Value, u64) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("gatehouse-min-position", at.to_string());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let position = r
            .headers()
            .get("gatehouse-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        (status, body, position)
    }

    /// Signs up `email` and makes it platform staff; returns its token once
    /// the staff read model knows it.
    pub async fn staff(&self, db: &crate::TestDb, email: &str) -> String {
        self.staff_in(db, &self.mail, email).await
    }

    /// [`TestServer::staff`], verified with the mail of `inbox`.
    pub async fn staff_in(
        &self,
        db: &crate::TestDb,
        inbox: &crate::mail::Inbox,
        email: &str,
    ) -> String {
        let (_, token, _) = self.user(email).await;
        self.verify_email_in(inbox, email, &token).await;
        crate::make_staff(db, email).await;
        for _ in 0..400 {
            if self.get("/v1/staff/queue", Some(&token)).await.status() == 200 {
                return token;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{email} did not become staff");
    }

    /// An organisation ready for the Developers workspace: created by
    /// `owner`, developer terms accepted, and `platform.api` on its plan
    /// (set by `staff`). Returns its id and the position reached.
    pub async fn workspace(&self, owner: &str, staff: &str, slug: &str) -> (String, u64) {
        use reqwest::Method;
        let body = serde_json::json!({"slug": slug, "name": format!("Org {slug}")});
        let (status, org, _) = self
            .call(Method::POST, "/v1/orgs", owner, Some(body), 0)
            .await;
        assert_eq!(status, 201, "create {slug}: {org}");
        let org = org["id"].as_str().unwrap().to_owned();
        let terms = serde_json::json!({"version": "2026-01"});
        let path = format!("/v1/orgs/{org}/developer-terms/accept");
        let (status, _, _) = self.call(Method::POST, &path, owner, Some(terms), 0).await;
        assert_eq!(status, 200, "terms for {slug}");
        let position = self.grant_platform_api(&org, staff).await;
        (org, position)
    }

    /// Puts `org` on a plan with `platform.api` (as `staff`); returns the
    /// position reached.
    pub async fn grant_platform_api(&self, org: &str, staff: &str) -> u64 {
        let plan = serde_json::json!({
            "plan": "pro",
            "modules": ["platform.api"],
            "monthly_call_limit": 250000,
            "subscription_state": "active",
            "billing_window_start": "2026-11-01T00:00:00Z",
            "billing_window_end": "2026-12-01T00:00:00Z",
        });
        let path = format!("/v1/orgs/{org}/plan");
        let (status, body, position) = self
            .call(reqwest::Method::PUT, &path, staff, Some(plan), 0)
            .await;
        assert_eq!(status, 200, "plan for {org}: {body}");
        position
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The `Gatehouse-Position` of a response.
pub fn position_of(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("gatehouse-position")
        .expect("a command response carries Gatehouse-Position")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
