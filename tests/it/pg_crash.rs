//! A crash of PostgreSQL itself loses nothing acknowledged and needs no
//! operator: the postmaster of a private, durable cluster (`fsync`,
//! `synchronous_commit` and `full_page_writes` on) is killed with SIGKILL
//! while clients sign up through a running server; the cluster is started
//! again on the same data directory and socket. Then every acknowledged
//! write is in the log, the chain verifies, the same server process serves
//! commands again by itself, and the projections resume from their
//! checkpoints (same generation, never behind, nothing applied twice)
//! instead of rebuilding from 0.
//!
//! `crash.rs` kills the server over the shared, non-durable test cluster;
//! this kills the database under the server. A SIGKILL of the postmaster
//! does not drop the OS page cache, so what it checks is that a commit is
//! acknowledged only once its WAL left PostgreSQL's shared memory
//! (`synchronous_commit = on`) and that crash recovery restores it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_store::launcher::{self, LaunchOptions, LocalPostgres};
use gatehouse_tests::process::ServerProcess;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

async fn spawn_server(conninfo: &str, dir: &Path) -> ServerProcess {
    let bin = env!("CARGO_BIN_EXE_gatehouse-it-server");
    ServerProcess::spawn(bin, conninfo, dir, "error").await
}

async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// `(name, generation, checkpoint)` of every active projection generation.
async fn checkpoints(client: &tokio_postgres::Client) -> Vec<(String, i32, i64)> {
    client
        .query(
            "SELECT name, generation, position FROM projection_generations \
             WHERE state = 'active' ORDER BY name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn sign_up_body(email: &str) -> Value {
    json!({"email": email, "name": "Crash", "password": "correct horse battery"})
}

fn position_header(r: &reqwest::Response) -> u64 {
    r.headers()["gatehouse-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Starts the cluster under `dir` again, retrying while the killed
/// postmaster's children are still exiting (PostgreSQL refuses to start
/// while they hold the old shared memory).
async fn restart(dir: &Path, options: &LaunchOptions) -> LocalPostgres {
    let started = Instant::now();
    loop {
        let (dir, options) = (dir.to_path_buf(), options.clone());
        match tokio::task::spawn_blocking(move || LocalPostgres::start(&dir, &options))
            .await
            .unwrap()
        {
            Ok(pg) => return pg,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                eprintln!("restarting the cluster: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("the cluster restarts on its data directory: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_postmaster_loses_no_acknowledged_write_and_the_running_server_recovers_alone() {
    // Dropped last: the cluster is stopped before its directory goes.
    let root = tempfile::tempdir().unwrap();
    let server_dir = tempfile::tempdir().unwrap();
    let options = LaunchOptions {
        durable: true,
        max_connections: 100,
    };
    let opened = launcher::open(None, root.path(), options.clone())
        .await
        .unwrap();
    let config = opened.config.clone();
    let mut cluster: Option<LocalPostgres> = opened.local;
    let conninfo = cluster
        .as_ref()
        .expect("no DATABASE_URL given, so the embedded cluster runs")
        .conninfo(launcher::EMBEDDED_DATABASE);

    let admin = connect(&config).await.unwrap();
    for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
        let value: String = admin
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(value, "on", "durable: true puts {setting} on");
    }
    let overrides: i64 = admin
        .query_one("SELECT count(*) FROM pg_db_role_setting", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(overrides, 0, "no role or database overrides those settings");
    let data_dir: String = admin
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);

    let mut server = spawn_server(&conninfo, server_dir.path()).await;
    let server_pid = server.child.id();

    // Clients sign up until told to stop, through the crash and after it.
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let base = server.base.clone();
            let (acknowledged, failures, stop) =
                (acknowledged.clone(), failures.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = sign_up_body(&format!("c{c}n{n}@example.com"));
                    let sent = http
                        .post(format!("{base}/v1/users"))
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => {
                            let position = position_header(&r);
                            if let Ok(v) = r.json::<Value>().await {
                                let id = v["id"].as_str().unwrap().to_owned();
                                acknowledged.lock().unwrap().push((id, position));
                            }
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();

    // Writes flow and the projections follow them.
    let deadline = Instant::now() + Duration::from_secs(15);
    while acknowledged.lock().unwrap().len() < 10 {
        assert!(
            Instant::now() < deadline,
            "sign-ups are acknowledged before the crash"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let reached = acknowledged
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.1)
        .max()
        .unwrap();
    let names: Vec<&str> = ::projections::all().iter().map(|p| p.name()).collect();
    let before = loop {
        let rows = checkpoints(&admin).await;
        if rows.len() == names.len() && rows.iter().all(|r| r.2 as u64 >= reached) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "every projection ({names:?}) reaches {reached} before the crash: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let failures_before = failures.load(Ordering::Relaxed);

    // Kill the postmaster, mid-load.
    let pid_file = Path::new(&data_dir).join("postmaster.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    drop(admin);
    let acked_at_kill = acknowledged.lock().unwrap().len();
    let down_by = Instant::now() + Duration::from_secs(10);
    while connect(&config).await.is_ok() {
        assert!(Instant::now() < down_by, "the database goes down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The clients keep writing into the outage, and see it.
    while failures.load(Ordering::Relaxed) <= failures_before {
        assert!(
            Instant::now() < down_by,
            "the clients were writing when the database went down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The old handle's watchdog would `pg_ctl stop` this data directory:
    // let it run now, against the dead postmaster, not later against the
    // restarted one.
    let old = cluster.take();
    tokio::task::spawn_blocking(move || drop(old))
        .await
        .unwrap();
    // Same data directory, hence the same socket directory and port: the
    // server's connection string still points at it.
    cluster = Some(restart(root.path(), &options).await);
    let restarted_at = Instant::now();

    // The running server serves a command again, with no operator action.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut attempt = 0;
    let (user_id, signed_up_at) = loop {
        attempt += 1;
        let email = format!("after{attempt}@example.com");
        let sent = http
            .post(format!("{}/v1/users", server.base))
            .json(&sign_up_body(&email))
            .send()
            .await;
        if let Ok(r) = sent {
            if r.status() == 201 {
                let position = position_header(&r);
                let v: Value = r.json().await.unwrap();
                break (v["id"].as_str().unwrap().to_owned(), (email, position));
            }
        }
        assert!(
            restarted_at.elapsed() < Duration::from_secs(30),
            "the running server serves commands within 30 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        server.child.try_wait().unwrap(),
        None,
        "the server process that served the command is the one from before the crash"
    );
    assert_eq!(server.child.id(), server_pid);
    // ... and reads through its projections.
    let (email, position) = signed_up_at;
    let r = http
        .post(format!("{}/v1/sessions", server.base))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "sign-in after the crash");
    let position = position_header(&r).max(position);
    let session: Value = r.json().await.unwrap();
    let r = http
        .get(format!("{}/v1/me", server.base))
        .bearer_auth(session["token"].as_str().unwrap())
        .header("gatehouse-min-position", position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "/v1/me reads the projections after the crash"
    );
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user"]["id"], user_id.as_str());

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acked_at_kill >= 10);

    // Every acknowledged write, before, during and after the crash, is in
    // the log, once.
    let client = connect(&config).await.unwrap();
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
        assert!(
            row.get::<_, i64>(1) as u64 <= *position,
            "{user_id} is at or before the position it was acknowledged with"
        );
    }
    let pool = event_store::postgres::pool(&config, 2);
    let report = replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .expect("the chain verifies after the crash");

    // The projections catch up, and never went back behind their
    // checkpoint before the crash on the way.
    let mut caught_up = false;
    for _ in 0..600 {
        let now = checkpoints(&client).await;
        assert_eq!(now.len(), before.len(), "the same projections are active");
        for (name, generation, position) in now {
            let (_, g, p) = before.iter().find(|b| b.0 == name).unwrap();
            assert_eq!(
                generation, *g,
                "{name} resumed its generation instead of rebuilding a new one"
            );
            assert!(
                position >= *p,
                "{name}'s checkpoint went back from {p} to {position}"
            );
        }
        if server.caught_up().await == Some(report.head) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the projections caught up after the crash");
    let counted: i64 = client
        .query_one("SELECT sum(events)::bigint FROM rm.event_counts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        counted as u64, report.events,
        "every event counted exactly once: the checkpoint did not restart from 0"
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
    assert_eq!(users, signed_up, "every sign-up projected once");

    drop(client);
    drop(server);
    let last = cluster.take();
    tokio::task::spawn_blocking(move || drop(last))
        .await
        .unwrap();
}
