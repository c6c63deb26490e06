//! `Idempotency-Key` on POST: repeats get the first response and append
//! nothing; another body under the same key is refused; keys are per caller;
//! stored responses are sealed.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::{position_of, TestServer};
use serde_json::{json, Value};

async fn post_keyed(
    s: &TestServer,
    token: Option<&str>,
    key: &str,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    let mut req = s
        .http
        .post(s.url(path))
        .header("idempotency-key", key)
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn replayed(r: &reqwest::Response) -> bool {
    r.headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_repeated_post_gets_the_first_response_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, _) = s.user("once@example.com").await;
    let body = json!({"slug": "once-co", "name": "Once"});

    let first = post_keyed(&s, Some(&token), "k-1", "/v1/orgs", &body).await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let position = position_of(&first);
    let first: Value = first.json().await.unwrap();
    let after_first = db.log_stats().await;

    let again = post_keyed(&s, Some(&token), "k-1", "/v1/orgs", &body).await;
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    assert_eq!(position_of(&again), position, "the same position");
    assert_eq!(again.json::<Value>().await.unwrap(), first, "the same body");
    assert_eq!(db.log_stats().await, after_first, "nothing appended");

    // The same key with another body is a client bug, not a repeat.
    let other = json!({"slug": "other-co", "name": "Other"});
    let r = post_keyed(&s, Some(&token), "k-1", "/v1/orgs", &other).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency-key-reused");
    assert_eq!(db.log_stats().await, after_first, "nothing appended");

    // Without a key, a repeat is a new command (here refused: slug taken).
    let r = s
        .http
        .post(s.url("/v1/orgs"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // A key too long for the header contract.
    let r = post_keyed(&s, Some(&token), &"k".repeat(256), "/v1/orgs", &other).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "invalid-idempotency-key"
    );
    assert_eq!(db.log_stats().await, after_first, "nothing appended");
}

#[tokio::test]
async fn keys_are_per_caller_and_refusals_are_replayed_too() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, alice, _) = s.user("alice@example.com").await;
    let (_, bob, _) = s.user("bob@example.com").await;

    let r = post_keyed(
        &s,
        Some(&alice),
        "same",
        "/v1/orgs",
        &json!({"slug": "alice-co", "name": "A"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = post_keyed(
        &s,
        Some(&bob),
        "same",
        "/v1/orgs",
        &json!({"slug": "bob-co", "name": "B"}),
    )
    .await;
    assert_eq!(r.status(), 201, "Bob's key is his own");
    assert!(!replayed(&r));

    // A refusal (4xx) is an answer too: the repeat gets it without re-deciding.
    let taken = json!({"slug": "alice-co", "name": "Again"});
    let r = post_keyed(&s, Some(&bob), "taken", "/v1/orgs", &taken).await;
    assert_eq!(r.status(), 409);
    let r = post_keyed(&s, Some(&bob), "taken", "/v1/orgs", &taken).await;
    assert_eq!(r.status(), 409);
    assert!(replayed(&r));
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
}

#[tokio::test]
async fn a_replayed_secret_is_the_same_and_never_stored_in_plaintext() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = gatehouse_tests::keys::KeyedApp::new(&s, &db, "idem-secret").await;
    let body = json!({"name": "Retried", "mode": "test", "type": "secret"});
    let path = format!("/v1/apps/{}/keys", k.app);
    let first = post_keyed(&s, Some(&k.owner), "issue-1", &path, &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post_keyed(&s, Some(&k.owner), "issue-1", &path, &body).await;
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    let secret = first["key"].as_str().unwrap();
    assert_eq!(again["key"], secret, "the retry gets the key it lost");

    let stored: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM idempotency_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    let found = gatehouse_tests::search_every_table(&db, &[secret.to_owned()]).await;
    assert!(found.is_empty(), "the key in plaintext: {found:?}");
}

/// Work a stranger can cause is bounded: a request that is not
/// authenticated (no credentials, a token that is no session, a POST to
/// no route) runs as if it carried no key and stores nothing.
#[tokio::test]
async fn only_authenticated_routed_commands_store_a_key() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let rows = || async {
        db.client()
            .await
            .query_one("SELECT count(*) FROM idempotency_keys", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let body =
        json!({"email": "stranger@example.com", "name": "S", "password": "correct horse battery"});
    let r = post_keyed(&s, None, "stranger-1", "/v1/users", &body).await;
    assert_eq!(r.status(), 201);
    let r = post_keyed(&s, None, "stranger-1", "/v1/users", &body).await;
    assert!(!replayed(&r), "not stored, so not replayed");
    let wrong = json!({"email": "stranger@example.com", "password": "guess guess guess"});
    for n in 0..3 {
        let r = post_keyed(&s, None, &format!("sign-in-{n}"), "/v1/sessions", &wrong).await;
        assert_eq!(r.status(), 401);
    }
    let org = json!({"slug": "nobody-co", "name": "Nobody"});
    let r = post_keyed(&s, Some("gsess_not_a_session"), "bogus-1", "/v1/orgs", &org).await;
    assert_eq!(r.status(), 401);
    let r = post_keyed(&s, None, "nowhere-1", "/v1/no/such/route", &org).await;
    assert_eq!(r.status(), 404);
    assert_eq!(rows().await, 0, "a stranger stored nothing");

    // Signed in, the same key is kept.
    let (_, token, _) = s.user("member@example.com").await;
    let r = post_keyed(&s, Some(&token), "signed-in-1", "/v1/orgs", &org).await;
    assert_eq!(r.status(), 201);
    assert_eq!(rows().await, 1);
}

#[tokio::test]
async fn concurrent_repeats_run_the_command_once() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, _) = s.user("racer@example.com").await;
    let body = json!({"slug": "race-co", "name": "Race"});
    let before = db.log_stats().await.0;
    let attempts = (0..8).map(|_| post_keyed(&s, Some(&token), "race", "/v1/orgs", &body));
    let results = futures::future::join_all(attempts).await;
    let mut ids = std::collections::BTreeSet::new();
    for r in results {
        match r.status().as_u16() {
            201 => {
                ids.insert(r.json::<Value>().await.unwrap()["id"].to_string());
            }
            409 => {
                let problem: Value = r.json().await.unwrap();
                assert_eq!(problem["code"], "idempotency-key-in-progress");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "one organisation, whoever answered");
    let created: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'org.created' AND global_position > $1",
            &[&before],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 1);
}

async fn count_of(db: &gatehouse_tests::TestDb, event_type: &str) -> i64 {
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
async fn a_retry_after_an_unknown_outcome_does_not_run_the_command_twice() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let org = post_keyed(
        &s,
        Some(&owner),
        "org-1",
        "/v1/orgs",
        &json!({"slug": "twice", "name": "Twice"}),
    )
    .await;
    assert_eq!(org.status(), 201);
    let org: Value = org.json().await.unwrap();
    let path = format!("/v1/orgs/{}/invitations", org["id"].as_str().unwrap());
    let body = json!({"email": "new@example.com", "role": "developer"});
    let first = post_keyed(&s, Some(&owner), "invite-1", &path, &body).await;
    assert_eq!(first.status(), 201);
    let first_position = position_of(&first);
    let first: Value = first.json().await.unwrap();
    // The first attempt committed but its answer was lost and its claim
    // lapsed, as after a 5xx or a crash before the response was stored:
    // the claim (and its salt) is there, the answer is not.
    db.client()
        .await
        .execute(
            "UPDATE idempotency_keys SET status = NULL, headers = NULL, position = NULL, \
             body = NULL, lease_until = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let before = db.log_stats().await;
    for key in ["invite-1", "org-1"] {
        let (path, body) = if key == "org-1" {
            (
                "/v1/orgs".to_owned(),
                json!({"slug": "twice", "name": "Twice"}),
            )
        } else {
            (path.clone(), body.clone())
        };
        let again = post_keyed(&s, Some(&owner), key, &path, &body).await;
        assert_eq!(
            again.status(),
            201,
            "{key}: the retry succeeds, it does not conflict"
        );
        assert!(!replayed(&again), "{key}: not a stored replay");
        if key == "invite-1" {
            assert!(position_of(&again) >= first_position);
            let again: Value = again.json().await.unwrap();
            assert_eq!(again["id"], first["id"], "the same invitation");
        } else {
            let again: Value = again.json().await.unwrap();
            assert_eq!(again["id"], org["id"], "the same organisation");
        }
    }
    assert_eq!(db.log_stats().await, before, "nothing appended twice");
    assert_eq!(count_of(&db, "invitation.created").await, 1);
    assert_eq!(count_of(&db, "org.created").await, 1);
}

#[tokio::test]
async fn a_claim_is_not_taken_over_while_its_lease_holds_however_old_it_is() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let body = json!({"slug": "leased", "name": "Leased"});
    let first = post_keyed(&s, Some(&owner), "lease-1", "/v1/orgs", &body).await;
    assert_eq!(first.status(), 201);
    // Make the row look like a claim still running for an hour, with its
    // lease renewed a moment ago.
    let client = db.client().await;
    client
        .execute(
            "UPDATE idempotency_keys SET status = NULL, created_at = now() - interval '1 hour', \
             lease_until = now() + interval '20 seconds'",
            &[],
        )
        .await
        .unwrap();
    let r = post_keyed(&s, Some(&owner), "lease-1", "/v1/orgs", &body).await;
    assert_eq!(r.status(), 409);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency-key-in-progress");
    // Once the lease lapses (its owner died), a retry takes the key over and
    // finds the command already done.
    client
        .execute(
            "UPDATE idempotency_keys SET lease_until = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let r = post_keyed(&s, Some(&owner), "lease-1", "/v1/orgs", &body).await;
    assert_eq!(r.status(), 201);
    assert_eq!(count_of(&db, "org.created").await, 1);
}

/// What a keyed command mints derives from a random salt kept with the
/// claim, and from the operation: the same Idempotency-Key used again
/// after its retention, on the same rotation or to create another
/// endpoint, never mints a secret it minted before.
#[tokio::test]
async fn a_key_reused_after_its_retention_never_mints_the_same_secret() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = gatehouse_tests::keys::KeyedApp::new(&s, &db, "idem-salt").await;
    let forget = || async {
        // The retention passed: the sweep forgot the key.
        db.client()
            .await
            .execute("DELETE FROM idempotency_keys", &[])
            .await
            .unwrap();
    };
    let endpoints = format!("/v1/apps/{}/webhooks", k.app);
    let create = |url: &str| json!({"url": url, "mode": "test", "event_types": ["*"]});
    let a = post_keyed(
        &s,
        Some(&k.owner),
        "same-key",
        &endpoints,
        &create("http://127.0.0.1:9/a"),
    )
    .await;
    assert_eq!(a.status(), 201);
    let a: Value = a.json().await.unwrap();
    forget().await;
    let b = post_keyed(
        &s,
        Some(&k.owner),
        "same-key",
        &endpoints,
        &create("http://127.0.0.1:9/b"),
    )
    .await;
    assert_eq!(b.status(), 201);
    let b: Value = b.json().await.unwrap();
    assert_ne!(a["id"], b["id"], "another endpoint");
    assert_ne!(
        a["secret"], b["secret"],
        "two endpoints never share a secret"
    );

    let rotate = format!("/v1/webhooks/{}/rotate-secret", a["id"].as_str().unwrap());
    let first = post_keyed(&s, Some(&k.owner), "rotate-key", &rotate, &json!({})).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    forget().await;
    let second = post_keyed(&s, Some(&k.owner), "rotate-key", &rotate, &json!({})).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert!(first["secret"].is_string(), "{first}");
    assert_ne!(
        first["secret"], second["secret"],
        "a rotation never returns the old secret"
    );
}
