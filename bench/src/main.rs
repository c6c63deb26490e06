//! `gatehouse-bench`: measures the hot paths against a real PostgreSQL (the
//! embedded one by default, `synchronous_commit = on`), each beside a raw
//! PostgreSQL baseline measured in the same run, so the ratio shows what
//! Gatehouse's machinery costs.
//!
//! - `append`: concurrent writers, one event per append, each to its own
//!   stream; baseline: plain multi-row INSERTs into a bare table with the same
//!   columns, one transaction per batch of the same size.
//! - `read-all`: the whole log in pages through the store; baseline: a plain
//!   sequential scan of the same rows.
//! - `rebuild`: a blue/green rebuild of the `event_counts` projection over
//!   the log; baseline: the same plain sequential scan.
//! - `rebuild-all` and `audit` ([`replay`]): every read model rebuilt at
//!   once over a generated history of every kind of event ([`history`]),
//!   beside a plain scan; audit pages with each filter beside
//!   `GET /healthz`, and the platform export's throughput.
//! - `export` ([`export`]): the staff JSON Lines export of N apps through a
//!   real server in this process; the peak heap must stay flat as N grows.
//! - `command` ([`command`]): one app command over HTTP on a short and a
//!   long stream beside a bare append; commands/s beside appends/s.
//! - `sign-in-flood` ([`accounts`]): N concurrent sign-ins against a
//!   server process, its peak memory and `/healthz` meanwhile beside
//!   `/healthz` alone.
//! - `verify` ([`verify`]): key verification in process and over HTTP
//!   beside `GET /healthz`, latency at a fixed rate, the index's bytes per
//!   key, a revoke's way to a second node, and the usage events written.

mod accounts;
mod command;
mod export;
mod history;
mod replay;
mod server;
mod verify;
mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::launcher::{self, LaunchOptions};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{EventStore, EventStoreExt, StreamAppend};
use futures::TryStreamExt;
use serde::Serialize;
use tokio_postgres::NoTls;

/// Tracks the heap's current and peak size, for the export scenario.
#[global_allocator]
pub(crate) static HEAP: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-bench",
    version,
    about = "Benchmarks of Gatehouse's hot paths beside raw PostgreSQL baselines."
)]
struct Cli {
    /// PostgreSQL server to use (its databases `gatehouse_bench_*` are
    /// created and dropped). Default: the embedded cluster under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,

    /// Directory of the embedded cluster.
    #[arg(long, default_value = "./.gatehouse-bench", global = true)]
    data_dir: PathBuf,

    /// Print one JSON object per metric and line.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Concurrent appends, one event each, each writer to its own stream.
    Append {
        /// Concurrent writers.
        #[arg(long, default_value_t = 32)]
        writers: usize,
        /// Seconds to run each side.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Appender connections taking turns (PgStoreOptions::append_lanes).
        #[arg(long, default_value_t = PgStoreOptions::default().append_lanes)]
        lanes: usize,
    },
    /// Read the whole log through the store.
    ReadAll {
        /// Events in the log (seeded once, kept between runs).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Rebuild the event_counts projection over the log.
    Rebuild {
        /// Events in the log (seeded once, kept between runs).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Rebuild every read model at once over a generated history of every
    /// kind of event, until the last is swapped in.
    RebuildAll {
        /// Events in the history (seeded once, kept between runs).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// One audit page with each filter through a server over the generated
    /// history (p50/p99), and the platform export's throughput.
    Audit {
        /// Events in the history (seeded once, kept between runs).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Requests measured per filter.
        #[arg(long, default_value_t = 300)]
        samples: usize,
    },
    /// Export N apps as JSON Lines through a server in this process; the
    /// peak heap while streaming, at each N.
    Export {
        /// App counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 30_000])]
        apps: Vec<u64>,
    },
    /// One app command over HTTP on a short and a long stream, beside a
    /// bare append; commands/s for concurrent clients beside appends/s.
    Command {
        /// Events in the long app's stream.
        #[arg(long, default_value_t = 100_000)]
        long_events: u64,
        /// Sequential commands measured on each app.
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Concurrent clients, each on its own app.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds each throughput side runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Concurrent sign-ins with random emails against a `gatehouse` server
    /// process (built beside the bench): its peak resident memory, the
    /// answers, and `GET /healthz` meanwhile beside `/healthz` alone.
    SignInFlood {
        /// Concurrent sign-ins.
        #[arg(long, default_value_t = 600)]
        sign_ins: usize,
    },
    /// Key verification: in process on one core, over HTTP beside
    /// `GET /healthz`, latency at a fixed rate, bytes per key, a revoke's
    /// way to a second node, usage events.
    Verify {
        /// Seconds each HTTP side runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Keep-alive connections of the load generator.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Requests per second of the latency run.
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Keep-alive connections of the latency run (enough that a
        /// connection is rarely still busy when its next request is due).
        #[arg(long, default_value_t = 64)]
        rate_connections: usize,
        /// Revokes timed from one node to the other.
        #[arg(long, default_value_t = 50)]
        revokes: usize,
    },
    /// Webhook delivery: deliveries/s to a local receiver beside its own
    /// ceiling, publish-to-arrival latency at a fixed rate, and the rate
    /// again with 200,000 delivered messages in the tables.
    Webhooks {
        /// Messages of each throughput run.
        #[arg(long, default_value_t = 2_000)]
        messages: usize,
        /// Endpoints of the throughput app.
        #[arg(long, default_value_t = 8)]
        endpoints: usize,
        /// Messages per second of the latency run.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        /// Seconds of the latency run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Every scenario with its defaults.
    All,
}

#[derive(Serialize)]
struct Metric<'a> {
    scenario: &'a str,
    metric: &'a str,
    value: f64,
    unit: &'a str,
}

pub(crate) struct Report {
    json: bool,
}

impl Report {
    pub(crate) fn metric(&self, scenario: &str, metric: &str, value: f64, unit: &str) {
        if self.json {
            let m = Metric {
                scenario,
                metric,
                value: (value * 100.0).round() / 100.0,
                unit,
            };
            println!("{}", serde_json::to_string(&m).unwrap_or_default());
        } else {
            println!("{scenario:<9} {metric:<20} {value:>14.2} {unit}");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The servers the scenarios run in process log to stderr only when
    // asked (`RUST_LOG=warn`), so a figure is never printed among log lines.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    tokio::runtime::Runtime::new()?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let opened = launcher::open(
        cli.database_url.as_deref(),
        &cli.data_dir,
        LaunchOptions::default(),
    )
    .await?;
    let admin = opened.config.clone();
    let report = Report { json: cli.json };
    match cli.scenario {
        Scenario::Append {
            writers,
            seconds,
            lanes,
        } => append(&admin, &report, writers, seconds, lanes).await?,
        Scenario::ReadAll { events } => read_all(&admin, &report, events).await?,
        Scenario::Rebuild { events } => rebuild(&admin, &report, events).await?,
        Scenario::RebuildAll { events } => {
            replay::rebuild_all(&admin, &cli.data_dir, &report, events).await?
        }
        Scenario::Audit { events, samples } => {
            replay::audit(&admin, &cli.data_dir, &report, events, samples).await?
        }
        Scenario::Export { apps } => export::export(&admin, &cli.data_dir, &report, &apps).await?,
        Scenario::Command {
            long_events,
            samples,
            clients,
            seconds,
        } => {
            let opts = command::CommandBench {
                long_events,
                samples,
                clients,
                seconds,
            };
            command::command(&admin, &cli.data_dir, &report, opts).await?
        }
        Scenario::SignInFlood { sign_ins } => {
            let opts = accounts::FloodBench { sign_ins };
            accounts::sign_in_flood(&admin, &cli.data_dir, &report, opts).await?
        }
        Scenario::Verify {
            seconds,
            connections,
            rate,
            rate_connections,
            revokes,
        } => {
            let opts = verify::VerifyBench {
                seconds,
                connections,
                rate,
                rate_connections,
                revokes,
            };
            verify::verify(&admin, &cli.data_dir, &report, opts).await?
        }
        Scenario::Webhooks {
            messages,
            endpoints,
            rate,
            seconds,
        } => {
            let opts = webhooks::WebhookBench {
                messages,
                endpoints,
                rate,
                seconds,
            };
            webhooks::webhooks(&admin, &cli.data_dir, &report, opts).await?
        }
        Scenario::All => {
            append(
                &admin,
                &report,
                32,
                10,
                PgStoreOptions::default().append_lanes,
            )
            .await?;
            read_all(&admin, &report, 1_000_000).await?;
            rebuild(&admin, &report, 1_000_000).await?;
            export::export(&admin, &cli.data_dir, &report, &[1_000, 10_000, 30_000]).await?;
            let opts = command::CommandBench {
                long_events: 100_000,
                samples: 500,
                clients: 32,
                seconds: 10,
            };
            command::command(&admin, &cli.data_dir, &report, opts).await?;
            let opts = verify::VerifyBench {
                seconds: 10,
                connections: 32,
                rate: 20_000,
                rate_connections: 64,
                revokes: 50,
            };
            verify::verify(&admin, &cli.data_dir, &report, opts).await?;
            let opts = webhooks::WebhookBench {
                messages: 2_000,
                endpoints: 8,
                rate: 500,
                seconds: 10,
            };
            webhooks::webhooks(&admin, &cli.data_dir, &report, opts).await?;
        }
    }
    drop(opened);
    Ok(())
}

/// Connection settings for a bench database, created if missing (or fresh).
pub(crate) async fn database(
    admin: &tokio_postgres::Config,
    name: &str,
    fresh: bool,
) -> anyhow::Result<tokio_postgres::Config> {
    let (client, conn) = admin.connect(NoTls).await.context("connecting")?;
    tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if exists && fresh {
        client
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await?;
    }
    if !exists || fresh {
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
    }
    let mut config = admin.clone();
    config.dbname(name);
    Ok(config)
}

pub(crate) fn event(n: u64) -> NewEvent {
    NewEvent::raw(
        // Not real Gatehouse types, so no read model mistakes them for its own.
        if n.is_multiple_of(3) {
            "bench.created"
        } else {
            "bench.rotated"
        },
        serde_json::json!({ "id": format!("bench-{n}"), "name": "bench", "n": n }),
        Metadata::by(Actor::system()),
    )
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn append(
    admin: &tokio_postgres::Config,
    report: &Report,
    writers: usize,
    seconds: u64,
    lanes: usize,
) -> anyhow::Result<()> {
    let config = database(admin, "gatehouse_bench_append", true).await?;
    let options = PgStoreOptions {
        append_lanes: lanes,
        ..PgStoreOptions::default()
    };
    let store = Arc::new(PgStore::connect(config.clone(), options).await?);
    let duration = Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks = (0..writers).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut version = 0u64;
            while started.elapsed() < duration {
                let t = Instant::now();
                let expected = if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                };
                store
                    .append(&format!("app-{w}"), expected, vec![event(version)])
                    .await?;
                latencies.push(t.elapsed());
                version += 1;
            }
            Ok::<_, event_store::AppendError>(latencies)
        })
    });
    let mut latencies = Vec::new();
    for t in futures::future::join_all(tasks).await {
        latencies.extend(t??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let events = latencies.len() as f64;
    let throughput = events / elapsed;

    // Baseline: a bare table with the same columns, multi-row INSERTs of
    // `writers` rows, one transaction each, for the same time.
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE raw_events (global_position BIGINT, stream_id TEXT, stream_version BIGINT, \
             event_id UUID, event_type TEXT, schema_version INT, data JSON, metadata JSON, \
             recorded_at TIMESTAMPTZ, prev_hash BYTEA, hash BYTEA)",
        )
        .await?;
    let mut values = String::new();
    for r in 0..writers {
        let b = r * 11;
        if r > 0 {
            values.push(',');
        }
        values.push_str(&format!(
            "(${},${},${},${},${},${},${}::text::json,${}::text::json,${},${},${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 9,
            b + 10,
            b + 11
        ));
    }
    let insert = client
        .prepare(&format!("INSERT INTO raw_events VALUES {values}"))
        .await?;
    let started = Instant::now();
    let mut rows = 0u64;
    let mut position = 0i64;
    while started.elapsed() < duration {
        let batch: Vec<NewEvent> = (0..writers as u64).map(|i| event(rows + i)).collect();
        let metas: Vec<String> = batch
            .iter()
            .map(|e| serde_json::to_string(&e.metadata).unwrap_or_default())
            .collect();
        let datas: Vec<&str> = batch.iter().map(|e| e.data.get()).collect();
        let now = chrono::Utc::now();
        let hash = vec![0u8; 32];
        let streams: Vec<String> = (0..writers).map(|w| format!("app-{w}")).collect();
        let mut owned: Vec<(i64, i64, i32)> = Vec::new();
        for _ in 0..writers {
            position += 1;
            owned.push((position, (rows / writers as u64) as i64 + 1, 1));
        }
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(writers * 11);
        for (i, e) in batch.iter().enumerate() {
            params.push(&owned[i].0);
            params.push(&streams[i]);
            params.push(&owned[i].1);
            params.push(&e.event_id);
            params.push(&e.event_type);
            params.push(&owned[i].2);
            params.push(&datas[i]);
            params.push(&metas[i]);
            params.push(&now);
            params.push(&hash);
            params.push(&hash);
        }
        client.batch_execute("BEGIN").await?;
        client.execute(&insert, &params).await?;
        client.batch_execute("COMMIT").await?;
        rows += writers as u64;
    }
    let baseline = rows as f64 / started.elapsed().as_secs_f64();
    report.metric("append", "throughput", throughput, "events/s");
    report.metric("append", "p50_ms", percentile(&latencies, 0.50), "ms");
    report.metric("append", "p99_ms", percentile(&latencies, 0.99), "ms");
    report.metric("append", "baseline_throughput", baseline, "events/s");
    report.metric("append", "ratio_to_baseline", throughput / baseline, "x");
    Ok(())
}

/// A database whose log holds at least `events` events; seeded once.
async fn seeded(
    admin: &tokio_postgres::Config,
    events: u64,
) -> anyhow::Result<(tokio_postgres::Config, Arc<PgStore>)> {
    let config = database(admin, &format!("gatehouse_bench_log_{events}"), false).await?;
    let store = Arc::new(PgStore::connect(config.clone(), PgStoreOptions::default()).await?);
    let head = store.head().await?;
    if head < events {
        eprintln!("seeding {} events (once)...", events - head);
        let per_call = 1000u64;
        let calls = (events - head).div_ceil(per_call);
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks = (0..4).map(|_| {
            let (store, next) = (store.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if c >= calls {
                        return Ok::<_, event_store::AppendError>(());
                    }
                    let appends = (0..per_call / 10)
                        .map(|s| {
                            let events =
                                (0..10).map(|i| event(c * per_call + s * 10 + i)).collect();
                            StreamAppend::new(
                                format!("bench-{}", uuid::Uuid::now_v7()),
                                ExpectedVersion::NoStream,
                                events,
                            )
                        })
                        .collect();
                    store.append_all(appends).await?;
                }
            })
        });
        for t in futures::future::join_all(tasks).await {
            t??;
        }
    }
    Ok((config, store))
}

/// Plain sequential scan of the log's rows: the read baseline.
async fn scan_baseline(config: &tokio_postgres::Config) -> anyhow::Result<(u64, f64)> {
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(conn);
    let started = Instant::now();
    let rows = client
        .query_raw(
            &format!(
                "SELECT {} FROM events",
                event_store::postgres::EVENT_COLUMNS
            ),
            Vec::<i64>::new(),
        )
        .await?;
    futures::pin_mut!(rows);
    let mut n = 0u64;
    while let Some(row) = rows.try_next().await? {
        let _: i64 = row.get(0);
        n += 1;
    }
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

async fn read_all(
    admin: &tokio_postgres::Config,
    report: &Report,
    events: u64,
) -> anyhow::Result<()> {
    let (config, store) = seeded(admin, events).await?;
    let started = Instant::now();
    let mut after = 0u64;
    let mut n = 0u64;
    loop {
        let page = store.read_all(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.global_position;
        n += page.len() as u64;
    }
    let throughput = n as f64 / started.elapsed().as_secs_f64();
    let (_, baseline) = scan_baseline(&config).await?;
    report.metric("read-all", "events", n as f64, "events");
    report.metric("read-all", "throughput", throughput, "events/s");
    report.metric("read-all", "baseline_throughput", baseline, "events/s");
    report.metric("read-all", "ratio_to_baseline", throughput / baseline, "x");
    Ok(())
}

async fn rebuild(
    admin: &tokio_postgres::Config,
    report: &Report,
    events: u64,
) -> anyhow::Result<()> {
    let (config, store) = seeded(admin, events).await?;
    let head = store.head().await?;
    let pool = store.pool().clone();
    let projection = projections::event_counts::EventCounts;
    let started = Instant::now();
    projections::rebuild(&pool, &projection, |_| {}).await?;
    let throughput = head as f64 / started.elapsed().as_secs_f64();
    let (_, baseline) = scan_baseline(&config).await?;
    report.metric("rebuild", "events", head as f64, "events");
    report.metric("rebuild", "throughput", throughput, "events/s");
    report.metric("rebuild", "baseline_throughput", baseline, "events/s");
    report.metric("rebuild", "ratio_to_baseline", throughput / baseline, "x");
    Ok(())
}
