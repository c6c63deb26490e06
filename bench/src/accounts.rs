//! `sign-in-flood`: N concurrent sign-ins with random emails against a
//! `gatehouse` server running as its own process (so its resident memory is
//! its own), with `GET /healthz` timed throughout; baseline: `/healthz`
//! alone on the same server just before. Password hashing is bounded, so
//! the flood must end in 401, 429 or 503 answers, flat memory, and a
//! `/healthz` that keeps answering.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{database, percentile, Report};

/// What to run.
pub struct FloodBench {
    /// Concurrent sign-ins.
    pub sign_ins: usize,
}

/// A libpq connection string for a child process.
fn conninfo(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut parts = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        match host {
            Host::Tcp(h) => parts.push(format!("host={h}")),
            Host::Unix(p) => parts.push(format!("host={}", p.display())),
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={db}"));
    }
    if let Some(pw) = config.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(pw)));
    }
    parts.join(" ")
}

/// `/proc/<pid>/status` field `name` (`VmRSS`, `VmHWM`), in MiB.
fn memory_mib(pid: u32, name: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn healthz_ms(http: &reqwest::Client, base: &str) -> Option<Duration> {
    let started = Instant::now();
    let r = http.get(format!("{base}/healthz")).send().await.ok()?;
    r.status().is_success().then(|| started.elapsed())
}

/// One flood's answers and `/healthz` meanwhile.
struct Flood {
    statuses: Vec<u16>,
    elapsed: Duration,
    healthz: Vec<Duration>,
    healthz_failed: usize,
}

/// `n` concurrent sign-ins with random emails (from one client address, or
/// each from its own), with `/healthz` timed on its own connection until
/// the last is answered.
async fn flood(http: &reqwest::Client, base: &str, n: usize, spread: bool) -> Flood {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let sign_ins = async {
        let statuses = futures::future::join_all((0..n).map(|i| {
            let client = client.clone();
            let address = if spread {
                // 10.1.0.0/16 and up: never the one address of the first phase.
                format!("10.{}.{}.{}", 1 + i / 65_536 % 255, i / 256 % 256, i % 256)
            } else {
                "10.0.0.1".to_owned()
            };
            async move {
                let body = serde_json::json!({
                    "email": format!("flood-{}@example.com", uuid::Uuid::new_v4().simple()),
                    "password": "a password for nobody",
                });
                client
                    .post(format!("{base}/v1/sessions"))
                    .header("x-forwarded-for", address)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        }))
        .await;
        done.store(true, std::sync::atomic::Ordering::Release);
        statuses
    };
    let probe = async {
        let (mut during, mut failed) = (Vec::new(), 0usize);
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            match healthz_ms(http, base).await {
                Some(d) => during.push(d),
                None => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (during, failed)
    };
    let (statuses, (mut healthz, healthz_failed)) = tokio::join!(sign_ins, probe);
    healthz.sort();
    Flood {
        statuses,
        elapsed: started.elapsed(),
        healthz,
        healthz_failed,
    }
}

/// Runs the scenario.
pub async fn sign_in_flood(
    admin: &tokio_postgres::Config,
    data_dir: &Path,
    report: &Report,
    opts: FloodBench,
) -> anyhow::Result<()> {
    let bin = std::env::current_exe()?.with_file_name("gatehouse");
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: build it beside the bench (cargo build --release --bin gatehouse)",
        bin.display()
    );
    let config = database(admin, "gatehouse_bench_flood", true).await?;
    let dir = data_dir.join("flood");
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(&bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", conninfo(&config))
        .env("GATEHOUSE_DATA_DIR", &dir)
        .env("RUST_LOG", "error")
        // The flood speaks from many client addresses.
        .env("GATEHOUSE_CLIENT_IP_HEADER", "x-forwarded-for")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("the server's pid")?;
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if healthz_ms(&http, &base).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Baseline: /healthz alone.
    let mut alone = Vec::new();
    for _ in 0..200 {
        if let Some(d) = healthz_ms(&http, &base).await {
            alone.push(d);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    alone.sort();
    let rss_before = memory_mib(pid, "VmRSS:");

    // The flood from one client address (its throttle answers most), then
    // with every sign-in from an address of its own (only the bounded
    // hasher stands between them and the server's memory).
    for (phase, spread) in [("one_address", false), ("own_addresses", true)] {
        let f = flood(&http, &base, opts.sign_ins, spread).await;
        let count = |code: u16| f.statuses.iter().filter(|&&s| s == code).count() as f64;
        let other = f
            .statuses
            .iter()
            .filter(|s| !matches!(s, 401 | 429 | 503))
            .count() as f64;
        let s = format!("signin_{phase}");
        let s = s.as_str();
        report.metric(s, "concurrent_sign_ins", opts.sign_ins as f64, "requests");
        report.metric(s, "flood_seconds", f.elapsed.as_secs_f64(), "s");
        report.metric(s, "answered_401", count(401), "requests");
        report.metric(s, "answered_429", count(429), "requests");
        report.metric(s, "answered_503", count(503), "requests");
        report.metric(s, "answered_other", other, "requests");
        report.metric(s, "rss_after_mib", memory_mib(pid, "VmRSS:"), "MiB");
        report.metric(s, "healthz_p50_ms", percentile(&f.healthz, 0.5), "ms");
        report.metric(s, "healthz_p95_ms", percentile(&f.healthz, 0.95), "ms");
        report.metric(s, "healthz_max_ms", percentile(&f.healthz, 1.0), "ms");
        report.metric(s, "healthz_failed", f.healthz_failed as f64, "requests");
    }
    let s = "signin";
    report.metric(s, "rss_before_mib", rss_before, "MiB");
    report.metric(s, "rss_peak_mib", memory_mib(pid, "VmHWM:"), "MiB");
    report.metric(s, "baseline_healthz_p50_ms", percentile(&alone, 0.5), "ms");
    report.metric(s, "baseline_healthz_p95_ms", percentile(&alone, 0.95), "ms");
    report.metric(s, "baseline_healthz_max_ms", percentile(&alone, 1.0), "ms");
    let _ = child.kill().await;
    Ok(())
}
