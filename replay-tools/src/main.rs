//! `gatehouse-replay`: verify, rebuild and inspect the Gatehouse log.
//! `docs/operations.md` is its manual.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use event_store::launcher::{self, LaunchOptions};
use event_store::postgres::{migrate, pool, MIGRATIONS};
use replay_tools::log::Selection;
use replay_tools::state_at::Point;

mod cmd;

use cmd::anchors;
use cmd::schemas::SchemasAction;

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

    /// Directory of the embedded PostgreSQL cluster (and of the server's
    /// audit key and checkpoint witness).
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

/// Which events `export` and `tail` select.
#[derive(Debug, Clone, clap::Args)]
struct Filter {
    /// Only this stream (`app-<uuid>`).
    #[arg(long)]
    stream: Option<String>,
    /// Only this stream category (`app`, `api_key`, `org`...).
    #[arg(long)]
    category: Option<String>,
    /// Only these types (`api_key.rotated`, or a family `api_key.*`);
    /// repeat or separate with commas.
    #[arg(long = "type", value_delimiter = ',')]
    types: Vec<String>,
}

impl Filter {
    fn selection(self, after: u64, upto: Option<u64>) -> Selection {
        Selection {
            stream: self.stream,
            category: self.category,
            types: self.types,
            after,
            upto,
        }
    }
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
        /// of `GET /v1/audit/public-key`). Repeat for the keys before a
        /// rotation; each checkpoint is checked with the key it names.
        /// Default: the public half of <data-dir>/audit-signing.key, when
        /// that exists.
        #[arg(long, env = "GATEHOUSE_AUDIT_PUBLIC_KEY", value_delimiter = ',')]
        public_key: Vec<String>,
        /// Checkpoints kept outside the database, to check the log against:
        /// a JSON checkpoint, an array of them, a page of
        /// `GET /v1/audit/checkpoints`, or JSON Lines. Repeat for several.
        /// <data-dir>/audit-checkpoint.json (the server's witness) is
        /// always read when it exists.
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Also compare every read model with a fresh rebuild of it.
        #[arg(long)]
        read_models: bool,
        /// Events per batch of that fresh rebuild: any size must give the
        /// same rows as the live runner's small batches.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=100_000), requires = "read_models")]
        batch: u64,
    },
    /// Rebuild a projection blue/green from position 0 (or every one with
    /// --all, in one pass over the log); the live read model serves until
    /// the swap. Interrupted with Ctrl-C, the next run resumes where it
    /// stopped.
    Rebuild {
        /// Projection name (`all` is the same as --all).
        #[arg(required_unless_present = "all")]
        projection: Option<String>,
        /// Rebuild every projection.
        #[arg(long, conflicts_with = "projection")]
        all: bool,
        /// Resume building generations at once even though their leases
        /// have not lapsed: only when the rebuild that held them is known
        /// to be dead (killed, so it could not release them). Without it a
        /// generation whose filler may be alive is left alone.
        #[arg(long)]
        take_over: bool,
        /// Events read and applied per transaction.
        #[arg(long, default_value_t = projections::runner::FILL_BATCH as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        batch: u64,
    },
    /// Print an aggregate's state as it was at a time or position, folded
    /// from its stream.
    StateAt {
        /// The stream (`app-<uuid>`, `api_key-<uuid>`, `org-<uuid>`...).
        stream: String,
        /// An RFC 3339 time or a global log position.
        point: Point,
    },
    /// Write events as JSON Lines (exactly as stored): a stream, a
    /// category, some types, a range of positions.
    Export {
        #[command(flatten)]
        filter: Filter,
        /// After this global position.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Up to and including this position.
        #[arg(long)]
        to: Option<u64>,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Follow the log, printing each new event (JSON Lines) until Ctrl-C.
    Tail {
        #[command(flatten)]
        filter: Filter,
        /// Start after this position instead of at the head.
        #[arg(long)]
        from: Option<u64>,
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
    // What needs no database.
    match &cli.command {
        Cmd::Schemas { action, dir } => return cmd::schemas::schemas(*action, dir),
        Cmd::Verify {
            export: Some(file),
            public_key,
            ..
        } => {
            let key = anchors::public_key(public_key.first().map(String::as_str), &cli.data_dir)?
                .context("checking an export needs the audit public key (--public-key)")?;
            return Ok(cmd::verify::verify_export(file, &key));
        }
        _ => {}
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
            read_models,
            batch,
            ..
        } => {
            let anchors = anchors::load(&public_key, &checkpoints, &cli.data_dir)?;
            let code = cmd::verify::verify(&pool, &anchors).await?;
            if read_models && code == ExitCode::SUCCESS {
                cmd::verify::read_models(&pool, batch as usize).await?
            } else {
                code
            }
        }
        Cmd::Rebuild {
            projection,
            all,
            take_over,
            batch,
        } => {
            let chosen = match projection.as_deref() {
                _ if all => projections::all(),
                Some("all") => projections::all(),
                Some(name) => match projections::by_name(name) {
                    Some(p) => vec![p],
                    None => {
                        let known: Vec<_> = projections::all().iter().map(|p| p.name()).collect();
                        eprintln!(
                            "error: no projection named {name:?}; known: {}",
                            known.join(", ")
                        );
                        return Ok(ExitCode::from(2));
                    }
                },
                None => unreachable!("clap requires a projection or --all"),
            };
            cmd::rebuild::rebuild(
                &pool,
                chosen,
                projections::RebuildOptions {
                    take_over,
                    batch: batch as usize,
                },
            )
            .await?
        }
        Cmd::StateAt { stream, point } => cmd::log::state_at(&pool, &stream, point).await?,
        Cmd::Export {
            filter,
            from,
            to,
            out,
        } => cmd::log::export(&pool, filter.selection(from, to), out.as_deref()).await?,
        Cmd::Tail { filter, from } => {
            cmd::log::tail(&pool, &opened.config, filter.selection(0, None), from).await?
        }
        Cmd::Stats { json } => cmd::stats::stats(&pool, json).await?,
        Cmd::Schemas { .. } => unreachable!("answered before the database is opened"),
    };
    drop(pool);
    drop(opened);
    Ok(code)
}
