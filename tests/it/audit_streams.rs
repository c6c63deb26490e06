//! Audit log streams: an organisation's audit history pushed to a
//! collector as it is recorded, with the webhook machinery (signed,
//! retried, logged), and checked against the history the API serves.

use std::time::Duration;

use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::TestServer;
use gatehouse_tests::webhooks::{verify, Answer, Receiver, Unverified};
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

/// Waits (30 s at most) for the collector to receive the entry of the
/// rename to `name`.
async fn entry_renaming_to(
    collector: &Receiver,
    name: &str,
) -> gatehouse_tests::webhooks::Received {
    let started = std::time::Instant::now();
    loop {
        if let Some(r) = collector
            .received()
            .into_iter()
            .find(|r| r.json()["data"]["changes"]["name"]["after"] == name)
        {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the rename to {name:?} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no node holds a lease on endpoint `id`: the lane that sent
/// its last delivery has finished, so the next lane reads the endpoint's
/// secrets afresh.
async fn lane_released(db: &gatehouse_tests::TestDb, id: &str) {
    let id: uuid::Uuid = id.parse().unwrap();
    let client = db.client().await;
    let started = std::time::Instant::now();
    loop {
        let owner: Option<uuid::Uuid> = client
            .query_one(
                "SELECT lease_owner FROM delivery.endpoints WHERE endpoint_id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        if owner.is_none() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the lane never let go"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The names the received entries rename the app to, in arrival order.
fn renames(received: &[gatehouse_tests::webhooks::Received]) -> Vec<String> {
    received
        .iter()
        .filter_map(|r| {
            r.json()["data"]["changes"]["name"]["after"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// A stream Gatehouse disabled (its collector answered 410) keeps the
/// entries recorded while it is disabled, pending in its delivery log and
/// unsent; enabled again, it catches up on them in log order, each once.
/// Its secret then rotates: during the overlap both secrets sign, and after
/// a rotation without overlap only the newest does.
#[tokio::test]
async fn a_disabled_stream_catches_up_once_enabled_and_a_rotated_secret_signs_beside_the_old() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "siem-gone").await;
    let collector = Receiver::start().await;
    let streams = format!("/v1/orgs/{}/audit/streams", app.org);
    collector.script([Answer::Status(410, None)]);
    let (status, stream, at) = s
        .call(
            Method::POST,
            &streams,
            &app.owner,
            Some(json!({ "url": collector.url("/siem") })),
            app.at,
        )
        .await;
    assert_eq!(status, 201, "{stream}");
    let id = stream["id"].as_str().unwrap().to_owned();
    let secret = stream["secret"].as_str().unwrap().to_owned();
    let one = format!("{streams}/{id}");

    // The first entry is answered 410: Gatehouse disables the stream.
    rename(&s, &app, "Gone", at).await;
    let refused = collector.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(refused[0].answered, 410);
    let started = std::time::Instant::now();
    loop {
        // The list reads what the dispatcher reads (`delivery.endpoints`).
        let (status, list, _) = s.call(Method::GET, &streams, &app.owner, None, 0).await;
        assert_eq!(status, 200, "{list}");
        if list["items"][0]["status"] == "disabled" {
            assert_eq!(list["items"][0]["disabled_reason"], "gone", "{list}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never disabled: {list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, read, _) = s.call(Method::GET, &one, &app.owner, None, 0).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["status"], "disabled", "{read}");

    // Entries recorded while it is disabled. A second stream of the
    // organisation, created first, receives them: the marker that they
    // were fanned out to every stream, the disabled one included.
    let marker = Receiver::start().await;
    let (status, second, at) = s
        .call(
            Method::POST,
            &streams,
            &app.owner,
            Some(json!({ "url": marker.url("/marker") })),
            0,
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let at = rename(&s, &app, "While 1", at).await;
    let at = rename(&s, &app, "While 2", at).await;
    let while_1 = entry_renaming_to(&marker, "While 1").await.json()["data"]["position"].clone();
    let while_2 = entry_renaming_to(&marker, "While 2").await.json()["data"]["position"].clone();
    let (status, log, _) = s
        .call(
            Method::GET,
            &format!("{one}/deliveries?limit=200"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let held: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "pending")
        .collect();
    assert!(held.len() >= 2, "both entries wait in the log: {log}");
    assert!(
        held.iter().all(|d| d["attempt_count"] == 0),
        "nothing was attempted while disabled: {log}"
    );
    assert_eq!(
        collector.received().len(),
        1,
        "nothing is sent to a disabled stream"
    );

    // Enabled again: it catches up, in log order.
    let (status, enabled, at) = s
        .call(Method::POST, &format!("{one}/enable"), &app.owner, None, at)
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["status"], "enabled");
    let w1 = entry_renaming_to(&collector, "While 1").await;
    let w2 = entry_renaming_to(&collector, "While 2").await;
    assert_eq!(w1.json()["data"]["position"], while_1);
    assert_eq!(w2.json()["data"]["position"], while_2);
    assert!(w1.at < w2.at, "in log order");
    assert_eq!(verify(&w1, &secret), Ok(()));
    assert_eq!(verify(&w2, &secret), Ok(()));
    // A marker on the stream's own lane: a later entry, sent after
    // anything the catch-up would still send.
    let at = rename(&s, &app, "After", at).await;
    entry_renaming_to(&collector, "After").await;
    let caught_up = collector.received();
    assert_eq!(
        renames(&caught_up),
        ["Gone", "While 1", "While 2", "After"],
        "each entry once, in order; the refused one not again"
    );
    let positions: Vec<i64> = caught_up[1..]
        .iter()
        .map(|r| r.json()["data"]["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the catch-up goes in log order: {positions:?}"
    );

    // A rotation with an overlap: both secrets sign. (The lane that sent
    // the catch-up holds the secrets it read; the next one reads them anew.)
    lane_released(&db, &id).await;
    let (status, rotated, at) = s
        .call(
            Method::POST,
            &format!("{one}/rotate-secret"),
            &app.owner,
            Some(json!({"overlap_secs": 3600})),
            at,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, secret);
    assert!(new.starts_with("whsec_"), "{rotated}");
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    let at = rename(&s, &app, "Rotated", at).await;
    let during = entry_renaming_to(&collector, "Rotated").await;
    assert_eq!(
        during.signature.split(' ').count(),
        2,
        "{}",
        during.signature
    );
    assert_eq!(
        verify(&during, &secret),
        Ok(()),
        "the old secret still signs"
    );
    assert_eq!(verify(&during, &new), Ok(()), "the new secret signs");

    // A rotation without overlap: only the newest signs.
    lane_released(&db, &id).await;
    let (status, rotated, at) = s
        .call(
            Method::POST,
            &format!("{one}/rotate-secret"),
            &app.owner,
            Some(json!({"overlap_secs": 0})),
            at,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    rename(&s, &app, "Rotated again", at).await;
    let after = entry_renaming_to(&collector, "Rotated again").await;
    assert_eq!(after.signature.split(' ').count(), 1, "{}", after.signature);
    assert_eq!(verify(&after, &newest), Ok(()));
    assert_eq!(verify(&after, &new), Err(Unverified::NoMatch));
    assert_eq!(verify(&after, &secret), Err(Unverified::NoMatch));
}
