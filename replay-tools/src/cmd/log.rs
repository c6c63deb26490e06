//! `export`, `tail` and `state-at`: the log for people and pipes.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use replay_tools::log::{head, page, Selection};
use replay_tools::state_at::Point;

/// Writes the selected events as JSON Lines to `out` (stdout without one).
pub async fn export(
    pool: &deadpool_postgres::Pool,
    sel: Selection,
    out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let (mut after, mut n) = (sel.after, 0u64);
    loop {
        let events = page(pool, &sel, after).await?;
        let Some(last) = events.last() else { break };
        after = last.global_position;
        for e in &events {
            serde_json::to_writer(&mut sink, e)?;
            sink.write_all(b"\n")?;
            n += 1;
        }
    }
    sink.flush()?;
    eprintln!("exported {n} events");
    Ok(ExitCode::SUCCESS)
}

/// Follows the log from `from` (the head without one), printing each
/// selected event as a JSON line, until Ctrl-C.
pub async fn tail(
    pool: &deadpool_postgres::Pool,
    config: &tokio_postgres::Config,
    mut sel: Selection,
    from: Option<u64>,
) -> anyhow::Result<ExitCode> {
    sel.after = match from {
        Some(p) => p,
        None => head(pool).await?,
    };
    // The store's NOTIFY channel wakes the loop at once; the poll is the
    // backstop for a lost notification.
    let mut wake = event_store::postgres::listen_channel(config.clone(), "gatehouse_events");
    let stdout = std::io::stdout();
    loop {
        let events = page(pool, &sel, sel.after).await?;
        for e in &events {
            let mut out = stdout.lock();
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
        if let Some(last) = events.last() {
            sel.after = last.global_position;
            continue;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = wake.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Prints a stream's state at a point.
pub async fn state_at(
    pool: &deadpool_postgres::Pool,
    stream: &str,
    point: Point,
) -> anyhow::Result<ExitCode> {
    let s = replay_tools::state_at::state_at(pool, stream, point).await?;
    if s.events == 0 {
        println!("{stream} had no events at {point:?}");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{stream} at version {} (position {}, recorded {}), {} events folded by {}:",
        s.version,
        s.position,
        s.recorded_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        s.events,
        s.aggregate
    );
    println!("{}", s.state);
    Ok(ExitCode::SUCCESS)
}
