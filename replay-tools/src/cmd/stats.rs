//! `stats`: the log's shape and the projections' lag.

use std::process::ExitCode;

/// Prints the log's statistics.
pub async fn stats(pool: &deadpool_postgres::Pool, json: bool) -> anyhow::Result<ExitCode> {
    let s = replay_tools::stats(pool).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("head: {}   log size: {} bytes", s.head, s.log_bytes);
    println!("\nevents by type:");
    for c in &s.by_type {
        println!("  {:>10}  {}", c.events, c.name);
    }
    println!("\nevents by stream category:");
    for c in &s.by_category {
        println!("  {:>10}  {}", c.events, c.name);
    }
    println!("\nprojections:");
    for p in &s.projections {
        println!(
            "  {:<16} g{} v{} {:<9} position {:>10}  lag {:>8}{}",
            p.name,
            p.generation,
            p.version,
            p.state,
            p.position,
            p.lag,
            p.error
                .as_ref()
                .map(|e| format!("  FAILED: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
