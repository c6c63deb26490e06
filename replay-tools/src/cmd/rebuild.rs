//! `rebuild <projection>|--all`: blue/green, with a progress bar; an
//! interrupted rebuild resumes where it stopped.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

/// Rebuilds `chosen`, one after the other. Ctrl-C stops after releasing
/// the building generation, which the next run resumes.
pub async fn rebuild(
    pool: &deadpool_postgres::Pool,
    chosen: Vec<std::sync::Arc<dyn projections::Projection>>,
) -> anyhow::Result<ExitCode> {
    let all_started = std::time::Instant::now();
    for projection in chosen {
        let name = projection.name();
        let bar = ProgressBar::new(0);
        bar.set_style(ProgressStyle::with_template(
            "{msg:<14} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )?);
        bar.set_message(name);
        let started = std::time::Instant::now();
        let generation = std::sync::atomic::AtomicI32::new(0);
        let first = std::sync::atomic::AtomicU64::new(u64::MAX);
        let run = projections::rebuild(pool, projection.as_ref(), |p| {
            generation.store(p.generation, std::sync::atomic::Ordering::Relaxed);
            let _ = first.compare_exchange(
                u64::MAX,
                p.position,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
            bar.set_length(p.head);
            bar.set_position(p.position);
        });
        let outcome = tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => {
                bar.finish_and_clear();
                let g = generation.load(std::sync::atomic::Ordering::Relaxed);
                if g > 0 {
                    projections::release(pool, name, g).await?;
                }
                println!("interrupted: {name} generation {g} stays building; run the same command again to resume it");
                return Ok(ExitCode::from(130));
            }
        };
        let (generation, position) = outcome?;
        bar.finish_and_clear();
        let elapsed = started.elapsed();
        println!(
            "rebuilt {name} as generation {generation} up to position {position} in {elapsed:.1?} ({:.0} events/s)",
            position as f64 / elapsed.as_secs_f64().max(1e-6)
        );
    }
    println!("done in {:.1?}", all_started.elapsed());
    Ok(ExitCode::SUCCESS)
}
