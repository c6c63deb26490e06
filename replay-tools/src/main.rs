//! `gatehouse-replay`: verify, rebuild and inspect the Gatehouse log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use event_store::launcher::{self, LaunchOptions};
use event_store::postgres::{migrate, pool, MIGRATIONS};
use indicatif::{ProgressBar, ProgressStyle};

mod anchors;

/// Operator tools over the Gatehouse log.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-replay",
    version,
    about = "Verify, rebuild and inspect the Gatehouse log."
)]
struct Cli {
    /// PostgreSQL connection URL. Without it, the embedded cluster under
    /// --data-dir is used (reused if the server is running, started and
    /// stopped around this command otherwise).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,

    /// Directory of the embedded PostgreSQL cluster.
    #[arg(
        long,
        env = "GATEHOUSE_DATA_DIR",
        default_value = "./.gatehouse",
        global = true
    )]
    data_dir: PathBuf,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Recompute the hash chain and stream versions and check the chain
    /// against every signed checkpoint; exit 1 naming the first bad
    /// position. With --export, check an audit export file offline instead.
    Verify {
        /// Check this audit export (JSON Lines or CSV) offline, with the
        /// public key alone; no database is opened.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The audit public key: base64, or a file holding it (or the JSON
        /// of `GET /v1/audit/public-key`). Default: the public half of
        /// <data-dir>/audit-signing.key, when that exists.
        #[arg(long, env = "GATEHOUSE_AUDIT_PUBLIC_KEY")]
        public_key: Option<String>,
        /// Checkpoints kept outside the database, to check the log against:
        /// a JSON checkpoint, an array of them, a page of
        /// `GET /v1/audit/checkpoints`, or JSON Lines. Repeat for several.
        /// <data-dir>/audit-checkpoint.json (the server's witness) is
        /// always read when it exists.
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
    },
    /// Rebuild a projection blue/green from position 0 (`all` for every
    /// one); the live read model serves until the swap.
    Rebuild {
        /// Projection name, or `all`.
        projection: String,
    },
    /// The committed JSON Schemas of the event types: `check` that they
    /// match the code and that no published version changed incompatibly,
    /// or `write` them (never over an incompatible change). No database.
    Schemas {
        /// `check` or `write`.
        #[arg(value_enum)]
        action: SchemasAction,
        /// The schema directory.
        #[arg(long, default_value_os_t = event_schemas::schemas::committed_dir())]
        dir: PathBuf,
    },
    /// Event counts by type and stream category, log size, projection
    /// checkpoints and lag.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What `schemas` does.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SchemasAction {
    /// Fail when the files and the code differ, or a published version
    /// changed incompatibly without a new version and an upcaster.
    Check,
    /// Write the current schemas.
    Write,
}

fn schemas(action: SchemasAction, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let code = event_schemas::schemas::all();
    match action {
        SchemasAction::Check => {
            let findings = event_schemas::schemas::check(&code, dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            for f in &findings {
                println!("FAILED: {f}");
            }
            if findings.is_empty() {
                println!("ok: {} event types match {}", code.len(), dir.display());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        SchemasAction::Write => {
            let (written, refused) = event_schemas::schemas::write(&code, dir)
                .with_context(|| format!("writing {}", dir.display()))?;
            for f in &written {
                println!("wrote {f}");
            }
            for f in &refused {
                println!("REFUSED: {f}");
            }
            Ok(if refused.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Cmd::Schemas { action, dir } = &cli.command {
        return schemas(*action, dir);
    }
    if let Cmd::Verify {
        export: Some(file),
        public_key,
        ..
    } = &cli.command
    {
        let key = anchors::public_key(public_key.as_deref(), &cli.data_dir)?
            .context("checking an export needs the audit public key (--public-key)")?;
        return Ok(verify_export(file, &key));
    }
    let opened = launcher::open(
        cli.database_url.as_deref(),
        &cli.data_dir,
        LaunchOptions::default(),
    )
    .await?;
    let pool = pool(&opened.config, 4);
    {
        let mut client = pool.get().await.context("connecting to the database")?;
        migrate(&mut client, "event-store", MIGRATIONS).await?;
    }
    let code = match cli.command {
        Cmd::Verify {
            public_key,
            checkpoints,
            ..
        } => {
            let anchors = anchors::load(public_key.as_deref(), &checkpoints, &cli.data_dir)?;
            verify(&pool, &anchors).await?
        }
        Cmd::Rebuild { projection } => rebuild(&pool, &projection).await?,
        Cmd::Stats { json } => stats(&pool, json).await?,
        Cmd::Schemas { .. } => unreachable!("answered before the database is opened"),
    };
    drop(pool);
    drop(opened);
    Ok(code)
}

fn verify_export(file: &std::path::Path, key: &ed25519_dalek::VerifyingKey) -> ExitCode {
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

async fn verify(
    pool: &deadpool_postgres::Pool,
    anchors: &replay_tools::Anchors,
) -> anyhow::Result<ExitCode> {
    if anchors.public_key.is_none() {
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

async fn rebuild(pool: &deadpool_postgres::Pool, name: &str) -> anyhow::Result<ExitCode> {
    let chosen = if name == "all" {
        projections::all()
    } else {
        match projections::by_name(name) {
            Some(p) => vec![p],
            None => {
                let known: Vec<_> = projections::all().iter().map(|p| p.name()).collect();
                eprintln!(
                    "error: no projection named {name:?}; known: {}",
                    known.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        }
    };
    for projection in chosen {
        let bar = ProgressBar::new(0);
        bar.set_style(ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )?);
        bar.set_message(projection.name());
        let started = std::time::Instant::now();
        let (generation, position) = projections::rebuild(pool, projection.as_ref(), |p| {
            bar.set_length(p.head);
            bar.set_position(p.position);
        })
        .await?;
        bar.finish_and_clear();
        println!(
            "rebuilt {} as generation {generation} up to position {position} in {:.1?}",
            projection.name(),
            started.elapsed()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats(pool: &deadpool_postgres::Pool, json: bool) -> anyhow::Result<ExitCode> {
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
