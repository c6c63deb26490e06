//! `rebuild-all` and `audit`, over a generated history of every kind of
//! event ([`crate::history`]).
//!
//! - `rebuild-all`: every projection rebuilt blue/green in one pass over
//!   the log (`gatehouse-replay rebuild --all`); events/s of the log until
//!   the last read model is swapped in, beside a plain sequential scan of
//!   the log; each read model's own seconds (folding, writing, indexing
//!   and swapping); the peak heap of the process.
//! - `audit`: one history page, with each filter, through a server in this
//!   process: p50 and p99 beside `GET /healthz` in the same run; and the
//!   platform export streamed to the end, entries/s and MB/s beside the
//!   plain scan, and the peak heap while it streamed.

use std::time::{Duration, Instant};

use event_store::EventStore;
use reqwest::Method;

use crate::server::BenchServer;
use crate::{percentile, scan_baseline, Report};

/// Rebuilds every projection at once.
pub async fn rebuild_all(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    report: &Report,
    events: u64,
) -> anyhow::Result<()> {
    let (config, store) = crate::history::seeded(admin, data_dir, events).await?;
    let head = store.head().await?;
    let all = projections::all();
    let pool = event_store::postgres::pool(&config, 4);
    let heap_before = crate::HEAP.current_usage();
    crate::HEAP.reset_peak_usage();
    let started = Instant::now();
    let rebuilt = projections::rebuild_all(&pool, &all, Default::default(), |_| {}).await?;
    let peak_heap = crate::HEAP.peak_usage().saturating_sub(heap_before);
    let mut each = Vec::new();
    for r in rebuilt {
        r.outcome?;
        each.push((r.name, r.applying + r.finishing));
    }
    let wall = started.elapsed();
    let (_, baseline) = scan_baseline(&config).await?;
    let throughput = head as f64 / wall.as_secs_f64();
    report.metric("rebuild-all", "events", head as f64, "events");
    report.metric(
        "rebuild-all",
        "read_models",
        all.len() as f64,
        "projections",
    );
    report.metric("rebuild-all", "until_all_swapped", wall.as_secs_f64(), "s");
    report.metric("rebuild-all", "throughput", throughput, "events/s");
    report.metric("rebuild-all", "baseline_scan", baseline, "events/s");
    report.metric(
        "rebuild-all",
        "ratio_to_baseline",
        throughput / baseline,
        "x",
    );
    report.metric(
        "rebuild-all",
        "peak_heap",
        peak_heap as f64 / 1_048_576.0,
        "MiB",
    );
    for (name, t) in each {
        report.metric("rebuild-all", &format!("{name}_s"), t.as_secs_f64(), "s");
    }
    Ok(())
}

/// Samples `n` sequential GETs of `path`.
async fn sample(server: &BenchServer, path: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let caller = server.clone_client();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        caller.call(Method::GET, path, None, 0).await?;
        out.push(t.elapsed());
    }
    out.sort();
    Ok(out)
}

/// One audit page with each filter, and the platform export.
pub async fn audit(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    report: &Report,
    events: u64,
    samples: usize,
) -> anyhow::Result<()> {
    let (config, store) = crate::history::seeded(admin, data_dir, events).await?;
    let head = store.head().await?;
    let server = BenchServer::reopen(config.clone(), &data_dir.join("audit-server")).await?;
    // The first read waits until the audit trail holds the whole log.
    eprintln!("waiting for the audit read model to reach {head}...");
    server
        .call(Method::GET, "/v1/staff/audit?limit=1", None, head)
        .await?;
    let client = server.pool_client().await?;
    let row = client
        .query_one(
            "SELECT e.org_id, (SELECT app_id FROM rm.audit_entries WHERE org_id = e.org_id AND app_id IS NOT NULL LIMIT 1), \
               (SELECT key_id FROM rm.audit_entries WHERE org_id = e.org_id AND key_id IS NOT NULL LIMIT 1), \
               (SELECT actor_id FROM rm.audit_entries WHERE org_id = e.org_id AND actor_kind = 'user' LIMIT 1), \
               (SELECT occurred_at FROM rm.audit_entries WHERE org_id = e.org_id ORDER BY position LIMIT 1 OFFSET 40) \
             FROM rm.audit_entries e WHERE e.event_type = 'org.created' ORDER BY e.position LIMIT 1",
            &[],
        )
        .await?;
    let (org, app, key, actor): (uuid::Uuid, uuid::Uuid, uuid::Uuid, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let from: chrono::DateTime<chrono::Utc> = row.get(4);
    let from = from
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B")
        .replace(':', "%3A");
    drop(client);
    let org_page = format!("/v1/orgs/{org}/audit");
    let pages = [
        ("org_unfiltered", format!("{org_page}?limit=50")),
        (
            "org_type_family",
            format!("{org_page}?type=api_key.*&limit=50"),
        ),
        ("org_key", format!("{org_page}?key={key}&limit=50")),
        (
            "org_app_oldest",
            format!("{org_page}?app={app}&order=oldest&limit=50"),
        ),
        (
            "org_actor_type",
            format!("{org_page}?actor={actor}&type=app.*&limit=50"),
        ),
        ("org_from", format!("{org_page}?from={from}&limit=50")),
        (
            "staff_type",
            "/v1/staff/audit?type=api_key.rotated&limit=50".to_owned(),
        ),
        (
            "staff_family",
            "/v1/staff/audit?type=webhook.*&limit=50".to_owned(),
        ),
    ];
    let floor = sample(&server, "/healthz", samples).await?;
    report.metric("audit", "events", head as f64, "events");
    report.metric("audit", "healthz_p99", percentile(&floor, 0.99), "ms");
    let mut all = Vec::new();
    for (name, path) in &pages {
        let s = sample(&server, path, samples).await?;
        report.metric("audit", &format!("{name}_p50"), percentile(&s, 0.50), "ms");
        report.metric("audit", &format!("{name}_p99"), percentile(&s, 0.99), "ms");
        all.extend(s);
    }
    all.sort();
    report.metric(
        "audit",
        "page_p99_all_filters",
        percentile(&all, 0.99),
        "ms",
    );

    let heap_before = crate::HEAP.current_usage();
    crate::HEAP.reset_peak_usage();
    let started = Instant::now();
    let mut r = reqwest::Client::new()
        .get(format!("{}/v1/staff/audit/export", server.base))
        .bearer_auth(&server.token)
        .send()
        .await?
        .error_for_status()?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let t = started.elapsed().as_secs_f64();
    // The server runs in this process: its heap while it streamed.
    let export_heap = crate::HEAP.peak_usage().saturating_sub(heap_before);
    let (_, baseline) = scan_baseline(&config).await?;
    report.metric(
        "audit",
        "export_entries",
        lines.saturating_sub(1) as f64,
        "entries",
    );
    report.metric("audit", "export_throughput", lines as f64 / t, "entries/s");
    report.metric("audit", "export_bandwidth", bytes as f64 / t / 1e6, "MB/s");
    report.metric(
        "audit",
        "export_peak_heap",
        export_heap as f64 / 1_048_576.0,
        "MiB",
    );
    report.metric("audit", "baseline_scan", baseline, "events/s");
    server.stop().await
}
