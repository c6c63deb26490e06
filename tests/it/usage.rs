//! Usage over HTTP: the gateway's reports aggregated per key per minute,
//! refused record by record; an app's analytics; the organisation's Usage
//! tab and the overview's usage and key count.

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::{until_verdict, KeyedApp};
use gatehouse_tests::server::{Options, TestServer, GATEWAY_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

async fn report(s: &TestServer, records: Value) -> (u16, Value, u64) {
    let r = s
        .http
        .post(s.url("/v1/usage"))
        .bearer_auth(GATEWAY_TOKEN)
        .json(&json!({"records": records}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let position = r
        .headers()
        .get("gatehouse-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (status, r.json().await.unwrap(), position)
}

#[tokio::test]
async fn reported_calls_are_aggregated_per_key_per_minute_and_bad_records_refused_alone() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "reports").await;
    let (key_id, key, _) = k.test_key(&s).await;
    until_verdict(&s, &key, "valid").await;
    let minute = chrono::Utc::now() - chrono::Duration::minutes(2);
    let at = |secs: i64| (minute + chrono::Duration::seconds(secs)).to_rfc3339();
    let before = db.log_stats().await;
    let (status, answer, position) = report(
        &s,
        json!([
            {"key_id": key_id, "status": 200, "latency_ms": 12, "at": at(0)},
            {"key_id": key_id, "status": 502, "latency_ms": 40, "at": at(1)},
            {"key_id": key_id, "status": 200, "latency_ms": 8, "at": at(2)},
            {"key_id": key_id, "status": 200, "latency_ms": "fast", "at": at(3)},
            {"key_id": uuid::Uuid::nil(), "status": 200, "latency_ms": 1, "at": at(4)},
            {"key_id": key_id, "status": 99, "latency_ms": 1, "at": at(5)},
            {"key_id": key_id, "status": 200, "latency_ms": 1, "at": "2020-01-01T00:00:00Z"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3);
    let refused: Vec<(u64, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["pointer"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        [
            (3, "/records/3"),
            (4, "/records/4/key_id"),
            (5, "/records/5/status"),
            (6, "/records/6/at")
        ]
    );
    // Three calls in at most two minutes: at most two events.
    let after = db.log_stats().await;
    let usage = |stats: &(i64, Vec<(String, i64)>)| {
        stats
            .1
            .iter()
            .find(|(t, _)| t == "usage.recorded")
            .map_or(0, |c| c.1)
    };
    let written = usage(&after) - usage(&before);
    assert!((1..=2).contains(&written), "{written} events");
    assert_eq!(answer["events"], written);

    let (status, analytics, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/analytics", k.app),
            &k.owner,
            None,
            position,
        )
        .await;
    assert_eq!(status, 200, "{analytics}");
    let totals = &analytics["totals"];
    assert_eq!(
        (totals["calls"].as_i64(), totals["errors"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        (
            totals["latency_min_ms"].as_i64(),
            totals["latency_max_ms"].as_i64()
        ),
        (Some(8), Some(40))
    );
    assert_eq!(totals["latency_avg_ms"].as_f64(), Some(20.0));
    assert_eq!(analytics["keys"][0]["key_id"], key_id.as_str());
    assert_eq!(analytics["days"].as_array().unwrap().len(), 1);

    let (status, p, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/analytics?from=2026-13-01", k.app),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid-query")));
    let too_many = vec![json!({}); 10_001];
    let (status, p, _) = report(&s, json!(too_many)).await;
    assert_eq!(
        (status, p["errors"][0]["pointer"].as_str()),
        (422, Some("/records"))
    );
}

#[tokio::test]
async fn the_usage_tab_and_the_overview_count_verified_calls_in_the_billing_window() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            usage_flush_secs: 1,
            ..Options::default()
        },
    )
    .await;
    let k = KeyedApp::new(&s, &db, "tab").await;
    let (_, key, _) = k.test_key(&s).await;
    let (revoked_id, _, at) = k.test_key(&s).await;
    s.call(
        Method::POST,
        &format!("/v1/keys/{revoked_id}/revoke"),
        &k.owner,
        None,
        at,
    )
    .await;
    until_verdict(&s, &key, "valid").await;
    for _ in 0..4 {
        until_verdict(&s, &key, "valid").await;
    }
    // Five verifications, flushed within about a second.
    let started = std::time::Instant::now();
    let usage = loop {
        let (status, usage, _) = s
            .call(
                Method::GET,
                &format!("/v1/orgs/{}/usage", k.org),
                &k.owner,
                None,
                0,
            )
            .await;
        assert_eq!(status, 200, "{usage}");
        if usage["used"] == 5 || started.elapsed() > std::time::Duration::from_secs(10) {
            break usage;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(usage["used"], 5, "{usage}");
    assert_eq!(usage["monthly_call_limit"], 250_000);
    assert_eq!(usage["remaining"], 250_000 - 5);
    assert_eq!(
        (
            usage["plan"].as_str(),
            usage["platform_api_enabled"].as_bool()
        ),
        (Some("pro"), Some(true))
    );
    // The plan's window was November 2026; today's is the one after it.
    let start =
        chrono::DateTime::parse_from_rfc3339(usage["billing_window_start"].as_str().unwrap())
            .unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(usage["billing_window_end"].as_str().unwrap())
        .unwrap();
    let now = chrono::Utc::now();
    assert!(start <= now && now < end, "{start} .. {end}");
    let (status, overview, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/overview", k.org),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(
        (
            overview["monthly_usage"].as_i64(),
            overview["api_key_count"].as_i64()
        ),
        (Some(5), Some(1))
    );
    // Finance reads usage; a developer does not.
    let (_, dev, _) = s.user("dev-tab@example.com").await;
    let at = s
        .join(&k.owner, &k.org, "dev-tab@example.com", "developer", &dev)
        .await;
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/usage", k.org),
            &dev,
            None,
            at,
        )
        .await;
    assert_eq!(status, 403);
}

async fn count(db: &gatehouse_tests::TestDb, event_type: &str) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = $1",
            &[&event_type],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn thresholds_and_approaching_expiry_are_noticed_once() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            usage_flush_secs: 1,
            ..Options::default()
        },
    )
    .await;
    let k = KeyedApp::new(&s, &db, "notices").await;
    k.set_limit(&s, 10).await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let (status, key, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "soon", "mode": "test", "type": "secret", "expires_at": expires}),
        )
        .await;
    assert_eq!(status, 201);
    let soon_id: uuid::Uuid = key["id"].as_str().unwrap().parse().unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    until_verdict(&s, &key, "valid").await; // 1 call
    for _ in 0..7 {
        assert_eq!(gatehouse_tests::keys::verdict(&s, &key).await, "valid");
    }
    let wait_for = |event_type: &'static str, n: i64| {
        let db = &db;
        async move {
            let started = std::time::Instant::now();
            while count(db, event_type).await < n {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "no {event_type}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    wait_for("usage.threshold_crossed", 1).await;
    wait_for("api_key.expiry_approaching", 1).await;
    for _ in 0..2 {
        assert_eq!(gatehouse_tests::keys::verdict(&s, &key).await, "valid");
    }
    wait_for("usage.threshold_crossed", 2).await;
    // Whole rounds of the notices loop later (two marker keys expiring
    // soon, each noticed in a later round), still once each.
    k.notices_round(&s, &db).await;
    assert_eq!(count(&db, "usage.threshold_crossed").await, 2);
    assert_eq!(
        count(&db, "api_key.expiry_approaching").await,
        3,
        "the key's notice once, and the two markers'"
    );
    let soon: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = $1",
            &[&event_schemas::key::expiry_notice_stream(soon_id)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(soon, 1, "the key's expiry is noticed once");
    let thresholds: Vec<i64> = db
        .client()
        .await
        .query("SELECT (data->>'threshold')::bigint FROM events WHERE event_type = 'usage.threshold_crossed' ORDER BY global_position", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(thresholds, [80, 100]);
    let head = db.log_stats().await.0 as u64;
    let (_, notes, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/notifications", k.org),
            &k.owner,
            None,
            head,
        )
        .await;
    assert!(
        notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "key_expiring"),
        "{notes}"
    );
}

#[tokio::test]
async fn staff_see_apps_ranked_by_calls_and_inactive_apps_by_their_last_call() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "ranked").await;
    let (quiet_key, _, _) = k.test_key(&s).await;
    let (busy_key, _, _) = k.test_key(&s).await;
    let body = json!({"name": "Second", "slug": "ranked-second"});
    let (_, second, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/apps", k.org),
            &k.owner,
            Some(body),
            0,
        )
        .await;
    let record = |key: &str, n: usize| {
        let at = chrono::Utc::now().to_rfc3339();
        json!(vec![
            json!({"key_id": key, "status": 200, "latency_ms": 5, "at": at});
            n
        ])
    };
    let mut at = 0;
    for (key, n) in [(&quiet_key, 2), (&busy_key, 5)] {
        let (status, answer, position) = report(&s, record(key, n)).await;
        assert_eq!(status, 200, "{answer}");
        at = at.max(position);
    }
    let (status, page, _) = s
        .call(
            Method::GET,
            "/v1/staff/reports/high-usage-apps?limit=1",
            &k.staff,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (
            page["items"][0]["app_id"].as_str(),
            page["items"][0]["total"].as_i64()
        ),
        (Some(k.app.as_str()), Some(7))
    );
    let (status, _, _) = s
        .call(
            Method::GET,
            "/v1/staff/reports/high-usage-apps",
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 403);
    // Called just now, the first app is not inactive today; the second,
    // never called, counts from its creation.
    let (_, inactive, _) = s
        .call(
            Method::GET,
            "/v1/staff/reports/inactive-apps?days=0",
            &k.staff,
            None,
            at,
        )
        .await;
    let ids: Vec<&str> = inactive["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.first().copied(),
        second["id"].as_str(),
        "least recently called first: {inactive}"
    );
}
