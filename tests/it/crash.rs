//! A crash loses nothing acknowledged: the server process is killed with
//! SIGKILL while clients write; after a restart every acknowledged write is
//! in the log, the chain verifies, and the projections resume from their
//! checkpoints without applying any event twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_tests::process::ServerProcess;
use gatehouse_tests::{fresh_db, TestDb};
use serde_json::{json, Value};

async fn spawn_server(db: &TestDb, dir: &std::path::Path) -> ServerProcess {
    let bin = env!("CARGO_BIN_EXE_gatehouse-it-server");
    ServerProcess::spawn(bin, &db.conninfo, dir, "warn").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_no_acknowledged_write() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server(&db, dir.path()).await;

    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (base, acknowledged) = (server.base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    let body = json!({"email": format!("c{c}n{n}@example.com"), "name": "Crash", "password": "correct horse battery"});
                    let Ok(r) = http.post(format!("{base}/v1/users")).json(&body).send().await else {
                        return;
                    };
                    if r.status() != 201 {
                        return;
                    }
                    let position: u64 = r.headers()["gatehouse-position"].to_str().unwrap().parse().unwrap();
                    let Ok(v) = r.json::<Value>().await else { return };
                    acknowledged.lock().unwrap().push((v["id"].as_str().unwrap().to_owned(), position));
                }
            })
        })
        .collect();
    // Let writes flow, then kill the server mid-stream.
    for _ in 0..200 {
        if acknowledged.lock().unwrap().len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    server.child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 20,
        "writes were acknowledged before the kill"
    );

    let client = db.client().await;
    let checkpoints_before: Vec<(String, i64)> = client
        .query("SELECT name, position FROM projection_generations WHERE state = 'active' ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let mut server = spawn_server(&db, dir.path()).await;
    for (user_id, position) in &acknowledged {
        let row = client
            .query_one(
                "SELECT count(*), max(global_position) FROM events WHERE stream_id = $1",
                &[&format!("user-{user_id}")],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, i64>(0),
            1,
            "acknowledged sign-up {user_id} is in the log"
        );
        assert!(row.get::<_, i64>(1) as u64 <= *position);
    }
    let pool = event_store::postgres::pool(&db.config, 2);
    let report = replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .expect("the chain verifies after the crash");

    // The projections resume and reach the head with nothing applied twice.
    let mut caught_up = false;
    for _ in 0..400 {
        if server.caught_up().await.is_some() {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(caught_up, "projections caught up after the restart");
    let counted: i64 = client
        .query_one("SELECT sum(events)::bigint FROM rm.event_counts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        counted as u64, report.events,
        "every event counted exactly once"
    );
    let users: i64 = client
        .query_one("SELECT count(*) FROM rm.users", &[])
        .await
        .unwrap()
        .get(0);
    let signed_up: i64 = client
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'user.signed_up'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, signed_up);
    for (name, before) in checkpoints_before {
        let after: i64 = client
            .query_one(
                "SELECT position FROM projection_generations WHERE name = $1 AND state = 'active'",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        assert!(after >= before, "{name} resumed from its checkpoint");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Ctrl-C on a server with its embedded cluster: requests drain, the
/// background roles stop, every connection closes, and only then does the
/// cluster stop, so the log holds no connection error or any other warning
/// after "shutting down", and no postmaster is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_closes_every_connection_before_the_embedded_cluster_stops() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_gatehouse-it-server");
    let mut server = ServerProcess::spawn(bin, "", dir.path(), "info").await;
    let s = server.client();
    // Some work first, so the pool, the appender and the roles are busy.
    let (_, token, at) = s.user("shutdown@example.com").await;
    assert_eq!(s.get_at("/v1/me", &token, at).await.status(), 200);

    let (exit, log) = server.stop_with(nix::sys::signal::Signal::SIGINT);
    assert!(exit.success(), "{exit:?}\n{log}");
    let after = &log[log
        .find("shutting down")
        .expect("the server logs its shutdown")..];
    assert!(after.contains("stopped: requests drained"), "{log}");
    let noisy: Vec<&str> = after
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(noisy.is_empty(), "warnings at shutdown: {noisy:#?}");
    // As root the cluster may live outside, where the data directory records.
    let cluster = std::fs::read_to_string(dir.path().join("postgres-location"))
        .map(|p| std::path::PathBuf::from(p.trim()))
        .unwrap_or_else(|_| dir.path().join("postgres"));
    assert!(
        cluster.join("data/PG_VERSION").exists(),
        "{}",
        cluster.display()
    );
    let running = cluster.join("data/postmaster.pid").exists();
    if cluster != dir.path().join("postgres") {
        let _ = std::fs::remove_dir_all(&cluster);
    }
    assert!(!running, "the cluster still runs: {}", cluster.display());
}
