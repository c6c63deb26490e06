//! A client of the event store in an OS process of its own, for the tests
//! that need several processes on one database (`tests/it/store_processes.rs`):
//! each process has its own `PgStore`, so its own appender, its own cached
//! head and stream versions, and its own LISTEN connection; only PostgreSQL
//! serialises them.
//!
//! It connects, prints `ready`, then runs commands read from stdin, one a
//! line, and answers on stdout:
//!
//! - `append <stream> <any|none|N> [<event id>]`: appends one event; answers
//!   `ok <first position> <last position> <stream version> <event id>`,
//!   `conflict <actual version>`, `duplicate <event id>` or `error <message>`.
//! - `version <stream>`: `version <N>`, read from the database.
//! - `race <count> <stream,stream,...> <tag>`: appends `count` events to the
//!   streams in turn, each with `Exact(v)` where `v` is the version just read
//!   (`NoStream` for 0); on a conflict it re-reads and retries with a fresh
//!   event. Prints `ack <event id> <stream> <version> <position>` for every
//!   acknowledged append, then `done <count> <conflicts>`.
//! - `tail <count>`: subscribes from position 0 and prints
//!   `seen <position> <event id>` for each event until it has seen `count`,
//!   then `done <count>`.
//! - `quit`, or the end of stdin: exits.
//!
//! Any other failure ends the process with a non-zero status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{AppendError, EventStore, EventStoreExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// libpq-style connection string of the test database.
    #[arg(long, env = "GATEHOUSE_IT_CONNINFO")]
    conninfo: String,
    /// The store's poll interval (`PgStoreOptions::poll_interval`), in ms.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: tokio_postgres::Config = args
        .conninfo
        .parse()
        .context("--conninfo is not a PostgreSQL connection string")?;
    let store = Arc::new(
        PgStore::connect(
            config,
            PgStoreOptions {
                pool_size: 4,
                poll_interval: Duration::from_millis(args.poll_ms),
                ..PgStoreOptions::default()
            },
        )
        .await
        .context("connecting the store")?,
    );
    println!("ready");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["append", stream, expected] => append(&store, stream, expected, None).await?,
            ["append", stream, expected, id] => {
                let id = id.parse::<Uuid>().context("event id")?;
                append(&store, stream, expected, Some(id)).await?
            }
            ["version", stream] => println!("version {}", version(&store, stream, 0).await?),
            ["race", count, streams, tag] => {
                let count = count.parse::<usize>().context("race count")?;
                let streams: Vec<&str> = streams.split(',').filter(|s| !s.is_empty()).collect();
                race(&store, count, &streams, tag).await?
            }
            ["tail", count] => {
                let count = count.parse::<usize>().context("tail count")?;
                tail(&store, count).await?
            }
            ["quit"] => break,
            _ => bail!("unknown command: {line}"),
        }
    }
    Ok(())
}

fn event(data: serde_json::Value) -> NewEvent {
    NewEvent::raw("test.happened", data, Metadata::by(Actor::system()))
}

/// `append <stream> <any|none|N> [<event id>]`.
async fn append(
    store: &PgStore,
    stream: &str,
    expected: &str,
    id: Option<Uuid>,
) -> anyhow::Result<()> {
    let expected = match expected {
        "any" => ExpectedVersion::Any,
        "none" => ExpectedVersion::NoStream,
        n => ExpectedVersion::Exact(
            n.parse::<u64>()
                .with_context(|| format!("expected version {n}"))?,
        ),
    };
    let mut e = event(json!({ "stream": stream }));
    if let Some(id) = id {
        e.event_id = id;
    }
    let id = e.event_id;
    match store.append(stream, expected, vec![e]).await {
        Ok(a) => println!(
            "ok {} {} {} {id}",
            a.first_position,
            a.last_position,
            a.stream_versions.first().copied().unwrap_or(0)
        ),
        Err(AppendError::Conflict { actual, .. }) => println!("conflict {actual}"),
        Err(AppendError::DuplicateEventId(dup)) => println!("duplicate {dup}"),
        Err(e) => println!("error {}", e.to_string().replace('\n', " ")),
    }
    Ok(())
}

/// The stream's version, read from the database; only the events after
/// `known` are read (a stream only grows).
async fn version(store: &PgStore, stream: &str, known: u64) -> anyhow::Result<u64> {
    let newer = store.read_stream(stream, known + 1, 100_000).await?;
    Ok(newer.last().map_or(known, |e| e.stream_version))
}

/// `race <count> <streams> <tag>`: read the version, append with exactly
/// it, re-read and retry on a conflict.
async fn race(store: &PgStore, count: usize, streams: &[&str], tag: &str) -> anyhow::Result<()> {
    if streams.is_empty() {
        bail!("race needs at least one stream");
    }
    let mut known: HashMap<&str, u64> = HashMap::new();
    let mut conflicts = 0u64;
    for n in 0..count {
        let stream = streams[n % streams.len()];
        loop {
            let v = version(store, stream, known.get(stream).copied().unwrap_or(0)).await?;
            known.insert(stream, v);
            let expected = if v == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(v)
            };
            // A fresh event (and id) per attempt: an append refused as a
            // conflict that was committed anyway shows up in the log as an
            // event nobody acknowledged.
            let e = event(json!({ "writer": tag, "n": n }));
            let id = e.event_id;
            match store.append(stream, expected, vec![e]).await {
                Ok(a) => {
                    let version = a.stream_versions.first().copied().unwrap_or(0);
                    println!("ack {id} {stream} {version} {}", a.last_position);
                    known.insert(stream, version);
                    break;
                }
                Err(AppendError::Conflict { .. }) => conflicts += 1,
                Err(e) => bail!("append to {stream} failed: {e}"),
            }
        }
    }
    println!("done {count} {conflicts}");
    Ok(())
}

/// `tail <count>`: follow the log from position 0.
async fn tail(store: &Arc<PgStore>, count: usize) -> anyhow::Result<()> {
    let mut sub = store.subscribe(0);
    for _ in 0..count {
        let e = sub.next().await?;
        println!("seen {} {}", e.global_position, e.event_id);
    }
    println!("done {count}");
    Ok(())
}
