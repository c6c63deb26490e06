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
    s.user("secret@example.com").await;
    let body = json!({"email": "secret@example.com", "password": "correct horse battery"});
    let first: Value = post_keyed(&s, None, "sign-in-1", "/v1/sessions", &body)
        .await
        .json()
        .await
        .unwrap();
    let again = post_keyed(&s, None, "sign-in-1", "/v1/sessions", &body).await;
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    let token = first["token"].as_str().unwrap();
    assert_eq!(again["token"], token, "the retry gets the token it lost");

    let rows = db
        .client()
        .await
        .query("SELECT key, body, fingerprint FROM idempotency_keys", &[])
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let stored: Vec<u8> = row.get(1);
        let fingerprint: Vec<u8> = row.get(2);
        for bytes in [&stored, &fingerprint] {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains(token), "no token in the table");
            assert!(!text.contains("correct horse"), "no password either");
        }
    }
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
    // The first attempt committed but its answer was lost and the key
    // released, as after a 5xx or a crash before the response was stored.
    db.client()
        .await
        .execute("DELETE FROM idempotency_keys", &[])
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

#[tokio::test]
async fn a_replayed_429_keeps_its_retry_after() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    s.user("locked@example.com").await;
    let wrong = json!({"email": "locked@example.com", "password": "guess guess guess"});
    for _ in 0..api::accounts::throttle::REFUSE_AFTER {
        s.post("/v1/sessions", wrong.clone()).await;
    }
    let first = post_keyed(&s, None, "retry-after", "/v1/sessions", &wrong).await;
    assert_eq!(first.status(), 429);
    let again = post_keyed(&s, None, "retry-after", "/v1/sessions", &wrong).await;
    assert!(replayed(&again));
    assert_eq!(again.status(), 429);
    assert_eq!(
        again.headers().get("retry-after"),
        first.headers().get("retry-after")
    );
    assert_eq!(again.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_stored_sign_up_answer_is_sealed_under_the_users_key_and_erased_with_it() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let body = json!({"email": "gdpr@example.com", "name": "Grace Erased", "password": "correct horse battery"});
    let first = post_keyed(&s, None, "signup-1", "/v1/users", &body).await;
    assert_eq!(first.status(), 201);
    let user: Value = first.json().await.unwrap();
    let user_id: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();
    let again = post_keyed(&s, None, "signup-1", "/v1/users", &body).await;
    assert!(replayed(&again));
    assert_eq!(again.json::<Value>().await.unwrap(), user);
    let client = db.client().await;
    let subject: Option<uuid::Uuid> = client
        .query_one(
            "SELECT subject_id FROM idempotency_keys WHERE key = 'signup-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        subject,
        Some(user_id),
        "sealed under the user's key, not the KEK"
    );
    // Erasure: the user's key is shredded.
    client
        .execute(
            "DELETE FROM subject_keys WHERE subject_id = $1",
            &[&user_id],
        )
        .await
        .unwrap();
    let after = post_keyed(&s, None, "signup-1", "/v1/users", &body).await;
    assert_eq!(after.status(), 410);
    let problem: Value = after.json().await.unwrap();
    assert_eq!(problem["code"], "response-erased");
    assert!(!problem.to_string().contains("Grace"));
}
