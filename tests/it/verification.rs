//! The gateway's verification across processes and over time: a revoke
//! refused by a second `gatehouse` process within a second (woken by
//! NOTIFY, not its poll), a node starting from the read model, the
//! gateway's token, malformed keys refused without a lookup, quotas, and
//! usage written per key per interval, never per call.

use std::time::{Duration, Instant};

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::{until_verdict, verdict, verify, KeyedApp};
use gatehouse_tests::process::ServerProcess;
use gatehouse_tests::server::{Options, TestServer, GATEWAY_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

async fn readyz(s: &TestServer) -> Value {
    s.readiness().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_starts_from_the_read_model_and_refuses_a_revoke_within_a_second() {
    let db = fresh_db().await;
    let a = TestServer::start(&db).await;
    let k = KeyedApp::new(&a, &db, "nodes").await;
    let (revoked_id, revoked, at) = k.test_key(&a).await;
    a.call(
        Method::POST,
        &format!("/v1/keys/{revoked_id}/revoke"),
        &k.owner,
        None,
        at,
    )
    .await;
    let (live_id, live, _) = k.test_key(&a).await;
    until_verdict(&a, &revoked, "revoked").await;

    // The second node polls the log only every 30 s: within a second,
    // only PostgreSQL's notification can have woken it.
    let dir = tempfile::tempdir().unwrap();
    let b = ServerProcess::spawn_with(
        env!("CARGO_BIN_EXE_gatehouse-it-server"),
        &db.conninfo,
        dir.path(),
        "info",
        &[("GATEHOUSE_LOG_POLL_MS", "30000")],
    )
    .await;
    let b_client = b.client();
    let started = Instant::now();
    while readyz(&b_client).await["verification"]["ready"] != true {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second node never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        verdict(&b_client, &revoked).await,
        "revoked",
        "loaded from the read model"
    );
    assert_eq!(verdict(&b_client, &live).await, "valid");

    let mut worst = Duration::ZERO;
    for round in 0..3 {
        let (id, key, at) = if round == 0 {
            (live_id.clone(), live.clone(), 0)
        } else {
            k.test_key(&a).await
        };
        until_verdict(&b_client, &key, "valid").await;
        let (status, _, _) = a
            .call(
                Method::POST,
                &format!("/v1/keys/{id}/revoke"),
                &k.owner,
                None,
                at,
            )
            .await;
        assert_eq!(status, 200);
        let took = until_verdict(&b_client, &key, "revoked").await;
        worst = worst.max(took);
    }
    assert!(
        worst < Duration::from_secs(1),
        "a revoke reached the other node in {worst:?}"
    );
}

#[tokio::test]
async fn the_gateway_must_present_one_of_its_tokens() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, session, _) = s.user("someone@example.com").await;
    for token in [None, Some("wrong"), Some(session.as_str())] {
        let mut req = s
            .http
            .post(s.url("/v1/keys/verify"))
            .json(&json!({"key": "gh_test_sk_x"}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn malformed_keys_are_unknown_without_a_lookup_and_bad_bodies_get_problems() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "malformed").await;
    let (_, key, _) = k.test_key(&s).await;
    until_verdict(&s, &key, "valid").await;
    let before = readyz(&s).await["verification"].clone();
    let log_before = db.log_stats_but_usage().await;
    let typo = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('A') { 'B' } else { 'A' }
    );
    for bad in [
        "",
        "not a key",
        typo.as_str(),
        &key.replace("gh_", "zz_"),
        &format!("{key}x"),
    ] {
        let v = verify(&s, bad, None).await;
        assert_eq!(
            (v["valid"].as_bool(), v["reason"].as_str()),
            (Some(false), Some("unknown"))
        );
        assert!(v.get("key_id").is_none());
    }
    let after = readyz(&s).await["verification"].clone();
    assert_eq!(
        after["malformed"].as_u64().unwrap() - before["malformed"].as_u64().unwrap(),
        5
    );
    assert_eq!(
        after["lookups"], before["lookups"],
        "the index was not consulted"
    );
    assert_eq!(
        db.log_stats_but_usage().await,
        log_before,
        "nothing appended"
    );

    let send = |body: String, content_type: &'static str| {
        s.http
            .post(s.url("/v1/keys/verify"))
            .bearer_auth(GATEWAY_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // Each bad body is a problem document: its status, its stable code,
    // and for a field of the wrong shape the field's JSON pointer.
    for (body, content_type, status, code, pointer) in [
        (
            json!({"key": 5}).to_string(),
            "application/json",
            422,
            "invalid-body",
            Some("/key"),
        ),
        (
            json!({}).to_string(),
            "application/json",
            422,
            "invalid-body",
            Some("/key"),
        ),
        (
            json!({"key": key, "scope": ["pay.read"]}).to_string(),
            "application/json",
            422,
            "invalid-body",
            Some("/scope"),
        ),
        (
            json!({"key": key, "tenant": "x"}).to_string(),
            "application/json",
            422,
            "invalid-body",
            Some("/tenant"),
        ),
        (
            json!({"key": "x".repeat(2 << 20)}).to_string(),
            "application/json",
            413,
            "payload-too-large",
            None,
        ),
        (
            "key=x".to_owned(),
            "text/plain",
            415,
            "unsupported-media-type",
            None,
        ),
        (
            "{".to_owned(),
            "application/json",
            400,
            "malformed-body",
            None,
        ),
    ] {
        let shown = format!("{content_type} {body:.60}");
        let r = send(body, content_type).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{shown}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{shown}"
        );
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], status, "{shown}: {p}");
        assert_eq!(p["code"], code, "{shown}: {p}");
        match pointer {
            Some(pointer) => assert_eq!(p["errors"][0]["pointer"], pointer, "{shown}: {p}"),
            None => assert!(p.get("errors").is_none(), "{shown}: {p}"),
        }
    }
    assert_eq!(
        db.log_stats_but_usage().await,
        log_before,
        "no bad body appended anything"
    );
}

#[tokio::test]
async fn verification_stops_at_the_organisations_monthly_limit() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "quota").await;
    k.set_limit(&s, 3).await;
    let (_, key, at) = k.test_key(&s).await;
    // Wait for the index to hold the key without verifying it (a
    // verification would spend the quota).
    let started = Instant::now();
    while readyz(&s).await["verification"]["position"].as_u64() < Some(at) {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let v = verify(&s, &key, None).await;
        assert_eq!(v["valid"], true, "{v}");
        remaining.push(v["remaining"].as_u64().unwrap());
    }
    assert_eq!(remaining, [2, 1, 0]);
    let v = verify(&s, &key, None).await;
    assert_eq!(
        (v["reason"].as_str(), v["remaining"].as_u64()),
        (Some("quota_exceeded"), Some(0))
    );
}

/// A key's own rate limit over HTTP: issued with three verifications a
/// minute, the fourth within the same minute answers `rate_limited` with
/// `reset_at` at the start of the next minute (the window is the clock's
/// minute), while another key of the same app, under the same limit, still
/// verifies: the limit is the key's, not its app's.
#[tokio::test]
async fn a_key_past_its_rate_limit_answers_rate_limited_until_its_window_ends() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "rate").await;
    let limited = |name: &str| {
        json!({"name": name, "mode": "test", "type": "secret",
               "rate_limit": {"limit": 3, "per": "minute"}})
    };
    let (status, first, _) = k.issue(&s, &k.owner, limited("limited")).await;
    assert_eq!(status, 201, "{first}");
    let (status, other, at) = k.issue(&s, &k.owner, limited("other")).await;
    assert_eq!(status, 201, "{other}");
    let key = first["key"].as_str().unwrap().to_owned();
    // Wait for the index to hold both keys without verifying either (a
    // verification would spend the limit).
    let started = Instant::now();
    while readyz(&s).await["verification"]["position"].as_u64() < Some(at) {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Four verifications in one minute of the clock: start with at least
    // ten seconds of it left.
    let minute = |ms: i64| ms.div_euclid(60_000);
    let now = chrono::Utc::now().timestamp_millis();
    if now.rem_euclid(60_000) > 50_000 {
        let wait = 60_000 - now.rem_euclid(60_000) + 200;
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let window = minute(chrono::Utc::now().timestamp_millis());
    for n in 0..3 {
        let v = verify(&s, &key, None).await;
        assert_eq!(v["valid"], true, "verification {n}: {v}");
        assert!(v.get("reset_at").is_none(), "{v}");
    }
    let v = verify(&s, &key, None).await;
    assert_eq!(
        minute(chrono::Utc::now().timestamp_millis()),
        window,
        "the four verifications fell in one minute"
    );
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["reason"], "rate_limited", "{v}");
    assert_eq!(v["key_id"], first["id"], "{v}");
    let reset = chrono::DateTime::parse_from_rfc3339(v["reset_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(reset, (window + 1) * 60_000, "the next minute: {v}");
    // Still refused within the window; the other key is not held back.
    assert_eq!(verdict(&s, &key).await, "rate_limited");
    let other_key = other["key"].as_str().unwrap();
    assert_eq!(verdict(&s, other_key).await, "valid");
}

#[tokio::test]
async fn usage_is_written_per_key_per_interval_and_reaches_the_key_table() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            usage_flush_secs: 1,
            ..Options::default()
        },
    )
    .await;
    let k = KeyedApp::new(&s, &db, "usage").await;
    let (a_id, a, _) = k.test_key(&s).await;
    let (_, b, _) = k.test_key(&s).await;
    until_verdict(&s, &a, "valid").await;
    until_verdict(&s, &b, "valid").await;
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < Duration::from_millis(2500) {
        for key in [&a, &b] {
            if verify(&s, key, None).await["valid"] == true {
                calls += 1;
            }
        }
    }
    let elapsed_intervals = started.elapsed().as_secs() + 1;
    s.stop().await; // flushes what is left
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(sum((data->>'calls')::bigint), 0)::bigint FROM events \
             WHERE event_type = 'usage.recorded'",
            &[],
        )
        .await
        .unwrap();
    let (events, counted): (i64, i64) = (row.get(0), row.get(1));
    // The two keys' readiness checks above count too.
    assert!(
        counted as u64 >= calls && counted as u64 <= calls + 2,
        "{counted} vs {calls}"
    );
    assert!(
        events as u64 <= 2 * (elapsed_intervals + 2),
        "{events} usage events for 2 keys over {elapsed_intervals} intervals"
    );
    // The read model counts from those aggregates.
    let s = TestServer::start(&db).await;
    let head = db.log_stats().await.0 as u64;
    let (status, row, _) = s
        .call(
            Method::GET,
            &format!("/v1/keys/{a_id}"),
            &k.owner,
            None,
            head,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        row["usage_count"].as_i64().unwrap() >= (calls / 2) as i64,
        "{row}"
    );
    assert!(row["last_used_at"].is_string());
}

#[tokio::test]
async fn a_node_whose_index_cannot_apply_the_log_answers_503_never_a_stale_verdict() {
    use event_store::EventStoreExt;
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "frozen").await;
    let (_, key, _) = app.test_key(&s).await;
    assert_eq!(verify(&s, &key, None).await["valid"], true);

    // An event the index cannot take (an issued key without its fields).
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    let poison = event_schemas::NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "api_key.issued".into(),
        schema_version: 1,
        data: serde_json::value::to_raw_value(&json!({})).unwrap(),
        metadata: event_schemas::Metadata::by(event_schemas::Actor::system()),
    };
    store
        .append(
            &format!("api_key-{}", uuid::Uuid::new_v4()),
            event_schemas::ExpectedVersion::NoStream,
            vec![poison],
        )
        .await
        .unwrap();

    // The node stops answering verdicts from the index it froze.
    let started = Instant::now();
    loop {
        let r = s
            .http
            .post(s.url("/v1/keys/verify"))
            .bearer_auth(GATEWAY_TOKEN)
            .json(&json!({"key": key}))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still answering verdicts 10 s after the index stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready");
}

#[tokio::test]
async fn a_verdict_is_never_replayed_from_an_idempotency_key() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "verdicts").await;
    let (id, key, at) = app.test_key(&s).await;
    let ask = || async {
        let r = s
            .http
            .post(s.url("/v1/keys/verify"))
            .bearer_auth(GATEWAY_TOKEN)
            .header("idempotency-key", "the-same-key")
            .json(&json!({"key": key}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    assert_eq!(ask().await["valid"], true);
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{id}/revoke"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    until_verdict(&s, &key, "revoked").await;
    let again = ask().await;
    assert_eq!(again["valid"], false, "{again}");
    assert_eq!(again["reason"], "revoked");
}

/// The verdict names the browser origins the key's app allows, for the
/// gateway to check a browser call's `Origin` against: as the app is
/// changed (the index follows the log), and on a node that loads its index
/// from the read model.
#[tokio::test]
async fn the_verdict_carries_the_apps_allowed_origins_live_and_after_a_load() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "origins").await;
    let (_, key, _) = k.test_key(&s).await;
    until_verdict(&s, &key, "valid").await;
    assert_eq!(verify(&s, &key, None).await["origins"], json!([]));
    let (status, app, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{}", k.app),
            &k.owner,
            Some(json!({"origins": ["https://shop.example.com"]})),
            0,
        )
        .await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["origins"], json!(["https://shop.example.com"]));
    let started = Instant::now();
    while verify(&s, &key, None).await["origins"] != json!(["https://shop.example.com"]) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the index never followed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;

    // A node starting now loads its index from the read model.
    let s = TestServer::start(&db).await;
    let started = Instant::now();
    while readyz(&s).await["verification"]["ready"] != true {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the index never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        verify(&s, &key, None).await["origins"],
        json!(["https://shop.example.com"])
    );
}
