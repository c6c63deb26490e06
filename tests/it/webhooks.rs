//! Webhooks, black-box: endpoints over HTTP, deliveries to a local
//! receiver, each verified with the independent verifier of
//! `gatehouse_tests::webhooks` (on `ring`, written from the specification).

use std::time::Duration;

use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::{Options, TestServer};
use gatehouse_tests::webhooks::{verify, verify_at, Answer, Receiver, Unverified};
use gatehouse_tests::{fresh_db, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// Creates an endpoint; answers (id, secret, position).
async fn endpoint(s: &TestServer, k: &KeyedApp, body: Value) -> (String, String, u64) {
    let (e, at) = k.endpoint(s, body).await;
    (
        e["id"].as_str().unwrap().to_owned(),
        e["secret"].as_str().unwrap().to_owned(),
        at,
    )
}

/// A test-mode endpoint to `r` for `types`; answers (id, secret, position).
async fn subscribe(
    s: &TestServer,
    k: &KeyedApp,
    r: &Receiver,
    types: &[&str],
) -> (String, String, u64) {
    endpoint(
        s,
        k,
        json!({"url": r.url("/"), "mode": "test", "event_types": types}),
    )
    .await
}

/// The log's head, as `/readyz` reports it: a position to read at.
async fn position_of_log(s: &TestServer) -> u64 {
    let ready = s.readiness().await;
    ready["head"].as_u64().unwrap()
}

/// Publishes a message; answers its id.
async fn publish(s: &TestServer, k: &KeyedApp, body: Value) -> String {
    k.publish(s, body).await["id"].as_str().unwrap().to_owned()
}

/// Replays `message` to endpoint `id`; answers the status.
async fn replay_one(s: &TestServer, k: &KeyedApp, id: &str, message: &str) -> u16 {
    let path = format!("/v1/webhooks/{id}/replay");
    let body = json!({"message_ids": [message]});
    s.call(Method::POST, &path, &k.owner, Some(body), 0).await.0
}

async fn get(s: &TestServer, token: &str, path: &str) -> Value {
    let (status, body, _) = s.call(Method::GET, path, token, None, 0).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn setup(options: Options, slug: &str) -> (TestDb, TestServer, KeyedApp) {
    let db = fresh_db().await;
    let s = TestServer::start_with(&db, options).await;
    let k = KeyedApp::new(&s, &db, slug).await;
    (db, s, k)
}

#[tokio::test]
async fn each_family_is_delivered_signed_and_filtered_by_type_and_mode() {
    let (_db, s, k) = setup(Options::default(), "hooks").await;
    let all = Receiver::start().await;
    let keys_only = Receiver::start().await;
    let (_, secret, _) = endpoint(
        &s,
        &k,
        json!({"url": all.url("/all"), "mode": "test",
               "event_types": ["app.*", "api_key.*", "invoice.*", "product_access.*"]}),
    )
    .await;
    let (_, keys_secret, _) = endpoint(
        &s,
        &k,
        json!({"url": keys_only.url("/keys"), "mode": "test", "event_types": ["api_key.issued"],
               "signature": "v1a"}),
    )
    .await;
    // A v1a subscriber is shown the public key only, never the private seed.
    assert!(keys_secret.starts_with("whpk_"), "{keys_secret}");

    let (status, _, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{}", k.app),
            &k.owner,
            Some(json!({"description": "Takes payments"})),
            0,
        )
        .await;
    assert_eq!(status, 200);
    let (key_id, _, _) = k.test_key(&s).await;
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{key_id}/revoke"),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 200);
    publish(
        &s,
        &k,
        json!({"type": "invoice.paid", "payload": {"amount": 42}, "mode": "live"}),
    )
    .await;
    // The same Idempotency-Key twice is one message.
    let events_path = format!("/v1/apps/{}/events", k.app);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = s
            .http
            .post(s.url(&events_path))
            .bearer_auth(&k.owner)
            .header("idempotency-key", "pay-1")
            .json(&json!({"type": "invoice.voided", "payload": {}, "mode": "live"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(r.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let paid = publish(
        &s,
        &k,
        json!({"type": "invoice.paid", "payload": {"amount": 7}, "mode": "test"}),
    )
    .await;

    let got = all.wait_for(4, WAIT).await;
    // A marker published after everything else: the endpoint's lane sends
    // in log order, so anything else it would send (the live messages, a
    // second copy of the idempotent one) arrives before the marker.
    publish(
        &s,
        &k,
        json!({"type": "invoice.marker", "payload": {}, "mode": "test"}),
    )
    .await;
    let got_all = all.wait_for(5, WAIT).await;
    let types: Vec<String> = got_all
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "app.updated",
            "api_key.issued",
            "api_key.revoked",
            "invoice.paid",
            "invoice.marker"
        ],
        "log order, live message filtered out"
    );
    for r in &got {
        assert_eq!(verify(r, &secret), Ok(()), "{}", r.id);
        let body = r.json();
        assert!(body["timestamp"].is_string(), "{body}");
        assert!(
            body["data"].get("hash").is_none(),
            "no internal field: {body}"
        );
    }
    assert_eq!(got[0].json()["data"]["description"], "Takes payments");
    assert_eq!(got[1].json()["data"]["key_id"], key_id.as_str());
    assert_eq!(got[3].json()["data"]["amount"], 7);
    assert_eq!(got[3].id, format!("msg_{}", paid.replace('-', "")));

    // Tampering, another secret, or a stale timestamp fail the check.
    let mut tampered = got[3].clone();
    tampered.body = br#"{"type":"invoice.paid","data":{"amount":7000}}"#.to_vec();
    assert_eq!(verify(&tampered, &secret), Err(Unverified::NoMatch));
    assert_eq!(
        verify(&got[3], &keys_secret.replace("whpk_", "whsec_")),
        Err(Unverified::NoMatch)
    );
    let ts: i64 = got[3].timestamp.parse().unwrap();
    assert_eq!(
        verify_at(&got[3], &secret, ts + 301),
        Err(Unverified::Stale)
    );
    assert_eq!(verify_at(&got[3], &secret, ts + 299), Ok(()));

    // v1a: verified with the public key the endpoint publishes.
    let only = keys_only.wait_for(1, WAIT).await;
    // The marker: a second key issued after the revocation; the revocation
    // would have been sent before it.
    let (second_key, _, _) = k.test_key(&s).await;
    let both = keys_only.wait_for(2, WAIT).await;
    assert_eq!(both.len(), 2, "only api_key.issued");
    assert!(
        both.iter().all(|r| r.json()["type"] == "api_key.issued"),
        "only api_key.issued"
    );
    assert_eq!(both[0].id, only[0].id);
    assert_eq!(both[1].json()["data"]["key_id"], second_key.as_str());
    let list = get(&s, &k.owner, &format!("/v1/apps/{}/webhooks", k.app)).await;
    let pk = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["public_key"].as_str())
        .unwrap()
        .to_owned();
    assert!(
        only[0].signature.starts_with("v1a,"),
        "{}",
        only[0].signature
    );
    assert_eq!(verify(&only[0], &pk), Ok(()));
    assert_eq!(pk, keys_secret, "what the subscriber was shown verifies");

    let types = get(&s, &k.owner, "/v1/event-types").await;
    assert!(types
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["type"] == "api_key.issued"
            && t["schema"]["properties"]["data"]["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "key_id")));
}

#[tokio::test]
async fn failures_retry_with_the_same_id_honour_retry_after_and_410_disables() {
    // The last delay is long enough for a Retry-After of 1 s to count.
    let options = Options {
        webhook_schedule: "0s,200ms,200ms,2s".into(),
        ..Options::default()
    };
    let (_db, s, k) = setup(options, "retry").await;
    let r = Receiver::start().await;
    r.script([
        Answer::Status(500, None),
        Answer::Redirect(r.url("/followed")),
        Answer::Status(429, Some("1".into())),
    ]);
    let (id, secret, _) = subscribe(&s, &k, &r, &["*"]).await;
    publish(
        &s,
        &k,
        json!({"type": "order.shipped", "payload": {"n": 1}}),
    )
    .await;
    let got = r.wait_for(4, WAIT).await;
    assert!(
        got.iter().all(|g| g.id == got[0].id),
        "one webhook-id across retries"
    );
    assert!(got.iter().all(|g| verify(g, &secret).is_ok()));
    assert!(
        got[3].at - got[2].at >= Duration::from_millis(950),
        "Retry-After: 1 waited for"
    );
    assert!(
        got.iter().all(|g| g.path == "/"),
        "the redirect was not followed"
    );

    // The log, once the success is recorded.
    let mut log = Value::Null;
    for _ in 0..100 {
        log = get(&s, &k.owner, &format!("/v1/webhooks/{id}/deliveries")).await;
        if log["items"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = &log["items"][0];
    assert_eq!(d["status"], "delivered", "{log}");
    let codes: Vec<i64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 307, 429, 200]);
    let health = get(&s, &k.owner, &format!("/v1/webhooks/{id}/health")).await;
    assert_eq!(health["attempts_1h"], 4, "{health}");
    assert_eq!(health["success_rate_1h"], 0.25, "{health}");
    let patterns: Vec<&str> = health["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(patterns, ["3xx:307", "4xx:429", "5xx:500"], "{health}");
    // A marker: the next message, which the endpoint's lane sends after
    // anything else it had for the first (the redirect's target, a second
    // success).
    publish(
        &s,
        &k,
        json!({"type": "order.shipped", "payload": {"n": "marker"}}),
    )
    .await;
    let got = r.wait_for(5, WAIT).await;
    assert_eq!(got.len(), 5, "nothing more for the first message");
    assert!(got[..4].iter().all(|g| g.id == got[0].id && g.path == "/"));
    assert_ne!(got[4].id, got[0].id);
    assert_eq!(got[4].json()["data"]["n"], "marker");

    r.script([Answer::Status(410, None)]);
    publish(
        &s,
        &k,
        json!({"type": "order.shipped", "payload": {"n": 2}}),
    )
    .await;
    r.wait_for(6, WAIT).await;
    let mut status = Value::Null;
    for _ in 0..100 {
        status = get(&s, &k.owner, &format!("/v1/webhooks/{id}")).await;
        if status["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["disabled_reason"], "gone", "{status}");
    let (code, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/webhooks", k.app),
            &k.owner,
            None,
            position_of_log(&s).await,
        )
        .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["items"][0]["status"], "disabled", "{list}");
    assert_eq!(
        list["items"][0]["disabled_reason"], "gone",
        "the list agrees with the stream"
    );
    // A marker: another endpoint of the app, receiving every type, gets a
    // message published after the one the disabled endpoint must not get.
    let watcher = Receiver::start().await;
    subscribe(&s, &k, &watcher, &["*"]).await;
    publish(
        &s,
        &k,
        json!({"type": "order.shipped", "payload": {"n": 3}}),
    )
    .await;
    publish(&s, &k, json!({"type": "order.marker", "payload": {}})).await;
    let started = std::time::Instant::now();
    while !watcher
        .received()
        .iter()
        .any(|w| w.json()["type"] == "order.marker")
    {
        assert!(started.elapsed() < WAIT, "the marker never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.received().len(), 6, "nothing goes to a disabled endpoint");
}

#[tokio::test]
async fn an_exhausted_message_is_announced_and_recovered_by_replay() {
    let (_db, s, k) = setup(Options::default(), "replay").await;
    let failing = Receiver::start().await;
    let watcher = Receiver::start().await;
    // The test schedule makes four attempts in all.
    failing.script((0..4).map(|_| Answer::Status(503, None)));
    let (id, secret, _) = subscribe(&s, &k, &failing, &["order.*"]).await;
    subscribe(&s, &k, &watcher, &["webhook.*"]).await;
    let message = publish(&s, &k, json!({"type": "order.placed", "payload": {"n": 1}})).await;
    let tries = failing.wait_for(4, WAIT).await;
    let notice = watcher.wait_for(1, WAIT).await[0].json();
    assert_eq!(notice["type"], "webhook.message_exhausted", "{notice}");
    assert_eq!(notice["data"]["endpoint_id"], id.as_str());
    assert_eq!(notice["data"]["message_id"], message.as_str());
    assert_eq!(notice["data"]["attempts"], 4);

    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (status, replay, _) = s
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/recover"),
            &k.owner,
            Some(json!({"since": since})),
            0,
        )
        .await;
    assert_eq!(status, 202, "{replay}");
    let again = failing.wait_for(5, WAIT).await;
    assert_eq!(
        again[4].id, tries[0].id,
        "a replay carries the original webhook-id"
    );
    assert_eq!(verify(&again[4], &secret), Ok(()));
    // Replayed by the id the receiver logged, not the internal one.
    assert!(tries[0].id.starts_with("msg_"), "{}", tries[0].id);
    assert_eq!(replay_one(&s, &k, &id, &tries[0].id).await, 202);
    let replayed = failing.wait_for(6, WAIT).await;
    assert_eq!(replayed[5].id, tries[0].id);
    assert_eq!(replay_one(&s, &k, &id, &message).await, 202);
    failing.wait_for(7, WAIT).await;
    let log = get(
        &s,
        &k.owner,
        &format!("/v1/webhooks/{id}/deliveries?status=delivered"),
    )
    .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{log}");
    assert!(items.iter().all(|d| d["replay_of"].is_i64()), "{log}");

    // Unknown ids and a half-window are refused, and nothing is appended.
    for (body, pointer) in [
        (
            json!({"message_ids": [uuid::Uuid::now_v7()]}),
            "/message_ids/0",
        ),
        (
            json!({"message_ids": [format!("msg_{}", uuid::Uuid::now_v7().simple())]}),
            "/message_ids/0",
        ),
        (
            json!({"message_ids": [message, "msg_zz"]}),
            "/message_ids/1",
        ),
        (json!({"until": since}), "/since"),
        (json!({}), "/message_ids"),
    ] {
        let (status, problem, _) = s
            .call(
                Method::POST,
                &format!("/v1/webhooks/{id}/replay"),
                &k.owner,
                Some(body),
                0,
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
}

#[tokio::test]
async fn a_rotated_secret_and_its_predecessor_both_sign_during_the_overlap() {
    let (_db, s, k) = setup(Options::default(), "rotate").await;
    let r = Receiver::start().await;
    let (id, old, _) = subscribe(&s, &k, &r, &["*"]).await;
    let (status, rotated, _) = s
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &k.owner,
            Some(json!({"overlap_secs": 3600})),
            0,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    publish(&s, &k, json!({"type": "order.placed", "payload": {}})).await;
    let got = r.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].signature.split(' ').count(),
        2,
        "{}",
        got[0].signature
    );
    assert_eq!(verify(&got[0], &old), Ok(()));
    assert_eq!(verify(&got[0], new), Ok(()));

    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &k.owner,
            Some(json!({"overlap_secs": 0})),
            0,
        )
        .await;
    assert_eq!(status, 200);
    publish(&s, &k, json!({"type": "order.placed", "payload": {}})).await;
    let got = r.wait_for(2, WAIT).await;
    assert_eq!(
        got[1].signature.split(' ').count(),
        1,
        "no overlap: one signature"
    );
    assert_eq!(verify(&got[1], new), Err(Unverified::NoMatch));
}

#[tokio::test]
async fn a_dead_endpoint_does_not_delay_a_healthy_one() {
    let (_db, s, k) = setup(Options::default(), "lanes").await;
    let dead = Receiver::start().await;
    dead.script((0..100).map(|_| Answer::Hang(Duration::from_secs(10))));
    let healthy = Receiver::start().await;
    subscribe(&s, &k, &dead, &["*"]).await;
    subscribe(&s, &k, &healthy, &["order.placed"]).await;
    // The dead endpoint's first attempt is in flight before the rest.
    publish(&s, &k, json!({"type": "order.first", "payload": {}})).await;
    let first_dead = dead.wait_for(1, WAIT).await[0].at;
    for n in 0..20 {
        publish(&s, &k, json!({"type": "order.placed", "payload": {"n": n}})).await;
    }
    let got = healthy.wait_for(20, WAIT).await;
    let ns: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..20).collect::<Vec<_>>(), "in log order");
    // Every healthy delivery arrived while the dead endpoint's first
    // attempt was still waiting out its 2 s timeout: its lane held up no
    // one else's.
    let waited = got[19].at.saturating_duration_since(first_dead);
    assert!(
        waited < Duration::from_millis(2000),
        "{waited:?} after the dead attempt began"
    );
    assert_eq!(
        dead.received().len(),
        1,
        "the dead lane stopped at its first failure and waits for its retry"
    );
}

/// One organisation's dead endpoints hold at most its share of the
/// workers: with two workers and one lane an organisation, a healthy
/// endpoint of another organisation is delivered to while the dead ones'
/// first attempts still wait out their timeouts.
#[tokio::test]
async fn one_organisations_dead_endpoints_cannot_hold_every_worker() {
    let options = Options {
        webhook_workers: (2, 1),
        ..Options::default()
    };
    let (db, s, k) = setup(options, "fair-a").await;
    let other = KeyedApp::new(&s, &db, "fair-b").await;
    let dead: Vec<Receiver> = futures::future::join_all((0..3).map(|_| Receiver::start())).await;
    for r in &dead {
        r.script((0..10).map(|_| Answer::Hang(Duration::from_secs(10))));
        subscribe(&s, &k, r, &["order.*"]).await;
    }
    let healthy = Receiver::start().await;
    subscribe(&s, &other, &healthy, &["order.*"]).await;
    publish(&s, &k, json!({"type": "order.placed", "payload": {}})).await;
    // A dead endpoint's first attempt is in flight.
    let started = loop {
        if let Some(first) = dead.iter().flat_map(|r| r.received()).map(|r| r.at).min() {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    publish(&s, &other, json!({"type": "order.placed", "payload": {}})).await;
    let got = healthy.wait_for(1, WAIT).await;
    let waited = got[0].at.saturating_duration_since(started);
    assert!(
        waited < Duration::from_millis(1500),
        "{waited:?}: the other organisation waited for a dead endpoint's 2 s timeout"
    );
    let attempts: usize = dead.iter().map(|r| r.received().len()).sum();
    assert_eq!(attempts, 1, "one lane for the dead organisation");
}

/// An endpoint failing for the configured time is disabled, announced to
/// the app's `webhook.*` subscribers, and its organisation's owners are
/// told: a `webhook_disabled` notification in the workspace, and the mail
/// notice to their proven address.
#[tokio::test]
async fn an_endpoint_failing_for_the_configured_time_is_disabled_and_the_owners_are_told() {
    let options = Options {
        webhook_schedule: "0s,300ms,300ms,300ms,300ms,300ms,300ms,300ms".into(),
        webhook_disable_after_secs: 1,
        ..Options::default()
    };
    let (_db, s, k) = setup(options, "autodisable").await;
    // Notices are mailed to proven addresses only.
    let owner_email = "owner-autodisable@example.com";
    s.verify_email(owner_email).await;
    let r = Receiver::start().await;
    r.script((0..100).map(|_| Answer::Status(500, None)));
    let watcher = Receiver::start().await;
    let (id, _, _) = subscribe(&s, &k, &r, &["order.*"]).await;
    endpoint(&s, &k, json!({"url": watcher.url("/"), "mode": "test", "event_types": ["webhook.endpoint_disabled"]})).await;
    publish(&s, &k, json!({"type": "order.placed", "payload": {}})).await;
    let notice = watcher.wait_for(1, WAIT).await[0].json();
    assert_eq!(notice["data"]["endpoint_id"], id.as_str(), "{notice}");
    assert_eq!(notice["data"]["reason"], "failing");
    assert!(notice["data"]["failing_since"].is_string());
    let e = get(&s, &k.owner, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(e["status"], "disabled");
    let attempts = r.received().len();
    assert!(
        (4..=6).contains(&attempts),
        "about a second of 300 ms retries: {attempts}"
    );

    // The owners are told in the workspace...
    let notifications = format!("/v1/orgs/{}/notifications", k.org);
    let started = std::time::Instant::now();
    let told = loop {
        let notes = get(&s, &k.owner, &notifications).await;
        let told: Vec<Value> = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "webhook_disabled")
            .cloned()
            .collect();
        if !told.is_empty() {
            break told;
        }
        assert!(
            started.elapsed() < WAIT,
            "no webhook_disabled notification: {notes}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["app_id"], k.app.as_str(), "{told:?}");
    let message = told[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&id) && message.contains("every delivery failed since"),
        "{message}"
    );
    // ...and by mail, at their proven address.
    let mail = s
        .mail
        .next(owner_email, "A webhook endpoint was disabled")
        .await;
    assert!(mail.subject.ends_with(": Checkout"), "{}", mail.subject);
    assert!(
        mail.text.contains(&id) && mail.text.contains("every delivery failed since"),
        "{}",
        mail.text
    );
}

#[tokio::test]
async fn private_destinations_are_refused_and_bad_input_appends_nothing() {
    let options = Options {
        webhook_allow_private: false,
        ..Options::default()
    };
    let (db, s, k) = setup(options, "ssrf").await;
    let before = db.log_stats().await;
    let path = format!("/v1/apps/{}/webhooks", k.app);
    for url in [
        "http://127.0.0.1:9/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://localhost:9/",
        "ftp://example.com/",
        "not a url",
        "https://user:pw@example.com/",
    ] {
        let (status, problem, _) = s
            .call(
                Method::POST,
                &path,
                &k.owner,
                Some(json!({"url": url, "mode": "test", "event_types": ["*"]})),
                k.at,
            )
            .await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/url", "{url}: {problem}");
        // A refusal never tells what a name resolved to.
        if url.contains("localhost") {
            let text = problem.to_string();
            assert!(
                !text.contains("127.0.0.1") && !text.contains("::1"),
                "{text}"
            );
        }
    }
    // Live deliveries and audit streams need https.
    let (status, problem, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/audit/streams", k.org),
            &k.owner,
            Some(json!({"url": "http://siem.example.com/ingest"})),
            k.at,
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/url", "{problem}");
    assert!(problem.to_string().contains("https"), "{problem}");
    for (body, pointer) in [
        (
            json!({"url": "https://example.com", "mode": "prod", "event_types": ["*"]}),
            "/mode",
        ),
        (
            json!({"url": "https://example.com", "mode": "test", "event_types": ["Not A Type"]}),
            "/event_types/0",
        ),
        (
            json!({"url": "https://example.com", "mode": "test", "event_types": ["*"], "signature": "v2"}),
            "/signature",
        ),
    ] {
        let (status, problem, _) = s
            .call(Method::POST, &path, &k.owner, Some(body), k.at)
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
    let events = format!("/v1/apps/{}/events", k.app);
    for (body, status_wanted) in [
        (json!({"type": "app.created", "payload": {}}), 422),
        (json!({"type": "order.placed", "payload": [1]}), 422),
        (
            json!({"type": "order.placed", "payload": {"x": "y".repeat(300 * 1024)}}),
            413,
        ),
    ] {
        let (status, problem, _) = s.call(Method::POST, &events, &k.owner, Some(body), 0).await;
        assert_eq!(status, status_wanted, "{problem}");
    }
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/webhooks/{}", uuid::Uuid::now_v7()),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        db.log_stats().await,
        before,
        "no refused creation was appended"
    );

    // An endpoint that exists (a public address literal: no DNS needed),
    // and bad input on each of its routes.
    let (status, e, at) = s
        .call(
            Method::POST,
            &path,
            &k.owner,
            Some(
                json!({"url": "https://93.184.215.14/hooks", "mode": "test", "event_types": ["*"]}),
            ),
            k.at,
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let before = db.log_stats().await;
    let id = e["id"].as_str().unwrap();
    for (method, route, body, status_wanted, pointer) in [
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            json!({"url": "http://10.0.0.1/"}),
            422,
            Some("/url"),
        ),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            json!({"event_types": []}),
            422,
            Some("/event_types"),
        ),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            json!({"colour": "red"}),
            422,
            Some("/colour"),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/rotate-secret"),
            json!({"overlap_secs": 604801}),
            422,
            Some("/overlap_secs"),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/replay"),
            json!({"message_ids": "all"}),
            422,
            Some("/message_ids"),
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{id}/deliveries?status=lost"),
            Value::Null,
            422,
            Some("/status"),
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{id}/deliveries?since=yesterday"),
            Value::Null,
            400,
            None,
        ),
    ] {
        let r = s
            .http
            .request(method.clone(), s.url(&route))
            .bearer_auth(&k.owner)
            .header("gatehouse-min-position", at.to_string());
        let r = if body.is_null() { r } else { r.json(&body) }
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status_wanted, "{method} {route}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{method} {route}"
        );
        let problem: Value = r.json().await.unwrap();
        if let Some(p) = pointer {
            assert_eq!(
                problem["errors"][0]["pointer"], p,
                "{method} {route}: {problem}"
            );
        }
    }
    assert_eq!(db.log_stats().await, before, "nothing refused was appended");
}

#[tokio::test]
async fn integration_verification_completes_itself_after_a_test_key_verifies_and_a_delivery() {
    let options = Options {
        usage_flush_secs: 1,
        ..Options::default()
    };
    let (db, s, k) = setup(options, "verified").await;
    let sandbox = format!("/v1/orgs/{}/sandbox-access", k.org);
    let (status, env, _) = s.call(Method::POST, &sandbox, &k.owner, None, k.at).await;
    assert_eq!(status, 200, "{env}");
    let grant = format!("{sandbox}/grant");
    let (status, env, _) = s
        .call(Method::POST, &grant, &k.staff, Some(json!({})), 0)
        .await;
    assert_eq!(status, 200, "{env}");
    let path = format!("/v1/orgs/{}/production-access", k.org);
    let (status, env, _) = s
        .call(Method::POST, &path, &k.owner, Some(json!({})), 0)
        .await;
    assert_eq!(status, 200, "{env}");
    let step_state = || async {
        let lane = get(&s, &k.owner, &format!("/v1/orgs/{}/onboarding", k.org)).await;
        lane["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["step"] == "integration_verification")
            .map(|st| st["state"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (key_id, key, issued_at) = k.test_key(&s).await;
    gatehouse_tests::keys::until_verdict(&s, &key, "valid").await;
    // Usage is flushed within a second: the key is seen used...
    let started = std::time::Instant::now();
    let key_path = format!("/v1/keys/{key_id}");
    while s
        .call(Method::GET, &key_path, &k.owner, None, issued_at)
        .await
        .1["last_used_at"]
        .is_null()
    {
        assert!(started.elapsed() < WAIT, "the key's use was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and a whole round of the check runs after that: without a
    // delivery, the step stays open.
    k.notices_round(&s, &db).await;
    assert_eq!(
        step_state().await,
        "pending",
        "a verified key alone is not enough"
    );

    let r = Receiver::start().await;
    subscribe(&s, &k, &r, &["order.*"]).await;
    publish(&s, &k, json!({"type": "order.placed", "payload": {}})).await;
    r.wait_for(1, WAIT).await;
    let started = std::time::Instant::now();
    while step_state().await != "completed" {
        assert!(started.elapsed() < WAIT, "the step never completed itself");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let overview = get(&s, &k.owner, &format!("/v1/orgs/{}/overview", k.org)).await;
    assert_eq!(overview["webhook_count"], 1, "{overview}");
}

#[tokio::test]
async fn retention_purges_payloads_keeps_the_log_and_records_itself() {
    let (db, s, k) = setup(Options::default(), "retention").await;
    let r = Receiver::start().await;
    let (id, _, _) = subscribe(&s, &k, &r, &["order.*"]).await;
    let message = publish(
        &s,
        &k,
        json!({"type": "order.placed", "payload": {"secret_sauce": 1}}),
    )
    .await;
    r.wait_for(1, WAIT).await;

    let dir = tempfile::tempdir().unwrap();
    let purge = |as_of: chrono::DateTime<chrono::Utc>| api::config::AdminArgs {
        db: api::config::DatabaseArgs {
            database_url: Some(db.conninfo.clone()),
            data_dir: dir.path().to_path_buf(),
            pool_size: 2,
        },
        kek: Some(gatehouse_tests::server::TEST_KEK.into()),
        previous_kek: None,
        command: api::config::AdminCommand::PurgeWebhookPayloads {
            retention_days: 90,
            as_of: Some(as_of),
        },
    };
    let client = db.client().await;
    let purges = || async {
        client
            .query(
                "SELECT data FROM events WHERE event_type = 'webhook.payloads_purged'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, serde_json::Value>(0))
            .collect::<Vec<_>>()
    };
    // Within the retention nothing goes.
    api::admin::run(purge(chrono::Utc::now() + chrono::Duration::days(89)))
        .await
        .unwrap();
    assert!(purges().await.is_empty());
    api::admin::run(purge(chrono::Utc::now() + chrono::Duration::days(92)))
        .await
        .unwrap();
    let recorded = purges().await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["messages"], 1);
    assert_eq!(recorded[0]["keys"], 1);
    let body: Option<Vec<u8>> = client
        .query_one(
            "SELECT body FROM delivery.messages WHERE message_id = $1",
            &[&message.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(body, None, "the dispatcher's copy is gone");

    // The log keeps the delivery; a replay cannot send what is gone.
    assert_eq!(replay_one(&s, &k, &id, &message).await, 202);
    let started = std::time::Instant::now();
    loop {
        let log = get(&s, &k.owner, &format!("/v1/webhooks/{id}/deliveries")).await;
        let items = log["items"].as_array().unwrap();
        if items.len() == 2 && items[0]["status"] == "failed" {
            assert_eq!(
                items[0]["attempts"][0]["error_class"], "unsendable",
                "{log}"
            );
            assert_eq!(
                items[1]["status"], "delivered",
                "the original stays in the log"
            );
            break;
        }
        assert!(started.elapsed() < WAIT, "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        r.received().len(),
        1,
        "nothing was sent for the purged payload"
    );
}

#[tokio::test]
async fn versions_product_access_usage_and_expiry_notices_are_delivered() {
    let options = Options {
        usage_flush_secs: 1,
        ..Options::default()
    };
    let (_db, s, k) = setup(options, "families").await;
    let r = Receiver::start().await;
    let (_, secret, _) = subscribe(
        &s,
        &k,
        &r,
        &[
            "app_version.*",
            "product_access.*",
            "usage.*",
            "api_key.expiry_approaching",
        ],
    )
    .await;
    let want = |t: &'static str| {
        let r = r.clone();
        async move {
            let started = std::time::Instant::now();
            loop {
                if let Some(got) = r.received().into_iter().find(|g| g.json()["type"] == t) {
                    return got;
                }
                assert!(started.elapsed() < WAIT, "no {t}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let (status, v, _) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/versions", k.app),
            &k.owner,
            Some(json!({"label": "1.0.0"})),
            0,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let created = want("app_version.created").await;
    assert_eq!(created.json()["data"]["version_id"], v["id"]);
    assert_eq!(created.json()["data"]["label"], "1.0.0");

    let body = json!({"name": "Refunds", "scopes": ["refund.write"], "approval": {"mode": "auto"}});
    let (status, product, _) = s
        .call(Method::POST, "/v1/staff/products", &k.staff, Some(body), 0)
        .await;
    assert_eq!(status, 201, "{product}");
    let (status, access, _) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/products", k.app),
            &k.owner,
            Some(json!({"product_id": product["id"], "mode": "test"})),
            0,
        )
        .await;
    assert_eq!(status, 201, "{access}");
    let requested = want("product_access.requested").await.json();
    assert_eq!(requested["data"]["product_id"], product["id"]);
    let approved = want("product_access.approved").await.json();
    assert_eq!(approved["data"]["scopes"], json!(["refund.write"]));

    // 8 of 10 calls: the 80 % notice; a key 3 days from expiry: its notice.
    k.set_limit(&s, 10).await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let (status, key, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "soon", "mode": "test", "type": "secret", "expires_at": expires}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let plaintext = key["key"].as_str().unwrap().to_owned();
    gatehouse_tests::keys::until_verdict(&s, &plaintext, "valid").await;
    for _ in 0..7 {
        assert_eq!(
            gatehouse_tests::keys::verdict(&s, &plaintext).await,
            "valid"
        );
    }
    let threshold = want("usage.threshold_crossed").await;
    assert_eq!(threshold.json()["data"]["threshold"], 80);
    assert_eq!(threshold.json()["data"]["org_id"], k.org.as_str());
    let expiring = want("api_key.expiry_approaching").await;
    assert_eq!(expiring.json()["data"]["key_id"], key["id"]);
    for g in r.received() {
        assert_eq!(verify(&g, &secret), Ok(()), "{}", g.json());
    }
}

/// The endpoint commands over HTTP, with a second endpoint as the marker
/// that proves a message was fanned out before an absence is asserted: a
/// PATCH takes effect, a message published while an endpoint is disabled
/// waits in its delivery log and arrives once it is enabled, a deleted
/// endpoint receives nothing, and the app's Webhooks page shows each.
#[tokio::test]
async fn a_disabled_endpoint_keeps_its_messages_until_enabled_and_a_deleted_one_gets_none() {
    let (_db, s, k) = setup(Options::default(), "lifecycle").await;
    let r = Receiver::start().await;
    let marker = Receiver::start().await;
    let (id, secret, _) = subscribe(&s, &k, &r, &["invoice.*"]).await;
    subscribe(&s, &k, &marker, &["order.*", "invoice.*"]).await;

    let (status, patched, at) = s
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &k.owner,
            Some(json!({"event_types": ["order.*"], "description": "orders"})),
            0,
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["event_types"], json!(["order.*"]));
    let (_, read, _) = s
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(read["description"], "orders", "{read}");

    let (status, disabled, at) = s
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/disable"),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["status"], "disabled");
    let held = publish(&s, &k, json!({"type": "order.placed", "payload": {"n": 1}})).await;
    let seen = marker.wait_for(1, WAIT).await;
    let log = get(&s, &k.owner, &format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(log["items"][0]["message_id"], held.as_str(), "{log}");
    assert_eq!(log["items"][0]["status"], "pending", "{log}");
    assert!(r.received().is_empty(), "nothing is sent while disabled");
    let summary = get(
        &s,
        &k.owner,
        &format!("/v1/apps/{}/webhooks/summary", k.app),
    )
    .await;
    let mine = summary["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(mine["endpoint"]["status"], "disabled", "{summary}");
    assert_eq!(mine["health"]["pending"], 1, "{summary}");
    assert_eq!(summary["endpoints"].as_array().unwrap().len(), 2);

    let (status, enabled, _) = s
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/enable"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{enabled}");
    let got = r.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].id, seen[0].id,
        "the held message, under its webhook-id"
    );
    assert_eq!(verify(&got[0], &secret), Ok(()));

    let (status, _, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 204);
    publish(&s, &k, json!({"type": "order.placed", "payload": {"n": 2}})).await;
    marker.wait_for(2, WAIT).await;
    // A later marker has arrived, so the deleted endpoint's share would
    // have been fanned out with it.
    publish(&s, &k, json!({"type": "invoice.paid", "payload": {}})).await;
    marker.wait_for(3, WAIT).await;
    assert_eq!(r.received().len(), 1, "a deleted endpoint receives nothing");
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}"),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 404);
}

/// Publishing has a quota per organisation, reserved before the message
/// is appended: ten parallel publishes against a quota of three a minute
/// publish exactly three; the rest get 429 with Retry-After and append
/// nothing. A refusal sent with an Idempotency-Key is replayed as it was.
#[tokio::test]
async fn the_publish_quota_holds_under_parallel_publishers() {
    let options = Options {
        publish_per_minute: 3,
        ..Options::default()
    };
    let (db, s, k) = setup(options, "quota").await;
    let path = format!("/v1/apps/{}/events", k.app);
    let before = db.log_stats().await.0;
    let answers = futures::future::join_all((0..10).map(|n| {
        s.http
            .post(s.url(&path))
            .bearer_auth(&k.owner)
            .json(&json!({"type": "order.placed", "payload": {"n": n}}))
            .send()
    }))
    .await;
    let mut statuses: Vec<u16> = Vec::new();
    for r in answers {
        let r = r.unwrap();
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
            let problem: Value = r.json().await.unwrap();
            assert_eq!(problem["code"], "too-many-requests", "{problem}");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    statuses.sort();
    assert_eq!(statuses, [202, 202, 202, 429, 429, 429, 429, 429, 429, 429]);
    assert_eq!(
        db.log_stats().await.0,
        before + 3,
        "three messages appended"
    );

    let keyed = || {
        s.http
            .post(s.url(&path))
            .bearer_auth(&k.owner)
            .header("idempotency-key", "over-quota")
            .json(&json!({"type": "order.placed", "payload": {}}))
            .send()
    };
    let first = keyed().await.unwrap();
    assert_eq!(first.status(), 429);
    let again = keyed().await.unwrap();
    assert_eq!(again.status(), 429);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers().get("retry-after"),
        first.headers().get("retry-after")
    );
}

/// An endpoint's `rate_limit` (messages a second) paces its lane: a burst
/// of ten messages published at once arrives at least `1/rate_limit` apart
/// (the lane waits out the rest of that interval after each send), while an
/// endpoint without a limit gets the same burst back to back.
#[tokio::test]
async fn an_endpoints_rate_limit_spaces_a_burst_of_deliveries() {
    let (_db, s, k) = setup(Options::default(), "paced").await;
    let paced = Receiver::start().await;
    let free = Receiver::start().await;
    let (id, secret, at) = endpoint(
        &s,
        &k,
        json!({"url": paced.url("/"), "mode": "test", "event_types": ["order.*"], "rate_limit": 5}),
    )
    .await;
    subscribe(&s, &k, &free, &["order.*"]).await;
    let (status, e, _) = s
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["rate_limit"], 5, "{e}");
    let interval = Duration::from_millis(200);
    // Some slack for the loopback's jitter between two requests' arrivals.
    let slack = Duration::from_millis(25);

    futures::future::join_all(
        (0..10).map(|n| k.publish(&s, json!({"type": "order.placed", "payload": {"n": n}}))),
    )
    .await;
    let got = paced.wait_for(10, Duration::from_secs(30)).await;
    let gaps: Vec<Duration> = got
        .windows(2)
        .map(|w| w[1].at.saturating_duration_since(w[0].at))
        .collect();
    assert!(
        gaps.iter().all(|g| *g + slack >= interval),
        "5 a second: every delivery at least 200 ms after the one before: {gaps:?}"
    );
    let span = got[9].at.saturating_duration_since(got[0].at);
    assert!(span + slack >= interval * 9, "{span:?}");
    for g in &got {
        assert_eq!(verify(g, &secret), Ok(()));
    }
    let mut ns: Vec<i64> = got
        .iter()
        .map(|g| g.json()["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..10).collect::<Vec<_>>(), "each message once");

    // The same burst to an endpoint without a limit is not spread out.
    let unpaced = free.wait_for(10, WAIT).await;
    let span = unpaced[9].at.saturating_duration_since(unpaced[0].at);
    assert!(
        span < interval * 9,
        "without a limit the burst arrives together: {span:?}"
    );
}

/// What a client gets for bad input on `POST /v1/apps/{app}/events` and
/// `POST /v1/webhooks/{id}/recover`: a problem document
/// (`application/problem+json`) with the status, a stable `code` and, for a
/// field, the JSON pointer of the first error; and nothing appended.
#[tokio::test]
async fn bad_input_on_publish_and_recover_gets_a_problem_naming_the_field() {
    let (db, s, k) = setup(Options::default(), "problems").await;
    let r = Receiver::start().await;
    let (id, _, _) = subscribe(&s, &k, &r, &["order.*"]).await;
    let before = db.log_stats_but_usage().await;
    let events = format!("/v1/apps/{}/events", k.app);
    let events = events.as_str();
    let recover = format!("/v1/webhooks/{id}/recover");
    let recover = recover.as_str();
    let now = chrono::Utc::now();
    let earlier = (now - chrono::Duration::hours(1)).to_rfc3339();
    let later = now.to_rfc3339();
    let big = json!({"type": "order.placed", "payload": {"x": "y".repeat(300 * 1024)}});
    let json_body = |v: Value| (v.to_string(), "application/json");
    // (path, (body, content type), status, problem code, pointer)
    type Case<'a> = (&'a str, (String, &'a str), u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        // Publishing.
        (
            events,
            json_body(json!({"type": "app.created", "payload": {}})),
            422,
            "invalid-input",
            Some("/type"),
        ),
        (
            events,
            json_body(json!({"type": "Order Placed", "payload": {}})),
            422,
            "invalid-input",
            Some("/type"),
        ),
        (
            events,
            json_body(json!({"type": "order.placed", "payload": [1]})),
            422,
            "invalid-input",
            Some("/payload"),
        ),
        (
            events,
            json_body(json!({"type": "order.placed", "payload": {}, "mode": "prod"})),
            422,
            "invalid-input",
            Some("/mode"),
        ),
        (
            events,
            json_body(json!({"payload": {}})),
            422,
            "invalid-body",
            Some("/type"),
        ),
        (
            events,
            json_body(json!({"type": 7, "payload": {}})),
            422,
            "invalid-body",
            Some("/type"),
        ),
        (
            events,
            json_body(json!({"type": "order.placed", "payload": {}, "colour": "red"})),
            422,
            "invalid-body",
            Some("/colour"),
        ),
        (
            events,
            ("{\"type\": ".to_owned(), "application/json"),
            400,
            "malformed-body",
            None,
        ),
        (
            events,
            ("type=order.placed".to_owned(), "text/plain"),
            415,
            "unsupported-media-type",
            None,
        ),
        (events, json_body(big), 413, "payload-too-large", None),
        // Recovering.
        (
            recover,
            json_body(json!({})),
            422,
            "invalid-body",
            Some("/since"),
        ),
        (
            recover,
            json_body(json!({"since": "yesterday"})),
            422,
            "invalid-body",
            Some("/since"),
        ),
        (
            recover,
            json_body(json!({"since": earlier, "message_ids": []})),
            422,
            "invalid-body",
            Some("/message_ids"),
        ),
        (
            recover,
            json_body(json!({"since": later, "until": earlier})),
            422,
            "invalid-input",
            Some("/since"),
        ),
        (
            recover,
            ("{\"since\"".to_owned(), "application/json"),
            400,
            "malformed-body",
            None,
        ),
        (
            recover,
            (format!("since={earlier}"), "text/plain"),
            415,
            "unsupported-media-type",
            None,
        ),
    ];
    let unknown = format!("/v1/webhooks/{}/recover", uuid::Uuid::now_v7());
    let cases = cases.into_iter().chain([(
        unknown.as_str(),
        json_body(json!({"since": earlier})),
        404,
        "not-found",
        None,
    )]);
    for (path, (body, content_type), status, code, pointer) in cases {
        let shown = format!("{path} {:.80}", body);
        let r = s
            .http
            .post(s.url(path))
            .bearer_auth(&k.owner)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{shown}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{shown}"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["status"], status, "{shown}: {problem}");
        assert_eq!(problem["code"], code, "{shown}: {problem}");
        assert!(
            problem["type"].as_str().unwrap().ends_with(code),
            "{shown}: {problem}"
        );
        match pointer {
            Some(p) => assert_eq!(problem["errors"][0]["pointer"], p, "{shown}: {problem}"),
            None => assert!(problem.get("errors").is_none(), "{shown}: {problem}"),
        }
    }
    assert_eq!(
        db.log_stats_but_usage().await,
        before,
        "nothing refused was appended"
    );
}

/// Auto-disable follows delivery's clock, not the wall clock: with the
/// default five days, an endpoint failing for seconds stays enabled; moved
/// five days on, its next failure disables it, with the time it began
/// failing.
#[tokio::test]
async fn an_endpoint_is_disabled_once_its_clock_shows_five_days_of_failures() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let offset = std::sync::Arc::new(AtomicI64::new(0));
    let moved = offset.clone();
    let options = Options {
        webhook_schedule: "0s,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms".into(),
        webhook_disable_after_secs: 5 * 24 * 3600,
        webhook_clock: delivery::Clock::new(move || {
            chrono::Utc::now() + chrono::Duration::seconds(moved.load(Ordering::SeqCst))
        }),
        ..Options::default()
    };
    let (_db, s, k) = setup(options, "clock").await;
    let r = Receiver::start().await;
    r.script((0..100).map(|_| Answer::Status(500, None)));
    let watcher = Receiver::start().await;
    let (id, _, _) = subscribe(&s, &k, &r, &["order.*"]).await;
    subscribe(&s, &k, &watcher, &["webhook.endpoint_disabled"]).await;
    publish(&s, &k, json!({"type": "order.placed", "payload": {}})).await;
    r.wait_for(3, WAIT).await;
    let e = get(&s, &k.owner, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        e["status"], "enabled",
        "seconds of failures are not five days"
    );
    let began = chrono::Utc::now();

    offset.store(5 * 24 * 3600 + 60, Ordering::SeqCst);
    let notice = watcher.wait_for(1, WAIT).await[0].json();
    assert_eq!(notice["data"]["endpoint_id"], id.as_str(), "{notice}");
    assert_eq!(notice["data"]["reason"], "failing");
    let since: chrono::DateTime<chrono::Utc> = notice["data"]["failing_since"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(since < began, "failing since the first attempt: {since}");
    let e = get(&s, &k.owner, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(e["status"], "disabled");
}
