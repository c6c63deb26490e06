//! `verify`: the gateway's key verification.
//!
//! - In process: verdicts per second from the index on one core (a
//!   million keys indexed), beside nothing: it is the floor.
//! - Over HTTP: `POST /v1/keys/verify` with keep-alive over loopback,
//!   driven by a small HTTP/1.1 load generator in this process, beside the
//!   same server answering `GET /healthz` under the same generator; then
//!   p50/p99 at a fixed 20,000 req/s (latency from each request's
//!   scheduled instant, so a stalled server is not hidden).
//! - The index's heap per key at 100,000 and 1,000,000 keys (the bench's
//!   allocator counts every byte).
//! - A revoke's commit on one node to the first `revoked` answer on a
//!   second node (its own store, index and LISTEN connection) over the
//!   same database.
//! - The usage events the verifications produced: at most one per key per
//!   metering interval (a minute by default).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::apps::Mode;
use domain::keys::format;
use domain::keys::KeyKind;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;
use verifier::Index;

use crate::command::{create_app, workspace};
use crate::server::{BenchServer, GATEWAY_TOKEN};
use crate::{database, percentile, Report, HEAP};

/// Options of the scenario.
pub struct VerifyBench {
    /// Seconds each HTTP throughput side runs.
    pub seconds: u64,
    /// Concurrent keep-alive connections of the load generator.
    pub connections: usize,
    /// The fixed rate for the latency figures, requests per second.
    pub rate: u64,
    /// Connections of the fixed-rate run.
    pub rate_connections: usize,
    /// Revokes timed across the two nodes.
    pub revokes: usize,
}

/// Runs the scenario.
pub async fn verify(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    report: &Report,
    opts: VerifyBench,
) -> anyhow::Result<()> {
    memory_and_in_process(report)?;

    let config = database(admin, "gatehouse_bench_verify", true).await?;
    let server = BenchServer::start(config.clone(), &data_dir.join("verify-a")).await?;
    let org = workspace(&server).await?;
    let app = create_app(&server, &org, "gateway").await?;
    let mut keys = Vec::new();
    let mut key_ids = Vec::new();
    let mut at = 0;
    for i in 0..100 {
        let body = json!({"name": format!("bench {i}"), "mode": "test", "type": "secret"});
        let (key, position) = server
            .call(Method::POST, &format!("/v1/apps/{app}/keys"), Some(body), 0)
            .await?;
        keys.push(key["key"].as_str().context("a key")?.to_owned());
        key_ids.push(key["id"].as_str().context("an id")?.to_owned());
        at = position;
    }
    wait_indexed(&server, at).await?;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let verify_requests: Arc<Vec<Vec<u8>>> = Arc::new(
        keys.iter()
            .map(|k| {
                let body = json!({"key": k}).to_string();
                format!(
                    "POST /v1/keys/verify HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {GATEWAY_TOKEN}\r\n\
                     content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            })
            .collect(),
    );
    let health_requests: Arc<Vec<Vec<u8>>> = Arc::new(vec![format!(
        "GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n"
    )
    .into_bytes()]);
    let first_verification = chrono::Utc::now();
    let duration = Duration::from_secs(opts.seconds);
    let conns = opts.connections;
    let baseline = generate({
        let (addr, requests) = (addr.clone(), health_requests.clone());
        move || async move { closed_loop(&addr, &requests, conns, duration).await }
    })
    .await?;
    let throughput = generate({
        let (addr, requests) = (addr.clone(), verify_requests.clone());
        move || async move { closed_loop(&addr, &requests, conns, duration).await }
    })
    .await?;
    let (rate, rate_conns) = (opts.rate, opts.rate_connections);
    let latencies = generate({
        let (addr, requests) = (addr.clone(), verify_requests.clone());
        move || async move { open_loop(&addr, &requests, rate_conns, rate, duration).await }
    })
    .await?;
    report.metric(
        "verify",
        "connections",
        opts.connections as f64,
        "connections",
    );
    report.metric("verify", "throughput", throughput.rate, "req/s");
    report.metric("verify", "baseline_throughput", baseline.rate, "req/s");
    report.metric(
        "verify",
        "ratio_to_baseline",
        throughput.rate / baseline.rate,
        "x",
    );
    report.metric("verify", "fixed_rate", opts.rate as f64, "req/s");
    report.metric(
        "verify",
        "fixed_rate_connections",
        opts.rate_connections as f64,
        "connections",
    );
    report.metric("verify", "p50_ms", percentile(&latencies, 0.5), "ms");
    report.metric("verify", "p99_ms", percentile(&latencies, 0.99), "ms");

    // Top the verifications up to a million, then count the usage events.
    let mut verifications = throughput.requests + latencies.len() as u64;
    while verifications < 1_000_000 {
        let more = generate({
            let (addr, requests) = (addr.clone(), verify_requests.clone());
            move || async move { closed_loop(&addr, &requests, conns, Duration::from_secs(5)).await }
        })
        .await?;
        verifications += more.requests;
    }
    let load_ended = chrono::Utc::now();

    let second = server
        .second_node(config.clone(), &data_dir.join("verify-b"))
        .await?;
    let mut revoke_ms = Vec::new();
    for i in 0..opts.revokes {
        let body = json!({"name": format!("revoked {i}"), "mode": "test", "type": "secret"});
        let (key, _) = server
            .call(Method::POST, &format!("/v1/apps/{app}/keys"), Some(body), 0)
            .await?;
        let (id, plaintext) = (
            key["id"].as_str().context("id")?,
            key["key"].as_str().context("key")?,
        );
        until(&second, plaintext, true).await?;
        server
            .call(Method::POST, &format!("/v1/keys/{id}/revoke"), None, 0)
            .await?;
        let committed = Instant::now();
        until(&second, plaintext, false).await?;
        revoke_ms.push(committed.elapsed());
    }
    revoke_ms.sort();
    report.metric(
        "verify",
        "revoke_to_refusal_p50_ms",
        percentile(&revoke_ms, 0.5),
        "ms",
    );
    report.metric(
        "verify",
        "revoke_to_refusal_p99_ms",
        percentile(&revoke_ms, 0.99),
        "ms",
    );
    second.stop().await?;

    let store_pool = server.store.pool().clone();
    server.stop().await?; // flushes the last interval
                          // Metering intervals are aligned to the minute: the load's calls fall
                          // into the minutes from its first to its last, `minutes elapsed` being
                          // the minute boundaries crossed between them.
    let minute = |t: chrono::DateTime<chrono::Utc>| t.timestamp().div_euclid(60);
    let minutes = (minute(load_ended) - minute(first_verification)) as u64;
    let client = store_pool.get().await?;
    let usage_events: i64 = client
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'usage.recorded' \
             AND data->>'key_id' = ANY($1)",
            &[&key_ids],
        )
        .await?
        .get(0);
    report.metric("verify", "verifications", verifications as f64, "calls");
    report.metric("verify", "minutes_elapsed", minutes as f64, "minutes");
    report.metric("verify", "usage_events", usage_events as f64, "events");
    report.metric(
        "verify",
        "usage_events_bound",
        (keys.len() as u64 * (minutes + 1)) as f64,
        "events",
    );
    Ok(())
}

/// The index's heap per key, and in-process verdicts per second on one
/// core over the million-key index.
fn memory_and_in_process(report: &Report) -> anyhow::Result<()> {
    let mut probe = Vec::new();
    let mut bytes_per_key = 0.0;
    let mut index = None;
    for n in [100_000usize, 1_000_000] {
        drop(index.take());
        let before = HEAP.current_usage();
        let built = build_index(n, &mut probe);
        let after = HEAP.current_usage();
        bytes_per_key = after.saturating_sub(before) as f64 / n as f64;
        report.metric(
            "verify",
            &format!("bytes_per_key_{}k", n / 1000),
            bytes_per_key,
            "bytes",
        );
        index = Some(built);
    }
    report.metric("verify", "bytes_per_key", bytes_per_key, "bytes");
    let index = index.context("an index")?;
    let valid = AtomicU64::new(0);
    // One thread: one core.
    let rate = std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(3) {
                for key in &probe {
                    if index.verify(key, None).valid() {
                        valid.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            }
            n as f64 / started.elapsed().as_secs_f64()
        })
        .join()
    })
    .map_err(|_| anyhow::anyhow!("the verifying thread panicked"))?;
    anyhow::ensure!(
        valid.load(Ordering::Relaxed) > 0,
        "no verification was valid"
    );
    report.metric("verify", "in_process_throughput", rate, "verifications/s");
    Ok(())
}

/// An index of `n` keys over 1,000 apps, as a node loads it from the read
/// model; `probe` receives 1,000 of the plaintexts.
fn build_index(n: usize, probe: &mut Vec<String>) -> Index {
    use event_schemas::app::{AppCreated, AppEvent};
    let index = Index::new("gh", Arc::new(verifier::SystemClock));
    index.reserve(n);
    let apps: Vec<(Uuid, Uuid)> = (0..1000u128)
        .map(|i| {
            (
                Uuid::from_u128(1 << 64 | i),
                Uuid::from_u128(2 << 64 | (i / 10)),
            )
        })
        .collect();
    for &(app_id, org_id) in &apps {
        let created = AppEvent::Created(AppCreated {
            app_id,
            org_id,
            team_id: None,
            name: String::new(),
            slug: String::new(),
            description: String::new(),
            origins: vec![],
            callback_urls: vec![],
            attributes: Default::default(),
            sandbox_tenant_id: None,
        });
        let _ = index.load_app(app_id, org_id, &[created]);
    }
    probe.clear();
    for i in 0..n {
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
        secret[8] = 0xb5;
        let minted = format::mint("gh", Mode::Test, KeyKind::Secret, &secret);
        let (app_id, org_id) = apps[i % apps.len()];
        index.load_key(verifier::LoadedKey {
            key_id: Uuid::from_u128(i as u128 + 1),
            app_id,
            org_id,
            hash: minted.hash,
            mode: Mode::Test,
            kind: KeyKind::Secret,
            scopes: Vec::new(),
            expires_ms: None,
            stops_ms: None,
            revoked: false,
            rate_limit: None,
            imported_prefix: None,
        });
        if i % (n / 1000).max(1) == 0 && probe.len() < 1000 {
            probe.push(minted.plaintext);
        }
    }
    index.mark_ready();
    index
}

/// Runs a load generator on a runtime and thread of its own, so its tasks
/// never queue in front of the server's on the server's workers.
async fn generate<T, F>(make: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(make())
    })
    .await?
}

/// Waits until the server's index has applied `at`.
async fn wait_indexed(server: &BenchServer, at: u64) -> anyhow::Result<()> {
    for _ in 0..2000 {
        let ready: serde_json::Value = server
            .http
            .get(format!("{}/readyz", server.base))
            .bearer_auth(crate::server::GATEWAY_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if ready["verification"]["position"].as_u64() >= Some(at) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the index never reached position {at}")
}

/// Polls `server` until `key` verifies as `valid` (or not).
async fn until(server: &BenchServer, key: &str, valid: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let v: serde_json::Value = server
            .http
            .post(format!("{}/v1/keys/verify", server.base))
            .bearer_auth(GATEWAY_TOKEN)
            .json(&json!({"key": key}))
            .send()
            .await?
            .json()
            .await?;
        if v["valid"] == valid {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "no verdict change in 10 s"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// One keep-alive HTTP/1.1 connection: sends a request, reads one
/// response (headers, then `content-length` bytes), checks it is a 200.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn round_trip(&mut self, request: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        loop {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                continue;
            };
            let head = std::str::from_utf8(&self.buf[..end])?;
            anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "not 200: {head}");
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .context("a content-length")?;
            if self.buf.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Throughput {
    rate: f64,
    requests: u64,
}

/// As fast as `connections` keep-alive connections go, each sending the
/// next request when its last response is in.
async fn closed_loop(
    addr: &str,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mut conn = Conn::open(addr).await?;
        let (requests, done, stop) = (requests.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                conn.round_trip(&requests[i % requests.len()]).await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        t.await??;
    }
    let requests = done.load(Ordering::Relaxed);
    Ok(Throughput {
        rate: requests as f64 / elapsed.as_secs_f64(),
        requests,
    })
}

/// `rate` requests per second spread over `connections`; each latency is
/// measured from the request's scheduled instant when the connection was
/// still busy then (queueing counts), else from when it was sent (the
/// timer's own lateness does not).
async fn open_loop(
    addr: &str,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let per_conn = Duration::from_secs_f64(connections as f64 / rate as f64);
    let count = (duration.as_secs_f64() / per_conn.as_secs_f64()) as u64;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mut conn = Conn::open(addr).await?;
        let requests = requests.clone();
        let offset = per_conn.mul_f64(c as f64 / connections as f64);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count as usize);
            let mut free_at = start;
            for i in 0..count {
                let scheduled = start + offset + per_conn.mul_f64(i as f64);
                tokio::time::sleep_until(scheduled).await;
                let sent = tokio::time::Instant::now();
                let from = if free_at > scheduled { scheduled } else { sent };
                conn.round_trip(&requests[(c + i as usize) % requests.len()])
                    .await?;
                free_at = tokio::time::Instant::now();
                latencies.push(free_at - from);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    Ok(all)
}
