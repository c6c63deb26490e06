//! Configuration: every option is a flag with an environment variable, and
//! `gatehouse --help` documents each.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Gatehouse: the control plane behind a developer portal.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about = "Gatehouse: the control plane behind a developer portal.", long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (API, projection runners).
    Serve(Box<ServeArgs>),
    /// Operator commands.
    Admin(AdminArgs),
}

/// Options of `gatehouse admin`.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Database options.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Key-encryption key (as for `serve`); needed to find accounts by email.
    #[arg(long, env = "GATEHOUSE_KEK", hide_env_values = true)]
    pub kek: Option<String>,

    /// The previous key-encryption key, during a rotation (as for `serve`).
    #[arg(long, env = "GATEHOUSE_PREVIOUS_KEK", hide_env_values = true)]
    pub previous_kek: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Operator commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Make an existing account platform staff (the first staff member is
    /// created this way; the account signs up first with POST /v1/users).
    CreateStaff {
        /// The account's email.
        #[arg(long)]
        email: String,
    },
    /// End the platform staff grant of the account with this email, and
    /// every session of that account.
    RevokeStaff {
        /// The account's email.
        #[arg(long)]
        email: String,
    },
    /// Rotate the key-encryption key: reseal the subject keys, the index
    /// key and every webhook endpoint's secrets under a new one. With the
    /// KEK in the data directory, the new one is written there and the old
    /// one kept as `kek.previous`; with GATEHOUSE_KEK, pass the new one
    /// here, and run every node with GATEHOUSE_KEK=<new> and
    /// GATEHOUSE_PREVIOUS_KEK=<old> before and for a day after.
    RotateKek {
        /// The new KEK, 32 bytes of base64 (required with GATEHOUSE_KEK;
        /// generated when the KEK lives in the data directory).
        #[arg(long, env = "GATEHOUSE_NEW_KEK", hide_env_values = true)]
        new_kek: Option<String>,
    },
    /// Purge webhook payloads past their retention now (the server does
    /// it every hour): their day keys destroyed, the delivery log kept.
    PurgeWebhookPayloads {
        /// Days a payload is kept.
        #[arg(long, default_value_t = 90)]
        retention_days: u32,
        /// Purge as if it were this instant (RFC 3339), for a dry run of
        /// the future or a test.
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Where the data lives; shared by every subcommand and by `gatehouse-replay`.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL. Without it, Gatehouse starts a private
    /// PostgreSQL cluster under --data-dir from the machine's PostgreSQL
    /// binaries and stops it on exit.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory of the embedded PostgreSQL cluster and of the generated
    /// key-encryption key.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "./.gatehouse")]
    pub data_dir: PathBuf,

    /// Connections in the database pool.
    #[arg(long, env = "GATEHOUSE_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `gatehouse serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Database options.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Open the console in this machine's browser once the server is
    /// ready (`xdg-open`, or `open` on macOS); the address is printed
    /// either way.
    #[arg(long)]
    pub open: bool,

    /// Key-encryption key: 32 bytes, base64. Seals per-subject keys
    /// (personal data) and webhook secrets. Without it, a key is generated
    /// once into <data-dir>/kek; every node of one deployment needs the same.
    #[arg(long, env = "GATEHOUSE_KEK", hide_env_values = true)]
    pub kek: Option<String>,

    /// The previous key-encryption key while a rotation completes
    /// (`gatehouse admin rotate-kek`): opened, never sealed with. Without
    /// it, `<data_dir>/kek.previous` when that exists.
    #[arg(long, env = "GATEHOUSE_PREVIOUS_KEK", hide_env_values = true)]
    pub previous_kek: Option<String>,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "GATEHOUSE_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Longest a read waits for `Gatehouse-Min-Position`, in milliseconds.
    #[arg(long, env = "GATEHOUSE_READ_WAIT_MS", default_value_t = 5000)]
    pub read_wait_ms: u64,

    /// Lifetime of a sign-in session, in hours.
    #[arg(long, env = "GATEHOUSE_SESSION_TTL_HOURS", default_value_t = 24 * 7)]
    pub session_ttl_hours: i64,

    /// A session ends after this many minutes without a request (besides
    /// its absolute lifetime, --session-ttl-hours).
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE_MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub session_idle_minutes: i64,

    /// Where this deployment is reached by people, for the links in its
    /// mail (default: http://<--listen>).
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// SMTP server mail goes through: `smtp://host:25` (a local relay),
    /// `smtps://user:pass@host` (TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS). Without it, mail is written as .eml files under
    /// <data-dir>/mail/.
    #[arg(long, env = "GATEHOUSE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of every mail.
    #[arg(
        long,
        env = "GATEHOUSE_MAIL_FROM",
        default_value = "Gatehouse <gatehouse@localhost>"
    )]
    pub mail_from: String,

    /// Send mail from this process (the `mail` role). Several nodes may
    /// all send: each mail is leased by one.
    #[arg(long, env = "GATEHOUSE_MAIL", default_value_t = true, action = clap::ArgAction::Set)]
    pub mail: bool,

    /// Sign-ups accepted per client address per hour.
    #[arg(long, env = "GATEHOUSE_SIGN_UPS_PER_HOUR", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sign_ups_per_hour: u32,

    /// Mails of one kind (verification, reset, invitation...) sent to one
    /// address per hour; past it, requests are answered as usual and no
    /// mail goes.
    #[arg(long, env = "GATEHOUSE_MAILS_PER_ADDRESS_PER_HOUR", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub mails_per_address_per_hour: u32,

    /// How long an invitation can be accepted, in seconds (default 7 days).
    #[arg(long, env = "GATEHOUSE_INVITATION_TTL_SECS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(i64).range(1..=365 * 24 * 3600))]
    pub invitation_ttl_secs: i64,

    /// Run the projection runners in this process. Several nodes may all
    /// run them: one is active per projection, the others stand by.
    #[arg(long, env = "GATEHOUSE_PROJECTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub projections: bool,

    /// Grant sandbox access as soon as an organisation requests it, instead
    /// of queueing the request for staff.
    #[arg(long, env = "GATEHOUSE_AUTO_GRANT_SANDBOX", default_value_t = false, action = clap::ArgAction::Set)]
    pub auto_grant_sandbox: bool,

    /// Most streams whose folded state the command service keeps in
    /// memory (least recently used go first).
    #[arg(long, env = "GATEHOUSE_COMMAND_CACHE_ENTRIES", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub command_cache_entries: u64,

    /// Most memory, in MiB (estimated), the command service's cache of
    /// folded state may hold.
    #[arg(long, env = "GATEHOUSE_COMMAND_CACHE_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub command_cache_mb: u64,

    /// Prefix of every API key this deployment issues (1 to 16 of a-z and
    /// 0-9): keys read `<prefix>_<live|test>_<sk|rk>_<random>`.
    #[arg(long, env = "GATEHOUSE_KEY_PREFIX", default_value = "gh",
          value_parser = parse_key_prefix)]
    pub key_prefix: String,

    /// Bearer token the platform's gateway presents to `POST /v1/keys/verify`
    /// and `POST /v1/usage`. Several, comma-separated, so a token can be
    /// rotated without downtime. Without one, those routes answer 401.
    #[arg(
        long,
        env = "GATEHOUSE_GATEWAY_TOKEN",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub gateway_token: Vec<String>,

    /// How often counted verifications are written to the log as
    /// `usage.recorded` events (one per key per interval), in seconds. A
    /// crash loses at most this interval's counts.
    #[arg(long, env = "GATEHOUSE_USAGE_FLUSH_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub usage_flush_secs: u64,

    /// Public keys GitHub's secret scanning signs its reports with, as
    /// `<key identifier>=<base64 DER public key>`, comma-separated (from
    /// GitHub's published keys). Without one, reports are refused (403).
    #[arg(long, env = "GATEHOUSE_SECRET_SCANNING_KEYS", value_delimiter = ',')]
    pub secret_scanning_key: Vec<String>,

    /// Revoke a live key that secret scanning found in public (test keys
    /// are always revoked); without it, the key is flagged and its app's
    /// owners told.
    #[arg(long, env = "GATEHOUSE_SECRET_SCANNING_REVOKE_LIVE", default_value_t = false, action = clap::ArgAction::Set)]
    pub secret_scanning_revoke_live: bool,

    /// The `iss` of the OAuth access tokens this deployment issues (and
    /// requires when verifying them).
    #[arg(long, env = "GATEHOUSE_OAUTH_ISSUER", default_value = "gatehouse")]
    pub oauth_issuer: String,

    /// The `aud` of the access tokens: the platform API they are for.
    #[arg(long, env = "GATEHOUSE_OAUTH_AUDIENCE", default_value = "platform")]
    pub oauth_audience: String,

    /// Lifetime of an access token, in seconds (at most an hour).
    #[arg(long, env = "GATEHOUSE_OAUTH_TOKEN_TTL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub oauth_token_ttl_secs: i64,

    /// Most token requests per client per second, per node.
    #[arg(long, env = "GATEHOUSE_OAUTH_TOKEN_RATE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub oauth_token_rate: u32,

    /// Keys a mass rotation requires per batch (on each node running the
    /// rotation worker).
    #[arg(long, env = "GATEHOUSE_ROTATION_BATCH", default_value_t = 100,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub rotation_batch: i64,

    /// Pause between a mass rotation's batches, in milliseconds, so a big
    /// job leaves room for other commands.
    #[arg(long, env = "GATEHOUSE_ROTATION_PAUSE_MS", default_value_t = 0)]
    pub rotation_pause_ms: u64,

    /// How often a node looks for due notices (usage thresholds, keys 7
    /// days from expiry), in milliseconds.
    #[arg(long, env = "GATEHOUSE_NOTICE_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub notice_interval_ms: u64,

    /// How long a node at the head of the log waits for a PostgreSQL
    /// notification before it re-reads the log anyway, in milliseconds.
    /// Notifications wake it at once; this is the backstop for a lost one.
    #[arg(long, env = "GATEHOUSE_LOG_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub log_poll_ms: u64,

    /// Where the log of record lives: `postgres` (the database above), or
    /// `kurrentdb://host:2113?tls=false` for KurrentDB (a build with the
    /// `kurrentdb` feature; the read models stay in PostgreSQL, which keeps
    /// a mirror of the log; docs/scaling.md).
    #[arg(long, env = "GATEHOUSE_EVENT_STORE", default_value = "postgres")]
    pub event_store: String,

    /// Run the webhook feeder and dispatcher on this node (several nodes
    /// share the work by leases).
    #[arg(long, env = "GATEHOUSE_WEBHOOKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhooks: bool,

    /// Webhook endpoints this node delivers to at once.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_WORKERS", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub webhook_workers: u64,

    /// Messages one organisation may publish a minute on this node
    /// (`POST /v1/apps/{app}/events`; 429 with Retry-After beyond).
    #[arg(long, env = "GATEHOUSE_PUBLISH_PER_MINUTE", default_value_t = 6_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub publish_per_minute: u64,

    /// Payload bytes one organisation may publish a minute on this node.
    #[arg(long, env = "GATEHOUSE_PUBLISH_BYTES_PER_MINUTE", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub publish_bytes_per_minute: u64,

    /// Endpoints of one organisation this node delivers to at once (0: a
    /// quarter of --webhook-workers, at least 1): one tenant's slow
    /// endpoints cannot hold every worker, and organisations take turns.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_WORKERS_PER_ORG", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=4096))]
    pub webhook_workers_per_org: u64,

    /// Timeout of one delivery attempt, in milliseconds.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_TIMEOUT_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub webhook_timeout_ms: u64,

    /// How long a node holds an endpoint it works before another may take
    /// it over, in milliseconds (at least three timeouts).
    #[arg(long, env = "GATEHOUSE_WEBHOOK_LEASE_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(300..=3_600_000))]
    pub webhook_lease_ms: u64,

    /// Delays between delivery attempts, after the first (units ms, s, m, h).
    #[arg(long, env = "GATEHOUSE_WEBHOOK_SCHEDULE", default_value = delivery::schedule::DEFAULT,
          value_parser = |s: &str| s.parse::<delivery::schedule::Schedule>().map_err(|e| e.to_string()))]
    pub webhook_schedule: delivery::schedule::Schedule,

    /// An endpoint failing without a single success for this long is
    /// disabled and its app's owners told, in seconds (default 5 days).
    #[arg(long, env = "GATEHOUSE_WEBHOOK_DISABLE_AFTER_SECS", default_value_t = 5 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..=365 * 24 * 3600))]
    pub webhook_disable_after_secs: u64,

    /// Days a published webhook payload is kept; the delivery log keeps
    /// its metadata after.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub webhook_retention_days: u32,

    /// Let endpoints reach private, loopback and link-local addresses, and
    /// live endpoints and audit streams use plain http (development and
    /// tests only).
    #[arg(long, env = "GATEHOUSE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Send webhook deliveries through this HTTP proxy. The environment's
    /// HTTP_PROXY and HTTPS_PROXY are never used for deliveries: a proxy
    /// resolves names past the private-address guard, so with this set
    /// every destination is checked before each attempt instead.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_PROXY")]
    pub webhook_proxy: Option<reqwest::Url>,

    /// The clock delivery reads (tests move it; never set from the
    /// command line).
    #[arg(skip)]
    pub webhook_clock: delivery::Clock,

    /// Ed25519 key that signs checkpoints of the log's hash chain: a
    /// 32-byte seed, base64. Never stored in the database. Without it, a key
    /// is generated once into <data-dir>/audit-signing.key; every node of
    /// one deployment needs the same.
    #[arg(long, env = "GATEHOUSE_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,

    /// How often the head of the log is signed into a checkpoint when it
    /// moved, in seconds (every export signs one too).
    #[arg(long, env = "GATEHOUSE_CHECKPOINT_INTERVAL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub checkpoint_interval_secs: u64,

    /// The header a trusted proxy puts the client's address in (such as
    /// `x-forwarded-for`; its first address is taken). Without it, the
    /// peer's address is recorded in the audit trail's request context.
    #[arg(long, env = "GATEHOUSE_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<axum::http::HeaderName>,

    /// Log format. Text is coloured only when the output is a terminal.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

fn parse_key_prefix(s: &str) -> Result<String, String> {
    if domain::keys::format::valid_prefix(s) {
        Ok(s.to_owned())
    } else {
        Err("must be 1 to 16 of a-z and 0-9".into())
    }
}
