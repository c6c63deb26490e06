//! `export`: the staff JSON Lines export of N apps through a real server
//! in this process, at several N: the peak heap while it streams must stay
//! flat as N grows (measured by a peak-tracking allocator).

use std::time::Instant;

use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::{EventStore, StreamAppend};

use crate::server::BenchServer;
use crate::{database, Report, HEAP};

/// The export scenario: the peak heap while N apps stream, at each N.
pub async fn export(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    report: &Report,
    counts: &[u64],
) -> anyhow::Result<()> {
    use event_schemas::app::{app_stream, AppCreated, AppEvent};
    let config = database(admin, "gatehouse_bench_export", true).await?;
    let server = BenchServer::start(config, &data_dir.join("export-server")).await?;
    let (store, http, base, token) = (&server.store, &server.http, &server.base, &server.token);
    let org = uuid::Uuid::now_v7();
    let mut seeded = 0u64;
    for &n in counts {
        while seeded < n {
            let batch = (n - seeded).min(500);
            let appends = (0..batch)
                .map(|i| {
                    let app_id = uuid::Uuid::now_v7();
                    let created = AppEvent::Created(AppCreated {
                        app_id,
                        org_id: org,
                        team_id: None,
                        name: format!("Bench app {}", seeded + i),
                        slug: format!("bench-app-{}", seeded + i),
                        description:
                            "An app of the export benchmark, with a description of typical length."
                                .into(),
                        origins: vec!["https://app.example.com".into()],
                        callback_urls: vec!["https://app.example.com/oauth/callback".into()],
                        attributes: [("tier".to_owned(), "gold".to_owned())].into(),
                        sandbox_tenant_id: None,
                    });
                    StreamAppend::new(
                        app_stream(app_id),
                        ExpectedVersion::NoStream,
                        vec![NewEvent::from_domain(
                            &created,
                            Metadata::by(Actor::system()),
                        )],
                    )
                })
                .collect();
            store.append_all(appends).await?;
            seeded += batch;
        }
        let head = store.head().await?;
        let mut response = http
            .get(format!("{base}/v1/staff/apps/export"))
            .bearer_auth(token)
            .header("gatehouse-min-position", head.to_string())
            .send()
            .await?
            .error_for_status()?;
        // Caught up: the read-your-writes wait is over once headers arrive.
        let baseline = HEAP.current_usage();
        HEAP.reset_peak_usage();
        let started = Instant::now();
        let mut lines = 0u64;
        let mut bytes = 0u64;
        while let Some(chunk) = response.chunk().await? {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            bytes += chunk.len() as u64;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let peak = HEAP.peak_usage().saturating_sub(baseline);
        anyhow::ensure!(lines == n, "exported {lines} of {n} apps");
        let scenario = format!("export-{n}");
        report.metric(&scenario, "apps", lines as f64, "apps");
        report.metric(&scenario, "body", bytes as f64 / 1_048_576.0, "MiB");
        report.metric(
            &scenario,
            "peak_heap_growth",
            peak as f64 / 1_048_576.0,
            "MiB",
        );
        report.metric(&scenario, "throughput", lines as f64 / elapsed, "apps/s");
    }
    server.stop().await
}
