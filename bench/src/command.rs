//! `command`: one app command (`PATCH /v1/apps/{app}`) over HTTP, on an
//! app whose stream holds a few events and on one holding many (edits, and
//! installs as they were recorded before installations had streams of their
//! own), beside a bare `append` of one event measured in the same run; and
//! commands per second for concurrent clients on distinct apps beside bare
//! appends per second. The command path must cost the same at any stream
//! length: the executor reads only the stream's tail.

use std::time::{Duration, Instant};

use event_schemas::app::{
    app_stream, AppEvent, AppInstalled, AppUpdated, InstallLinkCreated, VersionCreated,
    VersionPublished,
};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::{EventStore, EventStoreExt, StreamAppend};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::server::BenchServer;
use crate::{database, event, percentile, Report};

/// Options of the scenario.
pub struct CommandBench {
    /// Events in the long app's stream.
    pub long_events: u64,
    /// Sequential commands measured on each app.
    pub samples: usize,
    /// Concurrent clients for the throughput figures.
    pub clients: usize,
    /// Seconds each throughput side runs.
    pub seconds: u64,
}

/// Runs the scenario.
pub async fn command(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    report: &Report,
    opts: CommandBench,
) -> anyhow::Result<()> {
    let config = database(admin, "gatehouse_bench_command", true).await?;
    let server = BenchServer::start(config, &data_dir.join("command-server")).await?;
    let org = workspace(&server).await?;
    let short = create_app(&server, &org, "short").await?;
    let long = create_app(&server, &org, "long").await?;
    let long_version = seed_long_stream(&server, long, opts.long_events).await?;
    // Let the read models digest the seeded history before measuring, so
    // the projections do not compete with the commands for the CPU.
    let head = server.store.head().await?;
    server
        .call(Method::GET, &format!("/v1/apps/{long}"), None, head)
        .await?;

    let (short_ms, long_ms) = edits(&server, short, long, opts.samples).await?;
    let append_ms = bare_appends(&server, opts.samples).await?;
    let (p50_short, p50_long) = (percentile(&short_ms, 0.5), percentile(&long_ms, 0.5));
    report.metric(
        "command",
        "long_stream_events",
        long_version as f64,
        "events",
    );
    report.metric("command", "p50_ms_short", p50_short, "ms");
    report.metric("command", "p99_ms_short", percentile(&short_ms, 0.99), "ms");
    report.metric("command", "p50_ms_long", p50_long, "ms");
    report.metric("command", "p99_ms_long", percentile(&long_ms, 0.99), "ms");
    report.metric("command", "ratio_long_to_short", p50_long / p50_short, "x");
    report.metric(
        "command",
        "baseline_p50_ms_append",
        percentile(&append_ms, 0.5),
        "ms",
    );

    let mut apps = Vec::new();
    for i in 0..opts.clients {
        apps.push(create_app(&server, &org, &format!("busy-{i}")).await?);
    }
    let duration = Duration::from_secs(opts.seconds);
    let throughput = concurrent_edits(&server, &apps, duration).await?;
    let baseline = concurrent_appends(&server, opts.clients, duration).await?;
    report.metric("command", "clients", opts.clients as f64, "clients");
    report.metric("command", "throughput", throughput, "commands/s");
    report.metric("command", "baseline_throughput", baseline, "appends/s");
    report.metric("command", "ratio_to_baseline", throughput / baseline, "x");
    server.stop().await
}

/// An organisation with the Developers workspace: terms accepted, and a
/// plan with `platform.api` (the bench user is its owner and staff).
pub(crate) async fn workspace(server: &BenchServer) -> anyhow::Result<String> {
    workspace_named(server, "bench").await
}

/// An organisation `slug` with the terms accepted and a plan with the API.
pub(crate) async fn workspace_named(server: &BenchServer, slug: &str) -> anyhow::Result<String> {
    let (org, _) = server
        .call(
            Method::POST,
            "/v1/orgs",
            Some(json!({"slug": slug, "name": format!("Org {slug}")})),
            0,
        )
        .await?;
    let org = org["id"].as_str().unwrap_or_default().to_owned();
    let (terms, _) = server
        .call(Method::GET, "/v1/developer-terms", None, 0)
        .await?;
    server
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/developer-terms/accept"),
            Some(json!({"version": terms["version"]})),
            0,
        )
        .await?;
    let plan = json!({
        "plan": "pro", "modules": ["platform.api"], "monthly_call_limit": 1_000_000_000_000u64,
        "subscription_state": "active",
        "billing_window_start": "2026-11-01T00:00:00Z", "billing_window_end": "2026-12-01T00:00:00Z",
    });
    server
        .call(Method::PUT, &format!("/v1/orgs/{org}/plan"), Some(plan), 0)
        .await?;
    Ok(org)
}

pub(crate) async fn create_app(
    server: &BenchServer,
    org: &str,
    slug: &str,
) -> anyhow::Result<Uuid> {
    let (app, _) = server
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            Some(json!({"name": format!("Bench {slug}"), "slug": slug})),
            0,
        )
        .await?;
    Ok(app["id"].as_str().unwrap_or_default().parse()?)
}

/// Appends `events` to the app's stream: half edits, half installs through
/// one link, as app streams held them before installations moved out.
async fn seed_long_stream(server: &BenchServer, app: Uuid, events: u64) -> anyhow::Result<u64> {
    let stream = app_stream(app);
    let mut version = server.store.read_stream(&stream, 1, 100).await?.len() as u64;
    let meta = Metadata::by(Actor::system());
    let (version_id, link_id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut pending: Vec<AppEvent> = vec![
        AppEvent::VersionCreated(VersionCreated {
            version_id,
            label: "1.0.0".into(),
            manifest: json!({"name": "Bench"}),
        }),
        AppEvent::VersionPublished(VersionPublished { version_id }),
        AppEvent::InstallLinkCreated(InstallLinkCreated {
            link_id,
            version_id,
            token_hash: "0".repeat(64),
            single_use: false,
            expires_at: chrono::Utc::now() + chrono::Duration::days(30),
        }),
    ];
    let mut n = pending.len() as u64;
    while n < events || !pending.is_empty() {
        while pending.len() < 1000 && n < events {
            pending.push(if n.is_multiple_of(2) {
                AppEvent::Updated(AppUpdated {
                    description: Some(format!("edit {n}")),
                    ..AppUpdated::default()
                })
            } else {
                AppEvent::Installed(AppInstalled {
                    org_id: Uuid::now_v7(),
                    version_id,
                    link_id,
                })
            });
            n += 1;
        }
        let batch: Vec<NewEvent> = pending
            .drain(..)
            .map(|e| NewEvent::from_domain(&e, meta.clone()))
            .collect();
        let len = batch.len() as u64;
        server
            .store
            .append_all(vec![StreamAppend::new(
                stream.clone(),
                ExpectedVersion::Exact(version),
                batch,
            )])
            .await?;
        version += len;
    }
    Ok(version)
}

/// Sequential edits alternating between the two apps, so drift in the
/// machine's speed falls on both alike; each one's latency, sorted (after
/// one unmeasured edit of each that loads it).
async fn edits(
    server: &BenchServer,
    short: Uuid,
    long: Uuid,
    samples: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut latencies = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..=samples {
        for (app, into) in [(short, &mut latencies.0), (long, &mut latencies.1)] {
            let body = json!({"description": format!("measured edit {i}")});
            let started = Instant::now();
            server
                .call(Method::PATCH, &format!("/v1/apps/{app}"), Some(body), 0)
                .await?;
            if i > 0 {
                into.push(started.elapsed());
            }
        }
    }
    latencies.0.sort();
    latencies.1.sort();
    Ok(latencies)
}

/// Sequential bare appends of one event to one stream, through the store.
async fn bare_appends(server: &BenchServer, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(samples);
    for v in 0..samples as u64 {
        let expected = if v == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(v)
        };
        let started = Instant::now();
        server
            .store
            .append("bench-latency", expected, vec![event(v)])
            .await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

/// Commands per second: one client per app, each editing its own app.
async fn concurrent_edits(
    server: &BenchServer,
    apps: &[Uuid],
    duration: Duration,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let clients = apps.iter().map(|app| async move {
        let path = format!("/v1/apps/{app}");
        let mut done = 0u64;
        while started.elapsed() < duration {
            let body = json!({"description": format!("concurrent edit {done}")});
            server.call(Method::PATCH, &path, Some(body), 0).await?;
            done += 1;
        }
        Ok::<_, anyhow::Error>(done)
    });
    let mut total = 0;
    for done in futures::future::join_all(clients).await {
        total += done?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Bare appends per second: one writer per stream, one event each.
async fn concurrent_appends(
    server: &BenchServer,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let store = &server.store;
    let tasks = (0..writers).map(|w| async move {
        let mut version = 0u64;
        while started.elapsed() < duration {
            let expected = if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            };
            store
                .append(
                    &format!("bench-concurrent-{w}"),
                    expected,
                    vec![event(version)],
                )
                .await?;
            version += 1;
        }
        Ok::<_, anyhow::Error>(version)
    });
    let mut total = 0;
    for done in futures::future::join_all(tasks).await {
        total += done?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
