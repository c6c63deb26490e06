//! `rebuild <projection>|--all`: blue/green, in one pass over the log for
//! every read model chosen, with a progress bar; an interrupted rebuild
//! resumes where it stopped.

use std::process::ExitCode;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// Rebuilds `chosen` in one pass. Ctrl-C stops after releasing the
/// building generations, which the next run resumes; after a kill (no
/// release), `options.take_over` resumes them without waiting for their leases.
pub async fn rebuild(
    pool: &deadpool_postgres::Pool,
    chosen: Vec<std::sync::Arc<dyn projections::Projection>>,
    options: projections::RebuildOptions,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let names: Vec<_> = chosen.iter().map(|p| p.name()).collect();
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{msg:<14} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
    )?);
    bar.set_message(if names.len() == 1 {
        names[0]
    } else {
        "read models"
    });
    let generations = Mutex::new(Vec::new());
    let resumed = Mutex::new(None);
    let run = projections::rebuild_all(pool, &chosen, options, |p| {
        let mut first = resumed.lock().expect("progress is reported from one task");
        if first.is_none() {
            *first = Some(p.position);
        }
        *generations
            .lock()
            .expect("progress is reported from one task") = p.generations;
        bar.set_length(p.head.max(p.position));
        bar.set_position(p.position);
    });
    let outcome = tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => {
            bar.finish_and_clear();
            let held = generations.lock().expect("the rebuild has stopped").clone();
            for (name, g) in &held {
                projections::release(pool, name, *g).await?;
            }
            println!("interrupted: the building generations stay; run the same command again to resume them");
            return Ok(ExitCode::from(130));
        }
    };
    bar.finish_and_clear();
    if let Some(at) = resumed
        .into_inner()
        .expect("the rebuild has stopped")
        .filter(|p| *p > 0)
    {
        println!("resumed at position {at}");
    }
    let mut code = ExitCode::SUCCESS;
    for r in outcome? {
        match r.outcome {
            Ok((generation, position)) => println!(
                "rebuilt {} as generation {generation} up to position {position} in {:.1?} \
                 (indexes and swap {:.1?})",
                r.name,
                r.applying + r.finishing,
                r.finishing
            ),
            Err(e) => {
                eprintln!("error: {} stopped: {e}", r.name);
                code = ExitCode::FAILURE;
            }
        }
    }
    let elapsed = started.elapsed();
    println!("done in {elapsed:.1?}");
    Ok(code)
}
