//! `gatehouse-replay` run as an operator runs it: the binary, as a child
//! process, over a test database with some history. `verify` (and a
//! tampered row), `verify --export` (and a changed byte), `rebuild --all`,
//! `state-at`, `export` and `tail`, each judged by its exit status and what
//! it prints.
//!
//! The binary is `gatehouse-it-replay`: `replay-tools/src/main.rs` itself,
//! compiled as a target of the test package (see `tests/Cargo.toml`), since
//! a test can only locate its own package's binaries.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent, RecordedEvent};
use event_store::EventStoreExt;
use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::TestServer;
use gatehouse_tests::TestDb;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-it-replay");

/// What one run printed, and how it ended.
#[derive(Debug)]
struct Run {
    /// The exit code (`None`: ended by a signal).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A command for the binary with a clean environment of its settings: the
/// database only through `db` (as `DATABASE_URL`), the data directory
/// `data_dir`.
fn command(db: Option<&TestDb>, data_dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.env_remove("DATABASE_URL")
        .env_remove("GATEHOUSE_AUDIT_PUBLIC_KEY")
        .env("GATEHOUSE_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(db) = db {
        c.env("DATABASE_URL", &db.conninfo);
    }
    c
}

/// Runs `gatehouse-replay <args>` to its end (two minutes at most).
async fn replay(db: Option<&TestDb>, data_dir: &Path, args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command(db, data_dir).args(args).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("gatehouse-replay {args:?} did not finish in two minutes"))
    .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The JSON Lines of `text`, each an event as stored.
fn events_of(text: &str) -> Vec<RecordedEvent> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Each projection's active generation and its position.
async fn active_generations(db: &TestDb) -> Vec<(String, i32, i64)> {
    db.client()
        .await
        .query(
            "SELECT name, generation, position FROM projection_generations \
             WHERE state = 'active' ORDER BY name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, i32>(1),
                r.get::<_, i64>(2),
            )
        })
        .collect()
}

async fn count(db: &TestDb, sql: &str) -> u64 {
    let n: i64 = db.client().await.query_one(sql, &[]).await.unwrap().get(0);
    n as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_export_state_at_and_rebuild_run_as_the_binary_and_fail_when_they_should() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "replay-cli").await;
    let (status, body, renamed) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{}", app.app),
            &app.owner,
            Some(json!({"name": "Renamed CLI"})),
            app.at,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.test_key(&s).await;
    let files = tempfile::tempdir().unwrap();
    // An audit export (which signs a checkpoint of the head), the
    // published checkpoints and the audit public key, as an auditor keeps
    // them.
    let r = s
        .http
        .get(s.url(&format!("/v1/orgs/{}/audit/export", app.org)))
        .bearer_auth(&app.owner)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let audit_export = files.path().join("audit.jsonl");
    let exported = r.bytes().await.unwrap().to_vec();
    std::fs::write(&audit_export, &exported).unwrap();
    let page: Value = s
        .get("/v1/audit/checkpoints", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !page["items"].as_array().unwrap().is_empty(),
        "the export signed a checkpoint: {page}"
    );
    let witnessed = files.path().join("checkpoints.json");
    std::fs::write(&witnessed, page.to_string()).unwrap();
    let key: Value = s
        .get("/v1/audit/public-key", None)
        .await
        .json()
        .await
        .unwrap();
    let public_key = key["public_key"].as_str().unwrap().to_owned();
    s.stop().await;

    let (head, _) = db.log_stats().await;
    let head = head as u64;
    let empty = tempfile::tempdir().unwrap();
    let data_dir = empty.path();

    // verify: the whole chain, against every signed checkpoint.
    let newest = count(
        &db,
        "SELECT max((data->>'position')::bigint) FROM events \
         WHERE event_type = 'audit.checkpoint_signed'",
    )
    .await;
    let witness_arg = witnessed.to_str().unwrap();
    let run = replay(
        Some(&db),
        data_dir,
        &[
            "verify",
            "--public-key",
            &public_key,
            "--checkpoints",
            witness_arg,
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("ok: {head} events in ")),
        "{run:?}"
    );
    assert!(run.stdout.contains(&format!("; head {head};")), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("signed checkpoints match, the newest at {newest}")),
        "{run:?}"
    );
    // Without a key the chain is still checked, and it says what it skipped.
    let run = replay(Some(&db), data_dir, &["verify"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains(&format!("; head {head};")), "{run:?}");
    assert!(run.stderr.contains("no audit public key"), "{run:?}");

    // verify --export: offline, no database; a changed byte fails.
    let run = replay(
        None,
        data_dir,
        &[
            "verify",
            "--export",
            audit_export.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with("ok: ")
            && run
                .stdout
                .contains(&format!("jsonl entries (org:{})", app.org)),
        "{run:?}"
    );
    let entries: u64 = run.stdout["ok: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        entries,
        exported.iter().filter(|b| **b == b'\n').count() as u64 - 1,
        "one entry a line, and the manifest: {run:?}"
    );
    assert!(entries > 5, "{run:?}");
    let at = exported
        .windows(11)
        .position(|w| w == b"Renamed CLI")
        .expect("the rename is exported");
    let mut changed = exported.clone();
    changed[at + 10] = b'J';
    let tampered_export = files.path().join("tampered.jsonl");
    std::fs::write(&tampered_export, changed).unwrap();
    let run = replay(
        None,
        data_dir,
        &[
            "verify",
            "--export",
            tampered_export.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.starts_with("FAILED: "), "{run:?}");
    // An export cannot be checked without a key (the data directory holds
    // none).
    let run = replay(
        None,
        data_dir,
        &["verify", "--export", audit_export.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("needs the audit public key"), "{run:?}");

    // export: every event exactly as stored, so the chain recomputes from
    // the file alone.
    let all = files.path().join("log.jsonl");
    let run = replay(
        Some(&db),
        data_dir,
        &["export", "--out", all.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains(&format!("exported {head} events")),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "--out writes the file only: {run:?}");
    let log = events_of(&std::fs::read_to_string(&all).unwrap());
    assert_eq!(log.len() as u64, head);
    let mut prev = event_schemas::GENESIS_HASH;
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.global_position, i as u64 + 1);
        assert_eq!(
            e.prev_hash, prev,
            "the chain links at {}",
            e.global_position
        );
        assert_eq!(
            e.computed_hash(),
            e.hash,
            "exported as stored at {}",
            e.global_position
        );
        prev = e.hash;
    }
    // A family of types and a range, to standard output.
    let upto = (renamed - 1).to_string();
    let run = replay(
        Some(&db),
        data_dir,
        &["export", "--type", "app.*", "--from", "0", "--to", &upto],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let apps = events_of(&run.stdout);
    let expected = count(
        &db,
        &format!(
            "SELECT count(*) FROM events WHERE event_type LIKE 'app.%' \
             AND global_position <= {upto}"
        ),
    )
    .await;
    assert!(expected > 0);
    assert_eq!(apps.len() as u64, expected, "{run:?}");
    assert!(apps
        .iter()
        .all(|e| e.event_type.starts_with("app.") && e.global_position < renamed));
    assert!(
        run.stderr.contains(&format!("exported {expected} events")),
        "{run:?}"
    );
    // One stream, and one category.
    let stream = format!("app-{}", app.app);
    let run = replay(Some(&db), data_dir, &["export", "--stream", &stream]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let of_app = events_of(&run.stdout);
    let versions: Vec<u64> = of_app.iter().map(|e| e.stream_version).collect();
    assert_eq!(
        versions,
        (1..=of_app.len() as u64).collect::<Vec<_>>(),
        "the whole stream, in order"
    );
    assert!(of_app.iter().all(|e| e.stream_id == stream));
    assert!(of_app.iter().any(|e| e.event_type == "app.updated"));
    let run = replay(Some(&db), data_dir, &["export", "--category", "api_key"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let keys = events_of(&run.stdout);
    assert_eq!(
        keys.len() as u64,
        count(
            &db,
            "SELECT count(*) FROM events WHERE stream_id LIKE 'api\\_key-%'"
        )
        .await
    );
    assert!(!keys.is_empty() && keys.iter().all(|e| e.stream_id.starts_with("api_key-")));

    // state-at: the app before and after its rename; nothing before it
    // existed; a point that is neither a position nor a time.
    let run = replay(
        Some(&db),
        data_dir,
        &["state-at", &stream, &(renamed - 1).to_string()],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("{stream} at version ")),
        "{run:?}"
    );
    assert!(run.stdout.contains("folded by App"), "{run:?}");
    assert!(run.stdout.contains("name: \"Checkout\""), "{run:?}");
    assert!(!run.stdout.contains("Renamed CLI"), "{run:?}");
    let run = replay(
        Some(&db),
        data_dir,
        &["state-at", &stream, &head.to_string()],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("name: \"Renamed CLI\""), "{run:?}");
    let run = replay(
        Some(&db),
        data_dir,
        &["state-at", &stream, "2001-01-01T00:00:00Z"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("had no events"), "{run:?}");
    let run = replay(Some(&db), data_dir, &["state-at", &stream, "yesterday"]).await;
    assert_eq!(run.code, Some(2), "a usage error: {run:?}");
    assert!(
        run.stderr
            .contains("neither a log position nor an RFC 3339 time"),
        "{run:?}"
    );

    // rebuild --all: every projection as a new generation up to the head,
    // swapped in.
    let before = active_generations(&db).await;
    let run = replay(Some(&db), data_dir, &["rebuild", "--all"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("done in "), "{run:?}");
    let after = active_generations(&db).await;
    for name in projections::all().iter().map(|p| p.name()) {
        let (_, generation, position) = after
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is active: {after:?}"));
        assert_eq!(*position as u64, head, "{name} caught up");
        assert!(
            run.stdout.contains(&format!(
                "rebuilt {name} as generation {generation} up to position {head} in "
            )),
            "{name}: {run:?}"
        );
        let old = before.iter().find(|(n, _, _)| n == name).map(|b| b.1);
        assert!(
            old.is_some_and(|g| g < *generation),
            "{name} is a new generation ({old:?} before, {generation} now)"
        );
    }
    // The rebuilt read models serve.
    let s = TestServer::start(&db).await;
    let (status, read, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}", app.app),
            &app.owner,
            None,
            0,
        )
        .await;
    assert_eq!((status, read["name"].as_str()), (200, Some("Renamed CLI")));
    s.stop().await;

    // A rebuild killed part-way (no chance to release its generations)
    // resumes them with --take-over, and every read model it swaps in
    // matches a fresh rebuild of its own.
    let mut killed = command(Some(&db), data_dir)
        .args(["rebuild", "--all", "--batch", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let filled = count(
            &db,
            "SELECT count(*) FROM projection_generations WHERE state = 'building' AND position > 0",
        )
        .await;
        if filled > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rebuild never filled a batch"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killed.start_kill().unwrap();
    let status = killed.wait().await.unwrap();
    assert_eq!(status.signal(), Some(9), "killed mid-way: {status:?}");
    let building = count(
        &db,
        "SELECT count(*) FROM projection_generations WHERE state = 'building'",
    )
    .await;
    assert!(building > 0, "the killed rebuild left its generations");
    let run = replay(
        Some(&db),
        data_dir,
        &["rebuild", "--all", "--take-over", "--batch", "3"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("resumed at position "), "{run:?}");
    let left = count(
        &db,
        "SELECT count(*) FROM projection_generations WHERE state = 'building'",
    )
    .await;
    assert_eq!(left, 0, "every resumed generation was swapped in");
    let run = replay(
        Some(&db),
        data_dir,
        &[
            "verify",
            "--public-key",
            &public_key,
            "--read-models",
            "--batch",
            "7",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "identical digests: {run:?}");

    // A row changed behind the chain's back: verify names it and exits 1
    // (the URL given as a flag this time).
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete; \
             UPDATE events SET data = '{{\"name\": \"Tampered\"}}' WHERE global_position = {renamed}; \
             ALTER TABLE events ENABLE TRIGGER events_no_update_delete;"
        ))
        .await
        .unwrap();
    let run = replay(
        None,
        data_dir,
        &[
            "verify",
            "--database-url",
            &db.conninfo,
            "--public-key",
            &public_key,
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout
            .starts_with(&format!("FAILED at position {renamed}: ")),
        "{run:?}"
    );
}

/// A store client for the tail test's appends.
async fn pg_store(db: &TestDb) -> event_store::postgres::PgStore {
    event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap()
}

/// Appends one `event_type` event to `demo-tail`; its id and position.
async fn append(store: &event_store::postgres::PgStore, event_type: &str, n: u64) -> (Uuid, u64) {
    let e = NewEvent::raw(event_type, json!({ "n": n }), Metadata::by(Actor::system()));
    let id = e.event_id;
    let a = store
        .append("demo-tail", ExpectedVersion::Any, vec![e])
        .await
        .unwrap();
    (id, a.last_position)
}

/// The next line of a running `tail`, if one comes within `wait`.
async fn next_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    wait: Duration,
) -> Option<RecordedEvent> {
    match tokio::time::timeout(wait, lines.next_line()).await {
        Ok(Ok(Some(line))) => Some(
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("tail printed {line:?}: {e}")),
        ),
        Ok(Ok(None)) => panic!("tail's output ended"),
        Ok(Err(e)) => panic!("reading tail's output: {e}"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_the_events_appended_after_it_started_and_only_the_selected_ones() {
    let db = gatehouse_tests::fresh_db().await;
    let store = pg_store(&db).await;
    // History before the tail starts, of the very type it follows.
    let mut before = Vec::new();
    for n in 0..3 {
        before.push(append(&store, "demo.tailed", n).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let stderr = std::fs::File::create(dir.path().join("tail.stderr")).unwrap();
    let mut child = command(Some(&db), dir.path())
        .args(["tail", "--type", "demo.tailed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // It starts at the head, whenever that is read: append until a line
    // comes, then it must be one of these (never the history before).
    let mut appended = Vec::new();
    let started = Instant::now();
    let first = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tail printed nothing for 30 s; its stderr: {}",
            std::fs::read_to_string(dir.path().join("tail.stderr")).unwrap_or_default()
        );
        let n = 100 + appended.len() as u64;
        appended.push(append(&store, "demo.tailed", n).await);
        if let Some(e) = next_line(&mut lines, Duration::from_millis(500)).await {
            break e;
        }
    };
    assert!(
        !before.iter().any(|(id, _)| *id == first.event_id),
        "the history before it started is not printed: {first:?}"
    );
    assert!(
        appended.iter().any(|(id, _)| *id == first.event_id),
        "{first:?} is one of the appended events"
    );
    assert!(first.global_position > before.last().unwrap().1);

    // An event of another type, then a last one of the followed type: once
    // the last is printed, the other would have been printed before it.
    let other = append(&store, "demo.other", 0).await;
    let last = append(&store, "demo.tailed", 999).await;
    let mut printed = vec![first];
    while printed.last().unwrap().event_id != last.0 {
        let e = next_line(&mut lines, Duration::from_secs(10))
            .await
            .expect("the last event is printed within 10 s");
        printed.push(e);
    }
    assert!(
        printed.iter().all(|e| e.event_type == "demo.tailed"),
        "only the selected type: {printed:?}"
    );
    assert!(!printed.iter().any(|e| e.event_id == other.0));
    // Every followed event from the first printed on, each once, in order.
    let from = printed[0].global_position;
    let expected: Vec<Uuid> = appended
        .iter()
        .filter(|(_, p)| *p >= from)
        .chain(std::iter::once(&last))
        .map(|(id, _)| *id)
        .collect();
    let got: Vec<Uuid> = printed.iter().map(|e| e.event_id).collect();
    assert_eq!(got, expected);
    assert!(printed
        .windows(2)
        .all(|w| w[0].global_position < w[1].global_position));
    for e in &printed {
        assert_eq!(e.computed_hash(), e.hash, "printed as stored");
    }

    // Ctrl-C ends it. (A SIGINT that lands before its first wait ends it by
    // the signal's default action, so repeat until it is gone.)
    let pid = nix::unistd::Pid::from_raw(child.id().expect("tail is running") as i32);
    let started = Instant::now();
    let status = loop {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        if let Ok(status) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
            break status.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tail did not stop on Ctrl-C"
        );
    };
    assert!(
        status.success() || status.signal() == Some(nix::sys::signal::Signal::SIGINT as i32),
        "{status:?}"
    );

    // --from replays the history first, then follows.
    let mut child = command(Some(&db), dir.path())
        .args(["tail", "--from", "0", "--type", "demo.tailed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for (id, position) in &before {
        let e = next_line(&mut lines, Duration::from_secs(10))
            .await
            .expect("the history is printed from --from");
        assert_eq!((e.event_id, e.global_position), (*id, *position));
    }
    child.kill().await.unwrap();
}

/// A second audit signing key (an Ed25519 seed of 32 bytes of 0x0b).
const ROTATED_AUDIT_KEY: &str = "CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws=";

/// The audit public key a server publishes: (base64, key id).
async fn published_key(s: &TestServer) -> (String, String) {
    let key: Value = s
        .get("/v1/audit/public-key", None)
        .await
        .json()
        .await
        .unwrap();
    (
        key["public_key"].as_str().unwrap().to_owned(),
        key["key_id"].as_str().unwrap().to_owned(),
    )
}

/// Asks for the organisation's audit export, which signs a checkpoint of
/// the head with the server's key.
async fn export_signs_a_checkpoint(s: &TestServer, app: &KeyedApp) {
    let r = s
        .http
        .get(s.url(&format!("/v1/orgs/{}/audit/export", app.org)))
        .bearer_auth(&app.owner)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
}

/// `verify --public-key A,B` across a rotation of the audit signing key:
/// a checkpoint signed with key A, then the server restarted with key B
/// (`GATEHOUSE_AUDIT_SIGNING_KEY`) signs the next. With both keys, in either
/// order, every checkpoint checks against the key it names; with B alone
/// the checkpoint A signed fails, and with A alone the one B signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_each_checkpoint_with_its_key_across_an_audit_key_rotation() {
    use gatehouse_tests::server::{Options, TEST_AUDIT_KEY};
    let db = gatehouse_tests::fresh_db().await;
    // No interval checkpoints: only the exports sign.
    let options = |key: &str| Options {
        audit_signing_key: key.into(),
        checkpoint_interval_secs: 86_400,
        ..Options::default()
    };
    let s = TestServer::start_with(&db, options(TEST_AUDIT_KEY)).await;
    let app = KeyedApp::new(&s, &db, "replay-rotate").await;
    let (key_a, id_a) = published_key(&s).await;
    export_signs_a_checkpoint(&s, &app).await;
    s.stop().await;

    let s = TestServer::start_with(&db, options(ROTATED_AUDIT_KEY)).await;
    let (key_b, id_b) = published_key(&s).await;
    assert_ne!(id_a, id_b, "the restarted server signs with the new key");
    let (status, body, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{}", app.app),
            &app.owner,
            Some(json!({"name": "After the rotation"})),
            0,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.test_key(&s).await;
    export_signs_a_checkpoint(&s, &app).await;
    let page: Value = s
        .get("/v1/audit/checkpoints", None)
        .await
        .json()
        .await
        .unwrap();
    s.stop().await;
    // Newest first: B's, then A's.
    let items = page["items"].as_array().unwrap();
    let signers: Vec<&str> = items
        .iter()
        .map(|c| c["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(signers, [id_b.as_str(), id_a.as_str()], "{page}");
    let recorded = |i: usize| items[i]["recorded_at_position"].as_i64().unwrap();
    let (by_b, by_a) = (recorded(0), recorded(1));
    let newest = items[0]["position"].as_u64().unwrap();

    let (head, _) = db.log_stats().await;
    let empty = tempfile::tempdir().unwrap();
    let data_dir = empty.path();
    for keys in [format!("{key_a},{key_b}"), format!("{key_b},{key_a}")] {
        let run = replay(Some(&db), data_dir, &["verify", "--public-key", &keys]).await;
        assert_eq!(run.code, Some(0), "{keys}: {run:?}");
        assert!(
            run.stdout.contains(&format!(
                "; head {head}; 2 signed checkpoints match, the newest at {newest}"
            )),
            "{keys}: {run:?}"
        );
    }
    // The new key alone cannot check what the old one signed, nor the old
    // key alone what the new one signed.
    for (key, fails_at) in [(&key_b, by_a), (&key_a, by_b)] {
        let run = replay(Some(&db), data_dir, &["verify", "--public-key", key]).await;
        assert_eq!(run.code, Some(1), "{key}: {run:?}");
        assert!(
            run.stdout.starts_with(&format!(
                "FAILED at position {fails_at}: the checkpoint recorded at {fails_at}"
            )),
            "{key}: {run:?}"
        );
    }
}
