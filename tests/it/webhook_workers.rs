//! Webhook workers in separate processes over one database: two share the
//! work without sending a success twice, and one killed with SIGKILL
//! mid-delivery loses nothing, because its leases expire and another
//! process takes them over.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::process::ServerProcess;
use gatehouse_tests::webhooks::{verify, Answer, Receiver};
use reqwest::Method;
use serde_json::json;

const ENV: &[(&str, &str)] = &[
    ("GATEHOUSE_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("GATEHOUSE_WEBHOOK_SCHEDULE", "0s,200ms,400ms"),
    ("GATEHOUSE_WEBHOOK_TIMEOUT_MS", "1000"),
    ("GATEHOUSE_WEBHOOK_LEASE_MS", "3000"),
    ("GATEHOUSE_LOG_POLL_MS", "200"),
];

async fn node(conninfo: &str, dir: &std::path::Path) -> ServerProcess {
    let bin = env!("CARGO_BIN_EXE_gatehouse-it-server");
    ServerProcess::spawn_with(bin, conninfo, dir, "warn", ENV).await
}

#[tokio::test]
async fn two_worker_processes_share_endpoints_without_sending_a_success_twice() {
    let db = fresh_db().await;
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&db.conninfo, da.path()).await;
    let b = node(&db.conninfo, db_dir.path()).await;
    let (ca, cb) = (a.client(), b.client());
    let k = KeyedApp::new(&ca, &db, "pair").await;
    let r = Receiver::start().await;
    let mut secrets = HashMap::new();
    for n in 0..8 {
        let body = json!({"url": r.url(&format!("/e{n}")), "mode": "test", "event_types": ["*"]});
        let (e, _) = k.endpoint(&ca, body).await;
        secrets.insert(format!("/e{n}"), e["secret"].as_str().unwrap().to_owned());
    }
    for n in 0..60 {
        let c = if n % 2 == 0 { &ca } else { &cb };
        k.publish(c, json!({"type": "order.placed", "payload": {"n": n}}))
            .await;
    }
    let got = r.wait_for(480, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_all = r.received();
    let pairs: HashSet<(String, String)> = got_all
        .iter()
        .map(|g| (g.path.clone(), g.id.clone()))
        .collect();
    assert_eq!(pairs.len(), 480, "every message reached every endpoint");
    assert_eq!(got_all.len(), 480, "and no success was sent twice");
    assert!(got.iter().all(|g| verify(g, &secrets[&g.path]).is_ok()));
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_no_message() {
    let db = fresh_db().await;
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = node(&db.conninfo, da.path()).await;
    let ca = a.client();
    let k = KeyedApp::new(&ca, &db, "killed").await;
    let r = Receiver::start().await;
    // Slow answers keep deliveries in flight when the kill comes.
    r.script((0..400).map(|_| Answer::Hang(Duration::from_millis(100))));
    let body = json!({"url": r.url("/"), "mode": "test", "event_types": ["*"]});
    let (e, _) = k.endpoint(&ca, body).await;
    let endpoint = e["id"].as_str().unwrap().to_owned();
    let mut published = HashSet::new();
    for n in 0..40 {
        let m = k
            .publish(&ca, json!({"type": "order.placed", "payload": {"n": n}}))
            .await;
        published.insert(m["webhook_id"].as_str().unwrap().to_owned());
    }
    r.wait_for(5, Duration::from_secs(20)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    a.child.wait().unwrap();
    let before = r.received().len();
    assert!(before < 40, "killed mid-way: {before} of 40 arrived");

    let b = node(&db.conninfo, db_dir.path()).await;
    let started = std::time::Instant::now();
    loop {
        let ids: HashSet<String> = r.received().into_iter().map(|g| g.id).collect();
        if ids.is_superset(&published) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of 40 after the takeover",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What the killed worker sent but never recorded is sent again: the
    // log catches up to every message delivered.
    let cb = b.client();
    let path = format!("/v1/webhooks/{endpoint}/deliveries?status=delivered&limit=200");
    let mut delivered = 0;
    while started.elapsed() < Duration::from_secs(60) {
        let (status, log, _) = cb.call(Method::GET, &path, &k.owner, None, 0).await;
        assert_eq!(status, 200, "{log}");
        delivered = log["items"].as_array().unwrap().len();
        if delivered == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, 40, "the log shows every message delivered");
}
