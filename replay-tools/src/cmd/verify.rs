//! `verify`: the chain, checkpoints and stream versions; `--read-models`;
//! `--export FILE` offline.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

/// Checks an audit export offline.
pub fn verify_export(file: &std::path::Path, key: &ed25519_dalek::VerifyingKey) -> ExitCode {
    match replay_tools::export::verify_export(file, key) {
        Ok(r) => {
            println!(
                "ok: {} {} entries ({}) from {} to {} verify; signed checkpoint at {}",
                r.entries,
                r.format,
                r.scope,
                r.first_position.map_or("-".into(), |p| p.to_string()),
                r.last_position.map_or("-".into(), |p| p.to_string()),
                r.checkpoint
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Verifies the log.
pub async fn verify(
    pool: &deadpool_postgres::Pool,
    anchors: &replay_tools::Anchors,
) -> anyhow::Result<ExitCode> {
    if anchors.public_keys.is_empty() {
        eprintln!("warning: no audit public key (--public-key): the chain is checked, signed checkpoints are not");
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(
        "{spinner} verified {pos} events ({per_sec})",
    )?);
    let outcome = replay_tools::verify(pool, anchors, |p| bar.set_position(p)).await;
    bar.finish_and_clear();
    match outcome {
        Ok(r) => {
            println!(
                "ok: {} events in {} streams verify; head {}; {} signed checkpoints match{}",
                r.events,
                r.streams,
                r.head,
                r.checkpoints,
                r.newest_checkpoint
                    .map(|p| format!(", the newest at {p}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(replay_tools::VerifyError::Bad(bad)) => {
            println!("FAILED at position {}: {}", bad.position, bad.reason);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// Compares every read model with a fresh rebuild.
pub async fn read_models(pool: &deadpool_postgres::Pool, batch: usize) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for p in projections::all() {
        let bar = ProgressBar::new_spinner();
        bar.set_message(format!("rebuilding {} to compare", p.name()));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let outcome = replay_tools::read_models::check(pool, p.as_ref(), batch).await;
        bar.finish_and_clear();
        match outcome {
            Ok(c) if c.differences.is_empty() => println!(
                "ok: {} matches a fresh rebuild at position {} ({} tables)",
                c.name, c.position, c.tables
            ),
            Ok(c) => {
                failed = true;
                for (table, live, rebuilt) in &c.differences {
                    println!(
                        "FAILED: {}.{table} differs from a fresh rebuild at position {} ({live} rows live, {rebuilt} rebuilt)",
                        c.name, c.position
                    );
                }
            }
            Err(e) => {
                failed = true;
                println!("FAILED: {}: {e}", p.name());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
