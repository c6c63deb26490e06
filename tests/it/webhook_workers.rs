//! Webhook workers in separate processes over one database: two share the
//! work, both delivering, without sending any message twice; and one killed
//! with SIGKILL mid-delivery loses nothing, because its leases expire and
//! another process takes them over.

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

/// One lane a node: each process delivers to one endpoint at a time, and a
/// lane sends its next request only once the previous one was answered.
const ONE_LANE: &[(&str, &str)] = &[
    ("GATEHOUSE_WEBHOOK_WORKERS", "1"),
    ("GATEHOUSE_WEBHOOK_WORKERS_PER_ORG", "1"),
];

async fn node(conninfo: &str, dir: &std::path::Path) -> ServerProcess {
    node_with(conninfo, dir, &[]).await
}

async fn node_with(conninfo: &str, dir: &std::path::Path, more: &[(&str, &str)]) -> ServerProcess {
    let bin = env!("CARGO_BIN_EXE_gatehouse-it-server");
    let env: Vec<(&str, &str)> = ENV.iter().chain(more).copied().collect();
    ServerProcess::spawn_with(bin, conninfo, dir, "warn", &env).await
}

/// How long the receiver holds every request before answering 200.
const HOLD: Duration = Duration::from_millis(150);

/// Two processes, one lane each, share four endpoints: both deliver, and
/// every message reaches every endpoint exactly once.
///
/// Both deliver: the receiver holds every request for [`HOLD`], and a
/// process has one lane that waits for each answer before its next
/// request, so two requests from one process arrive at least `HOLD` apart.
/// Two arrivals closer than that were in flight at once, so they came from
/// the two processes.
///
/// Exactly once: after the 60 messages a marker message is published to
/// every endpoint. An endpoint's lane sends in log order, so a second copy
/// of any earlier message (a lease taken over while its sends were not
/// recorded) is sent before the marker; once every endpoint has its marker,
/// the count is final. The delivery log agrees: one attempt each.
#[tokio::test]
async fn two_worker_processes_both_deliver_and_each_message_arrives_exactly_once() {
    let db = fresh_db().await;
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node_with(&db.conninfo, da.path(), ONE_LANE).await;
    let b = node_with(&db.conninfo, db_dir.path(), ONE_LANE).await;
    let (ca, cb) = (a.client(), b.client());
    let k = KeyedApp::new(&ca, &db, "pair").await;
    let r = Receiver::start().await;
    r.script((0..1000).map(|_| Answer::Hang(HOLD)));
    const ENDPOINTS: usize = 4;
    const MESSAGES: usize = 15;
    let mut secrets = HashMap::new();
    let mut endpoints = Vec::new();
    for n in 0..ENDPOINTS {
        let body =
            json!({"url": r.url(&format!("/e{n}")), "mode": "test", "event_types": ["order.*"]});
        let (e, _) = k.endpoint(&ca, body).await;
        secrets.insert(format!("/e{n}"), e["secret"].as_str().unwrap().to_owned());
        endpoints.push(e["id"].as_str().unwrap().to_owned());
    }
    let mut published = HashSet::new();
    for n in 0..MESSAGES {
        let c = if n % 2 == 0 { &ca } else { &cb };
        let m = k
            .publish(c, json!({"type": "order.placed", "payload": {"n": n}}))
            .await;
        published.insert(m["webhook_id"].as_str().unwrap().to_owned());
    }
    r.wait_for(ENDPOINTS * MESSAGES, Duration::from_secs(60))
        .await;
    let marker = k
        .publish(&cb, json!({"type": "order.marker", "payload": {}}))
        .await;
    let marker = marker["webhook_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let got = loop {
        let got = r.received();
        let marked = got
            .iter()
            .filter(|g| g.id == marker)
            .map(|g| g.path.as_str())
            .collect::<HashSet<&str>>()
            .len();
        if marked == ENDPOINTS {
            break got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the marker reached {marked} of {ENDPOINTS} endpoints"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Exactly once: each (endpoint, message) pair, the marker last.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for g in &got {
        *seen.entry((g.path.clone(), g.id.clone())).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        got.len(),
        ENDPOINTS * (MESSAGES + 1),
        "every message reached every endpoint, once"
    );
    for path in secrets.keys() {
        let ids: Vec<&str> = got
            .iter()
            .filter(|g| &g.path == path)
            .map(|g| g.id.as_str())
            .collect();
        assert_eq!(ids.last(), Some(&marker.as_str()), "{path}: {ids:?}");
        let before: HashSet<String> = ids[..ids.len() - 1]
            .iter()
            .map(|id| (*id).to_owned())
            .collect();
        assert_eq!(before, published, "{path}");
    }
    for g in &got {
        assert_eq!(verify(g, &secrets[&g.path]), Ok(()), "{} {}", g.path, g.id);
    }

    // Both processes delivered: two requests were in flight at once.
    let closest = got
        .windows(2)
        .map(|w| w[1].at.saturating_duration_since(w[0].at))
        .min()
        .unwrap();
    assert!(
        closest < HOLD,
        "no two requests were ever in flight together (closest arrivals {closest:?} apart): \
         one process did all the work"
    );

    // The delivery log: every delivery delivered at its first attempt.
    for id in &endpoints {
        let path = format!("/v1/webhooks/{id}/deliveries?limit=200");
        let started = std::time::Instant::now();
        loop {
            let (status, log, _) = ca.call(Method::GET, &path, &k.owner, None, 0).await;
            assert_eq!(status, 200, "{log}");
            let items = log["items"].as_array().unwrap();
            let done =
                items.len() == MESSAGES + 1 && items.iter().all(|d| d["status"] == "delivered");
            if done {
                for d in items {
                    assert_eq!(d["attempt_count"], 1, "{d}");
                    assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
                    assert_eq!(d["attempts"][0]["status_code"], 200, "{d}");
                }
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{id}: the log never showed every delivery delivered: {log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
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
