//! `webhooks`: delivery through a server in this process to a receiver in
//! this process.
//!
//! - Baseline: the receiver's own ceiling, plain POSTs of the same body
//!   from as many concurrent clients as there are endpoints.
//! - Throughput: messages published over HTTP to an app with several
//!   endpoints; deliveries per second from the first publish to the last
//!   arrival.
//! - Latency: messages published at a fixed rate to one endpoint; publish
//!   (request sent) to arrival, p50 and p99, beside the publish call's own
//!   latency.
//! - Throughput again after 200,000 more messages were published through
//!   the server (`POST /v1/apps/{app}/events`, each of a type exactly one
//!   endpoint of the throughput app takes), fanned out by the feeder and
//!   delivered, so the log and the dispatcher's tables hold them and their
//!   attempts as a deployment that has run a while would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::json;

use crate::command::{create_app, workspace};
use crate::server::BenchServer;
use crate::{database, percentile, Report};

/// Messages delivered before the last throughput run.
const HISTORY: usize = 200_000;

/// Options of the scenario.
pub struct WebhookBench {
    /// Messages of each throughput run.
    pub messages: usize,
    /// Endpoints of the throughput app.
    pub endpoints: usize,
    /// Messages per second of the latency run.
    pub rate: u64,
    /// Seconds of the latency run.
    pub seconds: u64,
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A receiver that answers 204 and notes when each `webhook-id` (per path)
/// first arrived.
async fn receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let arrivals = arrivals.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            arrivals
                .lock()
                .expect("not poisoned")
                .entry(format!("{}{id}", uri.path()))
                .or_insert_with(Instant::now);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Ok(format!("http://{addr}"))
}

async fn wait_arrivals(arrivals: &Arrivals, n: usize, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while arrivals.lock().expect("not poisoned").len() < n {
        anyhow::ensure!(
            started.elapsed() < limit,
            "{} of {n} deliveries arrived",
            arrivals.lock().expect("not poisoned").len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Publishes `n` messages from 16 concurrent clients.
async fn publish_many(server: &BenchServer, app: uuid::Uuid, n: usize) -> anyhow::Result<()> {
    let per = n.div_ceil(16);
    let mut tasks = Vec::new();
    for c in 0..16 {
        let server = server.clone_client();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let body = json!({"type": "bench.happened", "payload": {"c": c, "i": i}});
                server
                    .call(
                        Method::POST,
                        &format!("/v1/apps/{app}/events"),
                        Some(body),
                        0,
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Publishes `n` messages through the server from 64 concurrent clients,
/// message `i` of type `old.e<i mod endpoints>`, which endpoint
/// `i mod endpoints` of the throughput app alone takes. A `429` (a publish
/// quota) or a `503` is retried after its `Retry-After` (1 s without one).
async fn publish_history(
    server: &BenchServer,
    app: uuid::Uuid,
    n: usize,
    endpoints: usize,
) -> anyhow::Result<()> {
    const CLIENTS: usize = 64;
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/v1/apps/{app}/events", server.base);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, token, next) = (
            server.http.clone(),
            url.clone(),
            server.token.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let body = json!({"type": format!("old.e{}", i % endpoints), "payload": {"i": i}});
                loop {
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    let status = r.status();
                    // A quota's 429, or a 503 (the server busy: its answer
                    // says to retry shortly): both are back-pressure.
                    if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    {
                        let wait = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(1)
                            .max(1);
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                        continue;
                    }
                    if !status.is_success() {
                        let text = r.text().await.unwrap_or_default();
                        anyhow::bail!("publishing message {i}: {status} {text}");
                    }
                    break;
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn throughput(
    server: &BenchServer,
    app: uuid::Uuid,
    arrivals: &Arrivals,
    opts: &WebhookBench,
) -> anyhow::Result<f64> {
    arrivals.lock().expect("not poisoned").clear();
    let per = opts.messages.div_ceil(16) * 16;
    let started = Instant::now();
    publish_many(server, app, opts.messages).await?;
    let total = per * opts.endpoints;
    wait_arrivals(arrivals, total, Duration::from_secs(600)).await?;
    let last = arrivals
        .lock()
        .expect("not poisoned")
        .values()
        .max()
        .copied()
        .context("arrivals")?;
    Ok(total as f64 / (last - started).as_secs_f64())
}

/// Runs the scenario.
pub async fn webhooks(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    report: &Report,
    opts: WebhookBench,
) -> anyhow::Result<()> {
    let arrivals: Arrivals = Default::default();
    let base = receiver(arrivals.clone()).await?;

    // The receiver's ceiling.
    let body =
        br#"{"type":"bench.happened","timestamp":"2026-01-01T00:00:00Z","data":{"c":1,"i":1}}"#;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let n = 4000usize;
    let mut tasks = Vec::new();
    for c in 0..opts.endpoints {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..n / opts.endpoints {
                http.post(format!("{base}/baseline{c}"))
                    .header("webhook-id", format!("b{i}"))
                    .body(body.to_vec())
                    .send()
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let baseline = n as f64 / started.elapsed().as_secs_f64();

    let config = database(admin, "gatehouse_bench_webhooks", true).await?;
    let server = BenchServer::start(config.clone(), &data_dir.join("webhooks")).await?;
    let org = workspace(&server).await?;
    let app = create_app(&server, &org, "hooks").await?;
    for e in 0..opts.endpoints {
        // `old.e<e>`: this endpoint's share of the history published before
        // the last throughput run.
        let body = json!({"url": format!("{base}/e{e}"), "mode": "test",
                          "event_types": ["bench.*", format!("old.e{e}")]});
        server
            .call(
                Method::POST,
                &format!("/v1/apps/{app}/webhooks"),
                Some(body),
                0,
            )
            .await?;
    }
    let rate = throughput(&server, app, &arrivals, &opts).await?;

    // Latency at a fixed rate, to one endpoint of another app.
    let lone = create_app(&server, &org, "lone").await?;
    let body = json!({"url": format!("{base}/lone"), "mode": "test", "event_types": ["bench.*"]});
    server
        .call(
            Method::POST,
            &format!("/v1/apps/{lone}/webhooks"),
            Some(body),
            0,
        )
        .await?;
    arrivals.lock().expect("not poisoned").clear();
    let sent: Arc<Mutex<Vec<(String, Instant, Duration)>>> = Default::default();
    let total = (opts.rate * opts.seconds) as usize;
    let gap = Duration::from_secs_f64(1.0 / opts.rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (server, sent) = (server.clone_client(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let body = json!({"type": "bench.happened", "payload": {"i": i}});
            let (m, _) = server
                .call(
                    Method::POST,
                    &format!("/v1/apps/{lone}/events"),
                    Some(body),
                    0,
                )
                .await?;
            let id = m["webhook_id"].as_str().unwrap_or_default().to_owned();
            sent.lock()
                .expect("not poisoned")
                .push((format!("/lone{id}"), at, at.elapsed()));
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    wait_arrivals(&arrivals, total, Duration::from_secs(120)).await?;
    let (mut latencies, mut calls) = (Vec::new(), Vec::new());
    {
        let got = arrivals.lock().expect("not poisoned");
        for (id, at, call) in sent.lock().expect("not poisoned").iter() {
            latencies.push(*got.get(id).context("every message arrived")? - *at);
            calls.push(*call);
        }
    }
    latencies.sort();
    calls.sort();

    // Where the time goes: commit to fan-out, fan-out to the attempt.
    let client = server.pool_client().await?;
    let lags = client
        .query_one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY \
                      EXTRACT(EPOCH FROM d.created_at - m.created_at)) * 1000, \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY \
                      EXTRACT(EPOCH FROM a.at - d.created_at)) * 1000 \
             FROM delivery.deliveries d JOIN delivery.messages m USING (message_id) \
             JOIN delivery.attempts a ON a.delivery_id = d.id WHERE m.app_id = $1",
            &[&lone],
        )
        .await?;
    let (feed_lag, dispatch_lag): (f64, f64) = (lags.get(0), lags.get(1));

    // 200,000 messages delivered before, with their attempts: published
    // through the server, fanned out by its feeder, sent by its dispatcher.
    eprintln!("publishing {HISTORY} messages through the server for throughput_at_200k...");
    let history_started = Instant::now();
    arrivals.lock().expect("not poisoned").clear();
    publish_history(&server, app, HISTORY, opts.endpoints).await?;
    wait_arrivals(&arrivals, HISTORY, Duration::from_secs(3600)).await?;
    // Every attempt recorded, so none is in flight when the run starts.
    let delivered = client
        .prepare(
            "SELECT count(*) FROM delivery.deliveries d JOIN delivery.messages m USING (message_id) \
             WHERE m.app_id = $1 AND m.event_type LIKE 'old.%' AND d.status = 'delivered'",
        )
        .await?;
    loop {
        let n: i64 = client.query_one(&delivered, &[&app]).await?.get(0);
        if n as usize >= HISTORY {
            break;
        }
        anyhow::ensure!(
            history_started.elapsed() < Duration::from_secs(3600),
            "{n} of {HISTORY} history deliveries recorded as delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{HISTORY} messages published and delivered in {:.0?}",
        history_started.elapsed()
    );
    client
        .batch_execute(
            "ANALYZE delivery.messages; ANALYZE delivery.deliveries; ANALYZE delivery.attempts;",
        )
        .await?;
    drop(client);
    let rate_200k = throughput(&server, app, &arrivals, &opts).await?;

    let s = "webhooks";
    report.metric(s, "throughput", rate, "deliveries/s");
    report.metric(s, "baseline_throughput", baseline, "requests/s");
    report.metric(s, "p50_ms", percentile(&latencies, 0.50), "ms");
    report.metric(s, "p99_ms", percentile(&latencies, 0.99), "ms");
    report.metric(s, "feed_lag_p50_ms", feed_lag, "ms");
    report.metric(s, "dispatch_lag_p50_ms", dispatch_lag, "ms");
    report.metric(s, "publish_p50_ms", percentile(&calls, 0.50), "ms");
    report.metric(s, "publish_p99_ms", percentile(&calls, 0.99), "ms");
    report.metric(s, "throughput_at_200k", rate_200k, "deliveries/s");
    server.stop().await
}
