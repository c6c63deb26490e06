//! Wiring: the store, the vault, the projection runners and the router,
//! served until shutdown.
//!
//! # Layout
//! - [`error`]: why the server could not start, and the exit code.
//! - [`migrations`]: the schema migrations applied at start.

pub mod error;
pub mod migrations;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use event_store::launcher::{self, LaunchOptions};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::StoreError;
use projections::{Runner, Statuses};
use sha2::Digest;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Cli, Command, LogFormat, ServeArgs};
use crate::state::{AppState, Inner};
use crate::vault::Vault;

pub use error::{exit_code, ServerError};
pub use migrations::{migrate_all, MIGRATIONS};

/// Runs the command line: the body of `gatehouse`'s `main`.
pub fn main_with(cli: Cli) -> Result<(), ServerError> {
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format, "info,tokio_postgres=warn");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(ServerError::Serve)?;
            runtime.block_on(serve(*args))
        }
        Command::Admin(args) => {
            init_tracing(LogFormat::Text, "warn");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(ServerError::Serve)?;
            runtime.block_on(crate::admin::run(args))
        }
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour codes only for a person at a terminal: a file or a pipe gets
    // plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `gatehouse serve`: resolve the database, listen, serve until SIGINT or
/// SIGTERM, then stop the embedded cluster if we started it.
pub async fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let opened = launcher::open(
        args.db.database_url.as_deref(),
        &args.db.data_dir,
        LaunchOptions::default(),
    )
    .await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: args.listen,
            source,
        })?;
    let result = run(args, opened.config.clone(), listener, shutdown_signal()).await;
    if let Some(mut local) = opened.local {
        tokio::task::spawn_blocking(move || local.stop()).await.ok();
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// Serves on `listener` until `shutdown` resolves: connects the store,
/// applies migrations, starts the projection runners, serves the API, and on
/// shutdown drains requests, stops the background roles and closes every
/// database connection (in that order, so nothing is cut mid-write).
pub async fn run(
    args: ServeArgs,
    db: tokio_postgres::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listen_config = db.clone();
    let store = Arc::new(
        PgStore::connect(
            db,
            PgStoreOptions {
                pool_size: args.db.pool_size,
                poll_interval: Duration::from_millis(args.log_poll_ms),
                ..PgStoreOptions::default()
            },
        )
        .await?,
    );
    let pool = store.pool().clone();
    let poll = store.poll_interval();
    let (log, mirror) = log_of_record(&args.event_store, &store).await?;
    let mut vault = Vault::load(
        args.kek.as_deref(),
        args.previous_kek.as_deref(),
        &args.db.data_dir,
    )?;
    let audit_key =
        crate::audit::key::AuditKey::load(args.audit_signing_key.as_deref(), &args.db.data_dir)
            .map_err(|e| ServerError::Refused(e.to_string()))?;
    {
        let mut client = pool.get().await.map_err(StoreError::from)?;
        migrate_all(&mut client).await?;
        vault.attach_root(&client).await?;
        match crate::accounts::directory::adopt_logged_hashes(&client).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                accounts = n,
                "moved password hashes recorded by user.signed_up v1 into credentials"
            ),
            Err(e) => return Err(ServerError::Refused(format!("adopting logged hashes: {e}"))),
        }
    }
    let mail_transport = crate::mail::sender::Transport::from_config(
        args.smtp_url.as_deref(),
        args.db.data_dir.join("mail"),
    )
    .map_err(ServerError::Refused)?;
    let mail_from: lettre::message::Mailbox = args
        .mail_from
        .parse()
        .map_err(|e| ServerError::Refused(format!("--mail-from {:?}: {e}", args.mail_from)))?;
    let all = projections::all();
    let names: Vec<&'static str> = all.iter().map(|p| p.name()).collect();
    let statuses = Statuses::new(&names);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = Vec::new();
    for projection in all {
        let runner = Runner::new(pool.clone(), store.clone(), projection, statuses.clone())
            .with_poll_interval(poll);
        runner.ensure_active().await?;
        let mut stop = stop_rx.clone();
        let run_it = args.projections;
        background.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if run_it {
                runner.run(stopped).await;
            } else {
                runner.watch(stopped).await;
            }
        }));
    }

    let commands = crate::command::Executor::new(
        log.clone(),
        crate::command::CacheLimits {
            entries: args.command_cache_entries as usize,
            bytes: (args.command_cache_mb as usize).saturating_mul(1024 * 1024),
        },
    );
    let index = Arc::new(
        verifier::Index::new(args.key_prefix.clone(), Arc::new(verifier::SystemClock))
            .with_tokens(args.oauth_issuer.clone(), args.oauth_audience.clone()),
    );
    if let Some(mirror) = mirror {
        background.push(tokio::spawn(mirror(pool.clone(), poll, stop_rx.clone())));
    }
    background.push(tokio::spawn(verifier::follow::run(
        index.clone(),
        log.clone(),
        pool.clone(),
        poll,
        stop_rx.clone(),
    )));
    let meter = tokio::spawn(verifier::follow::run_meter(
        index.clone(),
        log.clone(),
        Duration::from_secs(args.usage_flush_secs),
        stop_rx.clone(),
    ));
    let gateway_tokens = args
        .gateway_token
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| sha2::Sha256::digest(t.as_bytes()).into())
        .collect();
    let secret_scanning = crate::secret_scanning::SecretScanning::from_config(
        &args.secret_scanning_key,
        args.secret_scanning_revoke_live,
    )
    .map_err(ServerError::Refused)?;
    let log_guard = store.guard();
    if let Some(signed) = audit_key.witnessed() {
        log_guard.reached(signed);
        if let Err(StoreError::Rewound(r)) = store.check_head().await {
            // Served, not ready: operators see why on /readyz and here.
            tracing::error!(
                head = r.head,
                signed,
                witness = %args.db.data_dir.join(crate::audit::key::WITNESS_FILE).display(),
                "the newest checkpoint this node signed is past the database's head: the \
                 database lost events, or is another one. Check it with gatehouse-replay \
                 verify; if it replaced the old one on purpose, move the witness file aside \
                 and restart"
            );
        }
    }
    background.push(tokio::spawn(watch_for_rewind(
        store.clone(),
        statuses.clone(),
        poll,
        stop_rx.clone(),
    )));
    let read_models = projections::read_models::ReadModels::new(pool.clone(), statuses.clone());
    let state = AppState::new(Inner {
        store: log.clone(),
        log_poll: poll,
        log_guard,
        commands,
        pool,
        statuses,
        read_models,
        vault,
        read_wait: Duration::from_millis(args.read_wait_ms),
        session_ttl: chrono::Duration::hours(args.session_ttl_hours),
        session_idle: chrono::Duration::minutes(args.session_idle_minutes),
        sign_up_rate: crate::accounts::throttle::Rate::new(
            args.sign_ups_per_hour as usize,
            Duration::from_secs(3600),
        ),
        mail_rate: crate::accounts::throttle::Rate::new(
            args.mails_per_address_per_hour as usize,
            Duration::from_secs(3600),
        ),
        hasher: crate::accounts::hashing::Hasher::for_this_machine(),
        mail_wake: Arc::new(tokio::sync::Notify::new()),
        public_url: args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen))
            .trim_end_matches('/')
            .to_owned(),
        invitation_ttl: chrono::Duration::seconds(args.invitation_ttl_secs),
        auto_grant_sandbox: args.auto_grant_sandbox,
        sign_in_throttle: Default::default(),
        index,
        gateway_tokens,
        publish_quota: crate::webhooks::quota::PublishQuota::new(
            args.publish_per_minute,
            args.publish_bytes_per_minute,
        ),
        secret_scanning,
        audit_key,
        client_ip_header: args.client_ip_header.clone(),
        webhook_keys: Default::default(),
        signing_seeds: Default::default(),
        webhooks: crate::webhooks::WebhookSettings {
            policy: delivery::ssrf::Policy {
                allow_private: args.webhook_allow_private,
            },
        },
        oauth: crate::oauth::settings::TokenSettings::new(
            args.oauth_issuer.clone(),
            args.oauth_audience.clone(),
            chrono::Duration::seconds(args.oauth_token_ttl_secs),
            args.oauth_token_rate,
        ),
    });
    match crate::accounts::erasure::reconcile(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            users = n,
            "completed personal data erasures a crash interrupted"
        ),
        Err(e) => tracing::error!(error = %e, "cannot check for interrupted erasures"),
    }
    match crate::oauth::ensure_signing_key(&state).await {
        Ok(()) => {}
        // Appends are refused while the log is behind: tokens cannot be
        // signed until an operator has looked; everything else is served.
        Err(e) if state.log_guard.fenced().is_some() => {
            tracing::error!(error = %e, "no token signing key while the log is behind");
        }
        Err(e) => return Err(ServerError::Refused(format!("the token signing key: {e}"))),
    }
    background.push(tokio::spawn(crate::rotation::run_worker(
        state.clone(),
        crate::rotation::Pace {
            batch: args.rotation_batch,
            pause: Duration::from_millis(args.rotation_pause_ms),
        },
        stop_rx.clone(),
    )));
    background.push(tokio::spawn(crate::notices::run(
        state.clone(),
        Duration::from_millis(args.notice_interval_ms),
        stop_rx.clone(),
    )));
    background.push(tokio::spawn(crate::audit::signer::run(
        state.clone(),
        Duration::from_secs(args.checkpoint_interval_secs),
        stop_rx.clone(),
    )));
    background.push(tokio::spawn(sweep_idempotency_keys(
        state.clone(),
        stop_rx.clone(),
    )));
    if args.mail {
        let sender = crate::mail::sender::Sender {
            pool: state.pool.clone(),
            vault: state.vault.clone(),
            transport: mail_transport,
            from: mail_from,
            poll: Duration::from_secs(1),
        };
        background.push(tokio::spawn(
            sender.run(state.mail_wake.clone(), stop_rx.clone()),
        ));
        background.push(tokio::spawn(crate::mail::notices::run(
            state.clone(),
            Duration::from_millis(args.notice_interval_ms),
            stop_rx.clone(),
        )));
    }
    if args.webhooks {
        start_webhooks(&args, &state, listen_config, &mut background, &stop_rx);
        background.push(tokio::spawn(crate::webhooks::retention::run(
            state.clone(),
            chrono::Duration::days(args.webhook_retention_days.into()),
            stop_rx.clone(),
        )));
    }
    let console = format!("{}/", state.public_url);
    let app = crate::routes::router(state, args.body_limit);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, %console, "gatehouse listening; the console is at {console}");
    }
    if args.open {
        open_in_browser(&console);
    }
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(ServerError::Serve);
    let _ = stop_tx.send(true);
    // The meter's last flush needs the store, which the others keep open.
    let _ = meter.await;
    for task in background {
        let _ = task.await;
    }
    // Every session ends cleanly before the caller stops the database.
    store.close().await;
    tracing::info!("stopped: requests drained, background roles and connections closed");
    served
}

/// Compares the log's head with how far this node knows it reached (its
/// appends, its reads, its projections' positions, its newest signed
/// checkpoint) every poll interval: a log found behind fences the guard,
/// so appends are refused and `/readyz` says why.
async fn watch_for_rewind(
    store: Arc<PgStore>,
    statuses: Statuses,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let guard = store.guard();
    loop {
        for (_, status) in statuses.snapshot() {
            guard.reached(status.position);
        }
        if let Err(e) = store.check_head().await {
            if !matches!(e, StoreError::Rewound(_)) {
                tracing::debug!(error = %e, "cannot read the log head");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Starts the webhook feeder and dispatcher of this node.
fn start_webhooks(
    args: &ServeArgs,
    state: &AppState,
    listen_config: tokio_postgres::Config,
    background: &mut Vec<tokio::task::JoinHandle<()>>,
    stop: &watch::Receiver<bool>,
) {
    let keyring: Arc<dyn delivery::keyring::Keyring> =
        Arc::new(crate::vault::webhooks::VaultKeyring {
            vault: state.vault.clone(),
            pool: state.pool.clone(),
            retention: state.webhook_keys.clone(),
        });
    let store: event_store::SharedStore = state.store.clone();
    let fed = Arc::new(watch::Sender::new(0u64));
    let feeder = delivery::feed::Feeder::new(
        state.pool.clone(),
        store.clone(),
        keyring.clone(),
        state.log_poll,
        fed.clone(),
    );
    background.push(tokio::spawn(feeder.run(stop.clone())));
    // The audit feeder follows the main feeder (which knows the streams)
    // and the audit projection (which writes the entries).
    let audited = Arc::new(watch::Sender::new(0u64));
    if let Some(mut status) = state.statuses.subscribe("audit") {
        let (audited, mut stop) = (audited.clone(), stop.clone());
        background.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = status.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let position = status.borrow_and_update().position;
                        audited.send_replace(position);
                    }
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
    }
    let audit_feeder =
        delivery::feed::AuditFeeder::new(state.pool.clone(), state.log_poll, fed.clone());
    background.push(tokio::spawn(
        audit_feeder.run(vec![fed.subscribe(), audited.subscribe()], stop.clone()),
    ));
    let timeout = Duration::from_millis(args.webhook_timeout_ms);
    let settings = delivery::dispatch::Settings {
        workers: args.webhook_workers as usize,
        per_org: args.webhook_workers_per_org as usize,
        lease: Duration::from_millis(args.webhook_lease_ms),
        timeout,
        schedule: args.webhook_schedule.clone(),
        disable_after: chrono::Duration::seconds(args.webhook_disable_after_secs as i64),
        policy: state.webhooks.policy,
        proxy: args.webhook_proxy.clone(),
        clock: args.webhook_clock.clone(),
        ..Default::default()
    };
    let dispatcher =
        delivery::dispatch::Dispatcher::new(state.pool.clone(), store, keyring, settings);
    let wake = vec![
        fed.subscribe(),
        event_store::postgres::listen_channel(listen_config, delivery::feed::CHANNEL),
    ];
    background.push(tokio::spawn(dispatcher.run(wake, stop.clone())));
}

/// Forgets expired `Idempotency-Key` entries every few minutes.
async fn sweep_idempotency_keys(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        match crate::idempotency::sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(forgotten = n, "idempotency keys swept"),
            Err(e) => tracing::warn!(error = %e, "sweeping idempotency keys failed"),
        }
        let swept = match state.pool.get().await {
            Ok(client) => crate::accounts::tokens::sweep(&client).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = swept {
            tracing::warn!(error = %e, "sweeping expired account tokens failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Starts a mirror of a foreign log into PostgreSQL's `events` table.
type StartMirror = Box<
    dyn FnOnce(
            deadpool_postgres::Pool,
            Duration,
            watch::Receiver<bool>,
        ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send,
>;

/// The log commands append to, from `--event-store`: PostgreSQL's own, or
/// KurrentDB's with the mirror that copies it into PostgreSQL.
async fn log_of_record(
    setting: &str,
    pg: &Arc<PgStore>,
) -> Result<(event_store::SharedStore, Option<StartMirror>), ServerError> {
    if setting == "postgres" {
        return Ok((pg.clone(), None));
    }
    let kurrent = [
        "kurrentdb://",
        "kurrentdb+discover://",
        "esdb://",
        "esdb+discover://",
    ]
    .iter()
    .any(|s| setting.starts_with(s));
    if !kurrent {
        return Err(ServerError::Refused(format!(
            "--event-store must be postgres or a kurrentdb:// URL, not {setting:?}"
        )));
    }
    kurrent_log(setting).await
}

#[cfg(feature = "kurrentdb")]
async fn kurrent_log(
    url: &str,
) -> Result<(event_store::SharedStore, Option<StartMirror>), ServerError> {
    let store = event_store::kurrent::KurrentStore::connect(url, None).await?;
    let source = store.clone();
    let mirror: StartMirror = Box::new(move |pool, poll, stop| {
        Box::pin(event_store::kurrent::mirror::run(source, pool, poll, stop))
    });
    tracing::info!("the log of record is KurrentDB; PostgreSQL keeps its mirror");
    Ok((store, Some(mirror)))
}

#[cfg(not(feature = "kurrentdb"))]
async fn kurrent_log(
    _url: &str,
) -> Result<(event_store::SharedStore, Option<StartMirror>), ServerError> {
    Err(ServerError::Refused(
        "this build has no KurrentDB backend: build with --features kurrentdb".into(),
    ))
}

/// Opens `url` in this machine's browser, without waiting for it; says so
/// when there is none to open.
fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        tracing::warn!(%url, "no browser to open ({opener} is missing): open {url} yourself");
    }
}
