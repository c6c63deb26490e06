//! Audit log streams: an organisation's audit history pushed to a
//! collector as it is recorded, with the webhook machinery (signed,
//! retried, logged), and checked against the history the API serves.

use std::time::Duration;

use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::TestServer;
use gatehouse_tests::webhooks::{verify, Answer, Receiver};
use reqwest::Method;
use serde_json::{json, Value};

/// Renames the app; answers the position.
async fn rename(s: &TestServer, app: &KeyedApp, name: &str, at: u64) -> u64 {
    let (status, body, at) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{}", app.app),
            &app.owner,
            Some(json!({ "name": name })),
            at,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    at
}

/// The org's history after `after`, oldest first.
async fn history_after(s: &TestServer, app: &KeyedApp, after: i64, at: u64) -> Vec<Value> {
    let (status, page, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/audit?order=oldest&limit=200", app.org),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["position"].as_i64().unwrap() > after)
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_audit_stream_delivers_every_new_entry_of_its_org_signed_and_as_the_history_has_it() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "siem").await;
    let other = KeyedApp::new(&s, &db, "siem-other").await;
    let collector = Receiver::start().await;
    let streams = format!("/v1/orgs/{}/audit/streams", app.org);

    // Only owners and compliance reviewers stream; bad input changes nothing.
    let (_, dev, _) = s.user("dev-siem@example.com").await;
    let at = s
        .join(
            &app.owner,
            &app.org,
            "dev-siem@example.com",
            "developer",
            &dev,
        )
        .await;
    let before = db.log_stats_but_usage().await;
    let body = json!({ "url": collector.url("/siem") });
    let (status, refused, _) = s
        .call(Method::POST, &streams, &dev, Some(body.clone()), at)
        .await;
    assert_eq!(status, 403, "{refused}");
    for (bad, pointer) in [
        (json!({ "url": "ftp://siem.example.com" }), "/url"),
        (json!({ "url": 7 }), "/url"),
        (json!({ "url": collector.url("/"), "extra": true }), ""),
    ] {
        let (status, problem, _) = s
            .call(Method::POST, &streams, &app.owner, Some(bad.clone()), at)
            .await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert!(problem["type"].as_str().is_some(), "{problem}");
        if !pointer.is_empty() {
            assert!(
                problem.to_string().contains(pointer),
                "{bad}: {problem} names {pointer}"
            );
        }
    }
    assert_eq!(db.log_stats_but_usage().await, before, "nothing appended");

    // The first two deliveries fail: the stream is retried, in order.
    collector.script([Answer::Status(503, None), Answer::Status(500, None)]);
    let (status, stream, created) = s
        .call(Method::POST, &streams, &app.owner, Some(body), at)
        .await;
    assert_eq!(status, 201, "{stream}");
    let secret = stream["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{stream}");
    let id = stream["id"].as_str().unwrap().to_owned();
    assert_eq!(stream["org_id"], app.org.as_str());
    assert_eq!(stream["status"], "enabled");

    rename(&s, &app, "Checkout A", created).await;
    let (_key, _, at) = app.test_key(&s).await;
    let at = rename(&s, &app, "Checkout B", at).await;
    rename(&s, &other, "Someone else's", other.at).await;

    let expected = history_after(&s, &app, created as i64, at).await;
    assert!(expected.len() >= 3, "{expected:?}");
    let received = collector
        .wait_for(expected.len() + 2, Duration::from_secs(30))
        .await;
    // The two refused attempts were of the first entry, retried until it
    // got through; first attempts go out in log order (a retried entry may
    // arrive after later ones, as with any webhook: collectors order by
    // `position`).
    let seen: Vec<(String, u16, i64)> = received
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                r.answered,
                r.json()["data"]["position"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(received[0].id, received[1].id, "{seen:?}");
    assert_eq!((received[0].answered, received[1].answered), (503, 500));
    assert!(
        received[2..]
            .iter()
            .any(|r| r.id == received[0].id && r.answered == 200),
        "{seen:?}"
    );
    let mut first_attempts: Vec<i64> = Vec::new();
    for (_, _, position) in &seen {
        if !first_attempts.contains(position) {
            first_attempts.push(*position);
        }
    }
    assert!(first_attempts.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let mut delivered: Vec<_> = received
        .iter()
        .filter(|r| r.answered == 200)
        .cloned()
        .collect();
    delivered.sort_by_key(|r| r.json()["data"]["position"].as_i64());
    let mut ids: Vec<&str> = delivered.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), delivered.len(), "each entry delivered once");
    assert!(delivered.len() >= expected.len(), "every entry delivered");
    for (r, entry) in delivered.iter().zip(&expected) {
        verify(r, &secret).expect("signed with the stream's secret");
        let body = r.json();
        assert_eq!(body["type"], "audit.entry");
        let data = &body["data"];
        for field in ["position", "hash", "action", "org_id", "changes"] {
            assert_eq!(data[field], entry[field], "{field} of {data} as in {entry}");
        }
        assert_eq!(data["actor"]["kind"], entry["actor"]["kind"]);
        assert_eq!(data["actor"]["id"], entry["actor"]["id"]);
        assert_eq!(
            data["context"]["request_id"],
            entry["context"]["request_id"]
        );
        // Personal data stays sealed in Gatehouse, where erasure reaches it.
        assert!(data["context"].get("ip").is_none() && data["context"].get("user_agent").is_none());
        assert!(data["actor"].get("name").is_none() || data["actor"]["kind"] != "user");
    }
    let renamed = delivered
        .iter()
        .map(|r| r.json())
        .find(|b| b["data"]["changes"]["name"]["after"] == "Checkout B")
        .expect("the second rename was streamed");
    assert_eq!(renamed["data"]["changes"]["name"]["before"], "Checkout A");
    assert!(
        delivered
            .iter()
            .all(|r| r.json()["data"]["org_id"] == app.org.as_str()),
        "no other organisation's entries"
    );

    // The delivery log shows them, attempts included.
    let (status, log, _) = s
        .call(
            Method::GET,
            &format!("{streams}/{id}/deliveries"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    assert!(items.len() >= expected.len(), "{log}");
    assert!(items.iter().all(|d| d["status"] == "delivered"));
    assert!(items.iter().any(|d| d["attempt_count"] == 3), "{log}");

    // Listed, readable by compliance-level roles only, and a webhook route
    // does not reach it.
    let (status, list, _) = s.call(Method::GET, &streams, &app.owner, None, at).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert!(list["items"][0].get("secret").is_none());
    let (status, _, _) = s.call(Method::GET, &streams, &dev, None, at).await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/webhooks/{id}"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/audit/streams/{id}", other.org),
            &other.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 404, "another org's owner does not see it");

    // Deleted: nothing more is sent.
    let (status, _, at) = s
        .call(
            Method::DELETE,
            &format!("{streams}/{id}"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 204);
    let sent = collector.received().len();
    // A marker: a second stream of the organisation, created after the
    // deletion, is sent the rename that the deleted one must not be.
    let marker = Receiver::start().await;
    let (status, second, at) = s
        .call(
            Method::POST,
            &streams,
            &app.owner,
            Some(json!({ "url": marker.url("/marker") })),
            at,
        )
        .await;
    assert_eq!(status, 201, "{second}");
    rename(&s, &app, "Checkout C", at).await;
    let started = std::time::Instant::now();
    while !marker
        .received()
        .iter()
        .any(|r| r.json()["data"]["changes"]["name"]["after"] == "Checkout C")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the second stream was never sent the rename"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(collector.received().len(), sent, "nothing after deletion");
}
