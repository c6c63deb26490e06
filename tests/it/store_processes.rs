//! Concurrency across OS processes: each writer is a `gatehouse-it-appender`
//! process with a `PgStore` of its own (its own appender task, cached head
//! and stream versions, LISTEN connection), so nothing in Rust serialises
//! them; only PostgreSQL does. The in-process tests in `store_concurrency.rs`
//! send every writer through one store and so test its batching; these test
//! the head row lock, the unique indexes, and the recheck of decisions the
//! appender takes from its cache when another process has moved the log.
//!
//! Also the wake-up: with the poll interval set to a minute, a subscriber
//! sees another process's append within two seconds only if `LISTEN/NOTIFY`
//! works, which the 1 s poll would otherwise hide.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::EventStore;
use gatehouse_tests::{fresh_db, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use uuid::Uuid;

/// How long any one answer of a child may take.
const ANSWER: Duration = Duration::from_secs(60);
/// The default poll interval, for children whose wake-ups are not under test.
const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// An appender process, driven line by line.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Proc {
    /// Starts one on `db` and waits until its store is connected.
    async fn spawn(name: &str, db: &TestDb, poll: Duration) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse-it-appender"))
            .arg("--conninfo")
            .arg(&db.conninfo)
            .arg("--poll-ms")
            .arg(poll.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut p = Proc {
            name: name.to_owned(),
            child,
            stdin: Some(stdin),
            lines,
        };
        let ready = p.line().await;
        assert_eq!(ready, "ready", "{name} connected");
        p
    }

    async fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    async fn line(&mut self) -> String {
        match tokio::time::timeout(ANSWER, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!("{} exited (see its stderr above)", self.name),
            Ok(Err(e)) => panic!("reading from {}: {e}", self.name),
            Err(_) => panic!("{} did not answer within {ANSWER:?}", self.name),
        }
    }

    async fn ask(&mut self, command: &str) -> String {
        self.send(command).await;
        self.line().await
    }

    /// Closes its stdin and checks that it exits cleanly.
    async fn quit(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(ANSWER, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} exits at the end of its input", self.name))
            .unwrap();
        assert!(status.success(), "{} exits cleanly: {status}", self.name);
    }
}

/// An `ok` answer to `append`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Landed {
    first: u64,
    last: u64,
    version: u64,
    id: Uuid,
}

/// Parses an `ok` answer; any other answer fails the test.
fn ok(answer: &str) -> Landed {
    let words: Vec<&str> = answer.split_whitespace().collect();
    match words.as_slice() {
        ["ok", first, last, version, id] => Landed {
            first: first.parse().unwrap(),
            last: last.parse().unwrap(),
            version: version.parse().unwrap(),
            id: id.parse().unwrap(),
        },
        _ => panic!("expected the append to succeed, got {answer:?}"),
    }
}

/// One acknowledged append of a `race`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    id: Uuid,
    stream: String,
    version: u64,
    position: u64,
}

/// Reads a `race`'s acknowledgements up to its `done`; returns them and the
/// number of conflicts it retried.
async fn race_output(mut p: Proc, count: usize) -> (Vec<Ack>, u64, Proc) {
    let mut acks = Vec::new();
    loop {
        let line = p.line().await;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ack", id, stream, version, position] => acks.push(Ack {
                id: id.parse().unwrap(),
                stream: (*stream).to_owned(),
                version: version.parse().unwrap(),
                position: position.parse().unwrap(),
            }),
            ["done", n, conflicts] => {
                assert_eq!(n.parse::<usize>().unwrap(), count, "{} finished", p.name);
                assert_eq!(acks.len(), count, "{} acknowledged every append", p.name);
                return (acks, conflicts.parse().unwrap(), p);
            }
            _ => panic!("unexpected line from {}: {line:?}", p.name),
        }
    }
}

/// Reads a `tail`'s events up to its `done`.
async fn tail_output(mut p: Proc, count: usize) -> (Vec<(u64, Uuid)>, Proc) {
    let mut seen: Vec<(u64, Uuid)> = Vec::new();
    loop {
        let line = p.line().await;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["seen", position, id] => seen.push((position.parse().unwrap(), id.parse().unwrap())),
            ["done", n] => {
                assert_eq!(n.parse::<usize>().unwrap(), count);
                return (seen, p);
            }
            _ => panic!("unexpected line from {}: {line:?}", p.name),
        }
    }
}

/// A store in the test process, for reading back (also applies the
/// migrations before the children start).
async fn reader(db: &TestDb) -> PgStore {
    PgStore::connect(
        db.config.clone(),
        PgStoreOptions {
            pool_size: 2,
            ..PgStoreOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Runs `writers` racing processes (writer `w` appending `per_writer` events
/// to `streams(w)`) and one tailing process; returns every acknowledgement,
/// the conflicts per writer, and what the tailer saw.
async fn run_race(
    db: &TestDb,
    writers: usize,
    per_writer: usize,
    streams: impl Fn(usize) -> Vec<String>,
) -> (Vec<Ack>, Vec<u64>, Vec<(u64, Uuid)>) {
    let total = writers * per_writer;
    let mut tailer = Proc::spawn("the tailer", db, DEFAULT_POLL).await;
    let mut procs = Vec::new();
    for w in 0..writers {
        procs.push(Proc::spawn(&format!("writer {w}"), db, DEFAULT_POLL).await);
    }
    // Every process is connected; start them all at once.
    tailer.send(&format!("tail {total}")).await;
    for (w, p) in procs.iter_mut().enumerate() {
        p.send(&format!("race {per_writer} {} w{w}", streams(w).join(",")))
            .await;
    }
    let races: Vec<_> = procs
        .into_iter()
        .map(|p| tokio::spawn(race_output(p, per_writer)))
        .collect();
    let tail = tokio::spawn(tail_output(tailer, total));
    let mut acks = Vec::new();
    let mut conflicts = Vec::new();
    for r in futures::future::join_all(races).await {
        let (a, c, p) = r.unwrap();
        acks.extend(a);
        conflicts.push(c);
        p.quit().await;
    }
    let (seen, tailer) = tail.await.unwrap();
    tailer.quit().await;
    (acks, conflicts, seen)
}

/// Every acknowledged append is in its stream exactly once, where its
/// acknowledgement said; each stream's versions run 1..=N with N its number
/// of acknowledged appends; nothing else is in the log; the tailer saw
/// positions 1..=total, each event once; the chain verifies.
async fn assert_log_matches(
    db: &TestDb,
    acks: &[Ack],
    seen: &[(u64, Uuid)],
    streams: &HashSet<String>,
) {
    let store = reader(db).await;
    let total = acks.len() as u64;
    let acked: HashSet<Uuid> = acks.iter().map(|a| a.id).collect();
    assert_eq!(acked.len(), acks.len(), "no event acknowledged twice");
    for stream in streams {
        let events = store.read_stream(stream, 1, 100_000).await.unwrap();
        let of_stream: Vec<&Ack> = acks.iter().filter(|a| &a.stream == stream).collect();
        assert_eq!(
            events.len(),
            of_stream.len(),
            "{stream}: the final version is the number of acknowledged appends (no lost update)"
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                e.stream_version,
                i as u64 + 1,
                "{stream}: versions are contiguous"
            );
        }
        let stored: HashMap<Uuid, (u64, u64)> = events
            .iter()
            .map(|e| (e.event_id, (e.stream_version, e.global_position)))
            .collect();
        assert_eq!(stored.len(), events.len(), "{stream}: no event twice");
        for a in of_stream {
            assert_eq!(
                stored.get(&a.id),
                Some(&(a.version, a.position)),
                "{stream}: acknowledged event {} is in the stream at the version and position it was acknowledged with",
                a.id
            );
        }
    }
    assert_eq!(
        store.head().await.unwrap(),
        total,
        "the log holds the acknowledged appends and nothing else"
    );

    let positions: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<_>>(),
        "the tailer saw global positions 1..=total in order, without a gap"
    );
    let seen_ids: HashSet<Uuid> = seen.iter().map(|s| s.1).collect();
    assert_eq!(seen_ids.len(), seen.len(), "the tailer saw no event twice");
    assert_eq!(seen_ids, acked, "the tailer saw every acknowledged event");

    let pool = event_store::postgres::pool(&db.config, 2);
    let report = replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .expect("the hash chain verifies");
    assert_eq!(report.events, total);
    assert_eq!(report.streams, streams.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_racing_on_the_same_streams_with_exact_versions_lose_no_update() {
    const WRITERS: usize = 3;
    const PER_WRITER: usize = 40;
    let db = fresh_db().await;
    drop(reader(&db).await);
    let shared = || vec!["race-a".to_owned(), "race-b".to_owned()];
    let (acks, conflicts, seen) = run_race(&db, WRITERS, PER_WRITER, |_| shared()).await;
    assert_eq!(acks.len(), WRITERS * PER_WRITER);
    assert!(
        conflicts.iter().sum::<u64>() > 0,
        "the processes really raced (conflicts per writer: {conflicts:?})"
    );
    let streams: HashSet<String> = shared().into_iter().collect();
    assert_log_matches(&db, &acks, &seen, &streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_appending_to_their_own_streams_never_conflict_and_leave_no_gap() {
    const WRITERS: usize = 3;
    const PER_WRITER: usize = 40;
    let db = fresh_db().await;
    drop(reader(&db).await);
    let own = |w: usize| vec![format!("own-{w}-a"), format!("own-{w}-b")];
    let (acks, conflicts, seen) = run_race(&db, WRITERS, PER_WRITER, own).await;
    assert_eq!(acks.len(), WRITERS * PER_WRITER);
    // Each stream has one writer, so every expectation is right: a conflict
    // here would be a decision taken from a stale cache and not rechecked.
    assert_eq!(
        conflicts,
        vec![0; WRITERS],
        "no writer is refused on its own stream"
    );
    let streams: HashSet<String> = (0..WRITERS).flat_map(own).collect();
    assert_log_matches(&db, &acks, &seen, &streams).await;
}

/// `(event id, version, position)` of a stream, in version order.
async fn stream_rows(db: &TestDb, stream: &str) -> Vec<(Uuid, i64, i64)> {
    db.client()
        .await
        .query(
            "SELECT event_id, stream_version, global_position FROM events \
             WHERE stream_id = $1 ORDER BY stream_version",
            &[&stream],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn verify(db: &TestDb) -> u64 {
    let pool = event_store::postgres::pool(&db.config, 2);
    replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .expect("the hash chain verifies")
        .events
}

#[tokio::test]
async fn a_process_whose_cache_is_stale_is_refused_on_the_old_version_and_accepted_on_the_new() {
    let db = fresh_db().await;
    drop(reader(&db).await);
    let mut a = Proc::spawn("A", &db, DEFAULT_POLL).await;
    let mut b = Proc::spawn("B", &db, DEFAULT_POLL).await;

    // A's append leaves its cache at head 1, stream at version 1.
    let first = ok(&a.ask("append s none").await);
    assert_eq!((first.first, first.last, first.version), (1, 1, 1));
    // B moves the stream behind A's back.
    let second = ok(&b.ask("append s 1").await);
    assert_eq!((second.first, second.version), (2, 2));
    // A's reads are not cached: it sees B's append.
    assert_eq!(a.ask("version s").await, "version 2");
    // By A's cache Exact(1) is right; by the database it is stale.
    assert_eq!(
        a.ask("append s 1").await,
        "conflict 2",
        "a stale expectation is refused with the actual version"
    );
    let third = ok(&a.ask("append s 2").await);
    assert_eq!(
        (third.first, third.version),
        (3, 3),
        "the fresh expectation succeeds, after B's position"
    );
    // And the other way round: B's cache is now the stale one.
    assert_eq!(b.ask("append s 2").await, "conflict 3");
    let fourth = ok(&b.ask("append s 3").await);
    assert_eq!((fourth.first, fourth.version), (4, 4));

    let rows = stream_rows(&db, "s").await;
    assert_eq!(
        rows,
        vec![
            (first.id, 1, 1),
            (second.id, 2, 2),
            (third.id, 3, 3),
            (fourth.id, 4, 4)
        ],
        "each acknowledged append once, versions contiguous, the refused ones absent"
    );
    assert_eq!(verify(&db).await, 4);
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn a_conflict_decided_from_a_stale_cache_is_rechecked_against_the_database() {
    let db = fresh_db().await;
    drop(reader(&db).await);
    let mut a = Proc::spawn("A", &db, DEFAULT_POLL).await;
    let mut b = Proc::spawn("B", &db, DEFAULT_POLL).await;

    let first = ok(&a.ask("append t none").await);
    assert_eq!(first.version, 1);
    let second = ok(&b.ask("append t 1").await);
    assert_eq!(second.version, 2);
    // A's cache still says t is at 1, so by the cache Exact(2) is a
    // conflict; the database says it is right, and the database decides.
    let third = ok(&a.ask("append t 2").await);
    assert_eq!(
        (third.first, third.version),
        (3, 3),
        "the expectation the cache would refuse is accepted"
    );
    // A stream the cache does not know, expected at a version, goes to the
    // database too.
    let other = ok(&b.ask("append u none").await);
    assert_eq!(other.first, 4);
    let on_other = ok(&a.ask("append u 1").await);
    assert_eq!((on_other.first, on_other.version), (5, 2));

    assert_eq!(
        stream_rows(&db, "t").await,
        vec![(first.id, 1, 1), (second.id, 2, 2), (third.id, 3, 3)]
    );
    assert_eq!(
        stream_rows(&db, "u").await,
        vec![(other.id, 1, 4), (on_other.id, 2, 5)]
    );
    assert_eq!(verify(&db).await, 5);
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn a_retry_through_a_stale_cache_is_answered_with_where_it_landed() {
    let db = fresh_db().await;
    drop(reader(&db).await);
    let mut a = Proc::spawn("A", &db, DEFAULT_POLL).await;
    let mut b = Proc::spawn("B", &db, DEFAULT_POLL).await;

    let id = Uuid::now_v7();
    let first = ok(&a.ask(&format!("append r none {id}")).await);
    assert_eq!((first.first, first.version, first.id), (1, 1, id));
    ok(&b.ask("append r 1").await);
    // A retries the same append (same event id and expectation), as after a
    // lost reply. Its cache, and the database, say the stream exists, yet it
    // committed: the answer is where it landed, and nothing is appended.
    let again = ok(&a.ask(&format!("append r none {id}")).await);
    assert_eq!(again, first, "the retry is answered with the first outcome");
    // The same id in another append is refused, cache or no cache.
    assert_eq!(
        a.ask(&format!("append elsewhere none {id}")).await,
        format!("duplicate {id}")
    );
    assert_eq!(
        b.ask(&format!("append elsewhere none {id}")).await,
        format!("duplicate {id}")
    );
    // A stream created by B is not created again by A.
    ok(&b.ask("append fresh none").await);
    assert_eq!(a.ask("append fresh none").await, "conflict 1");

    let rows = stream_rows(&db, "r").await;
    assert_eq!(rows.len(), 2, "the retry appended nothing");
    assert_eq!(rows[0], (id, 1, 1));
    assert!(stream_rows(&db, "elsewhere").await.is_empty());
    assert_eq!(stream_rows(&db, "fresh").await.len(), 1);
    assert_eq!(verify(&db).await, 3);
    a.quit().await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_polling_once_a_minute_sees_an_append_from_another_process_within_two_seconds()
{
    let db = fresh_db().await;
    let poll = Duration::from_secs(60);
    let store = Arc::new(
        PgStore::connect(
            db.config.clone(),
            PgStoreOptions {
                pool_size: 2,
                poll_interval: poll,
                ..PgStoreOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    // This store appends nothing, so its wake-up counter moves only through
    // its LISTEN connection, which bumps it once when it is up.
    let mut wake = store.wakeups();
    let listening = matches!(
        tokio::time::timeout(Duration::from_secs(10), wake.wait_for(|n| *n > 0)).await,
        Ok(Ok(_))
    );
    assert!(listening, "the LISTEN connection comes up");

    let mut sub = store.subscribe(0);
    assert_eq!(
        sub.poll_interval(),
        poll,
        "the store's poll interval is used"
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        loop {
            let e = sub.next().await.unwrap();
            if tx.send((e.global_position, e.event_id)).is_err() {
                return;
            }
        }
    });

    let mut writer = Proc::spawn("the writer", &db, poll).await;
    for round in 1..=3u64 {
        // Let the subscriber reach the head and wait there.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = tokio::time::Instant::now();
        let appended = ok(&writer.ask("append woken any").await);
        assert_eq!(appended.first, round);
        let seen = tokio::time::timeout_at(sent + Duration::from_secs(2), rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: the subscriber was not woken within 2 s; only NOTIFY can wake it before its 60 s poll")
            })
            .unwrap();
        assert_eq!(seen, (round, appended.id));
    }
    follower.abort();
    writer.quit().await;
}
