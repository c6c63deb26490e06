//! Staff mass rotation over HTTP: a job requires every matching key to
//! rotate by a deadline, in batches; the server is killed (SIGKILL) half
//! way and a new process finishes the job with no key required twice;
//! owners are told, the keys verify until the deadline.

use std::time::{Duration, Instant};

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::{verdict, KeyedApp};
use gatehouse_tests::process::ServerProcess;
use reqwest::Method;
use serde_json::{json, Value};

const KEYS: usize = 40;

async fn spawn(db: &gatehouse_tests::TestDb, dir: &std::path::Path) -> ServerProcess {
    ServerProcess::spawn_with(
        env!("CARGO_BIN_EXE_gatehouse-it-server"),
        &db.conninfo,
        dir,
        "info",
        &[
            ("GATEHOUSE_ROTATION_BATCH", "4"),
            ("GATEHOUSE_ROTATION_PAUSE_MS", "150"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_rotation_killed_half_way_is_finished_by_the_next_process() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let first = spawn(&db, dir.path()).await;
    let s = first.client();
    let k = KeyedApp::new(&s, &db, "mass").await;
    let mut keys = Vec::new();
    for _ in 0..KEYS {
        keys.push(k.test_key(&s).await);
    }
    let (status, p, _) = s
        .call(
            Method::POST,
            "/v1/staff/key-rotations",
            &k.owner,
            Some(json!({"reason": "x"})),
            0,
        )
        .await;
    assert_eq!(status, 403, "staff only: {p}");
    let body = json!({"org_id": k.org, "mode": "test", "grace_period_secs": 3600,
                      "reason": "a CI log leaked test keys"});
    let (status, job, _) = s
        .call(
            Method::POST,
            "/v1/staff/key-rotations",
            &k.staff,
            Some(body),
            0,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let path = format!("/v1/staff/key-rotations/{}", job["id"].as_str().unwrap());

    // Kill it once some keys, not all, are done.
    let started = Instant::now();
    loop {
        let (_, j, _) = s.call(Method::GET, &path, &k.staff, None, 0).await;
        let done = j["keys_required"].as_u64().unwrap_or(0);
        if done >= 8 {
            assert!(done < KEYS as u64, "the job finished before the kill: {j}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no progress: {j}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL

    let second = spawn(&db, dir.path()).await;
    let s = second.client();
    let started = Instant::now();
    let finished: Value = loop {
        let (status, j, _) = s.call(Method::GET, &path, &k.staff, None, 0).await;
        if status == 200 && j["status"] == "completed" {
            break j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never completed: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished["keys_required"], KEYS, "{finished}");
    let client = db.client().await;
    let per_key: Vec<i64> = client
        .query(
            "SELECT count(*) FROM events WHERE event_type = 'api_key.rotation_required' GROUP BY stream_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(per_key.len(), KEYS);
    assert!(
        per_key.iter().all(|n| *n == 1),
        "no key required twice: {per_key:?}"
    );
    let staff_actor: i64 = client
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'api_key.rotation_required' \
             AND metadata->'actor'->>'kind' = 'staff'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(staff_actor, KEYS as i64, "each with the staff actor");

    // The keys verify until the deadline and show it; the owners are told.
    let (id, key, _) = &keys[0];
    assert_eq!(verdict(&s, key).await, "valid");
    let head = db.log_stats().await.0 as u64;
    let (_, row, _) = s
        .call(Method::GET, &format!("/v1/keys/{id}"), &k.owner, None, head)
        .await;
    assert_eq!(row["status"], "expiring");
    let (_, notes, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/notifications?limit=200", k.org),
            &k.owner,
            None,
            head,
        )
        .await;
    let told = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "key_rotation_required")
        .count();
    assert_eq!(told, KEYS);
}
