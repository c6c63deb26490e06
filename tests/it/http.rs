//! The server over HTTP: the sign-up to `/v1/me` slice, read-your-writes,
//! and problem+json for every kind of bad input, with nothing appended.

use event_store::EventStore;
use gatehouse_tests::server::{position_of, Options, TestServer};
use gatehouse_tests::{fresh_db, TestDb};
use serde_json::{json, Value};

async fn head(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT position FROM log_head", &[])
        .await
        .unwrap()
        .get(0)
}

async fn assert_problem(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status for {code}");
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json",
        "content type for {code}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code);
    assert_eq!(body["status"], status);
    assert_eq!(
        body["type"],
        format!("https://gatehouse.dev/problems/{code}")
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

#[tokio::test]
async fn a_user_signs_up_signs_in_and_reads_their_own_writes() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let r = s
        .post("/v1/users", json!({"email": " Ada@Example.com ", "name": "Ada Lovelace", "password": "correct horse battery"}))
        .await;
    assert_eq!(r.status(), 201);
    let signed_up_at = position_of(&r);
    assert!(signed_up_at >= 1);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["email"], "ada@example.com");

    let r = s
        .post(
            "/v1/sessions",
            json!({"email": "ada@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let position = position_of(&r);
    assert!(position > signed_up_at);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("gsess_"), "{token}");

    let r = s.get_at("/v1/me", &token, position).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user"]["id"], created["id"]);
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["user"]["name"], "Ada Lovelace");
    assert_eq!(me["user"]["email_verified"], false);
    assert_eq!(me["access"]["next_step"], "verify_email");
    assert_eq!(me["memberships"], json!([]));

    let position = s.verify_email("ada@example.com").await;
    let me: Value = s
        .get_at("/v1/me", &token, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email_verified"], true);
    assert_eq!(me["access"]["next_step"], "attach_to_organization");
}

#[tokio::test]
async fn personal_data_is_sealed_in_the_log_and_the_token_is_never_stored() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, _) = s.user("grace@example.com").await;
    let rows = db
        .client()
        .await
        .query("SELECT data::text FROM events", &[])
        .await
        .unwrap();
    let log: String = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    assert!(
        !log.contains("grace@example.com"),
        "email in plaintext in the log"
    );
    assert!(!log.contains("Test User"), "name in plaintext in the log");
    assert!(!log.contains("correct horse"), "password in the log");
    assert!(!log.contains(&token), "session token in the log");
    assert!(!log.contains("$argon2"), "a password hash in the log");
    let stored: String = db
        .client()
        .await
        .query_one("SELECT password_hash FROM credentials", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        stored.starts_with("$argon2id$"),
        "the password is kept as an argon2id hash, beside the log"
    );
}

#[tokio::test]
async fn a_min_position_beyond_the_log_is_refused_at_once_not_waited_for() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            read_wait_ms: 300,
            ..Options::default()
        },
    )
    .await;
    let (_, token, position) = s.user("ahead@example.com").await;
    let started = std::time::Instant::now();
    let r = s.get_at("/v1/me", &token, position + 1000).await;
    let problem = assert_problem(r, 400, "invalid-min-position").await;
    assert!(problem["detail"].as_str().unwrap().contains("past the log"));
    assert!(
        started.elapsed() < std::time::Duration::from_millis(300),
        "no wait"
    );
    let r = s.get_at("/v1/me", &token, u64::MAX).await;
    assert_problem(r, 400, "invalid-min-position").await;
    let r = s
        .http
        .get(s.url("/v1/me"))
        .bearer_auth(&token)
        .header("gatehouse-min-position", "soon")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "invalid-min-position").await;
}

#[tokio::test]
async fn signing_out_stops_the_token_on_the_next_request() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, _) = s.user("out@example.com").await;
    assert_eq!(s.get("/v1/me", Some(&token)).await.status(), 200);
    let r = s
        .http
        .delete(s.url("/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(position_of(&r) > 0);
    assert_problem(s.get("/v1/me", Some(&token)).await, 401, "unauthenticated").await;
    assert_problem(s.get("/v1/me", None).await, 401, "unauthenticated").await;
    assert_problem(
        s.get("/v1/me", Some("gsess_forged")).await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn wrong_credentials_never_say_whether_the_email_exists() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    s.user("known@example.com").await;
    let before = head(&db).await;
    let wrong_password = s
        .post(
            "/v1/sessions",
            json!({"email": "known@example.com", "password": "not the password"}),
        )
        .await;
    let a = assert_problem(wrong_password, 401, "invalid-credentials").await;
    let unknown = s
        .post(
            "/v1/sessions",
            json!({"email": "nobody@example.com", "password": "not the password"}),
        )
        .await;
    let b = assert_problem(unknown, 401, "invalid-credentials").await;
    assert_eq!(a, b, "the two refusals are indistinguishable");
    assert_eq!(head(&db).await, before, "a refused sign-in appends nothing");
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            body_limit: 4096,
            ..Options::default()
        },
    )
    .await;
    s.user("taken@example.com").await;
    let before = db.log_stats().await;

    let r = s
        .http
        .post(s.url("/v1/users"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed-body").await;

    let r = s
        .http
        .post(s.url("/v1/users"))
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported-media-type").await;

    // A body of the wrong shape names the field, whatever is wrong with it.
    for (body, pointer) in [
        (json!({"email": 1, "name": "x", "password": "y"}), "/email"),
        (
            json!({"name": "No Email", "password": "correct horse battery"}),
            "/email",
        ),
        (
            json!({"email": "a@b.co", "name": "x", "password": "correct horse battery", "admin": true}),
            "/admin",
        ),
    ] {
        let r = s.post("/v1/users", body).await;
        let problem = assert_problem(r, 422, "invalid-body").await;
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }

    // A malformed id in a path is named for the path, not the body.
    let r = s.get("/v1/apps/not-a-uuid", None).await;
    let problem = assert_problem(r, 400, "invalid-path").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("UUID"),
        "{problem}"
    );

    let r = s
        .post(
            "/v1/users",
            json!({"email": "not-an-email", "name": "x".repeat(201), "password": "short"}),
        )
        .await;
    let body = assert_problem(r, 422, "invalid-input").await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, vec!["/email", "/name", "/password"]);

    let big = json!({"email": "big@example.com", "name": "x".repeat(5000), "password": "correct horse battery"});
    assert_problem(s.post("/v1/users", big).await, 413, "payload-too-large").await;

    assert_problem(s.get("/v1/nothing-here", None).await, 404, "not-found").await;
    let r = s.http.put(s.url("/v1/users")).send().await.unwrap();
    assert_problem(r, 405, "method-not-allowed").await;

    assert_eq!(
        db.log_stats().await,
        before,
        "no refused command appended an event"
    );
}

#[tokio::test]
async fn sign_ups_racing_for_one_address_all_answer_alike_and_only_the_proven_one_keeps_it() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let attempts = (0..6).map(|i| {
        s.post(
            "/v1/users",
            json!({"email": "race@example.com", "name": format!("Racer {i}"), "password": format!("password number {i}")}),
        )
    });
    let answers = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, vec![201; 6], "nobody learns who came first");
    // Each racer got a link, and each (the newest five) can still sign in:
    // the password tells them apart. One of them proves the address with
    // their own link.
    let mut owner = None;
    while owner.is_none() {
        let mail = s.mail.next("race@example.com", "Confirm your email").await;
        let racer: String = mail
            .text
            .split("Hello Racer ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .to_owned();
        let r = s
            .post(
                "/v1/sessions",
                json!({"email": "race@example.com", "password": format!("password number {racer}")}),
            )
            .await;
        if r.status() != 201 {
            continue; // the oldest registration: past the five tried
        }
        let token = r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let body = json!({"token": mail.token("/verify-email")});
        let (status, proof, _) = s
            .call(
                reqwest::Method::POST,
                "/v1/email-verifications",
                &token,
                Some(body),
                0,
            )
            .await;
        assert_eq!(status, 200, "{proof}");
        owner = Some(proof["user_id"].as_str().unwrap().to_owned());
    }
    let owner = owner.unwrap();
    // Exactly one account now signs in with the address: the proven one.
    let mut signed_in = Vec::new();
    for i in 0..6 {
        let r = s
            .post(
                "/v1/sessions",
                json!({"email": "race@example.com", "password": format!("password number {i}")}),
            )
            .await;
        if r.status() == 201 {
            let token = r.json::<Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned();
            let me: Value = s.get("/v1/me", Some(&token)).await.json().await.unwrap();
            signed_in.push(me["user"]["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(signed_in, vec![owner]);
}

#[tokio::test]
async fn health_readiness_and_the_openapi_document() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let (_, user, position) = s.user("ready@example.com").await;
    // Anyone (a load balancer, a signed-in user) sees the status only.
    for token in [None, Some(user.as_str())] {
        let r = s.get("/readyz", token).await;
        assert_eq!(r.status(), 200);
        let ready: Value = r.json().await.unwrap();
        assert_eq!(ready, json!({"status": "ready"}), "no details: {ready}");
    }
    // An operator, with the gateway token, sees the details.
    let ready = s.readiness().await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], true);
    assert!(ready["head"].as_u64().unwrap() >= position);
    let names: Vec<&str> = ready["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "accounts",
            "apps",
            "audit",
            "event_counts",
            "keys",
            "orgs",
            "usage"
        ]
    );
    assert_eq!(ready["verification"]["ready"], true);

    let doc: Value = s.get("/openapi.json", None).await.json().await.unwrap();
    for path in [
        "/v1/users",
        "/v1/me",
        "/v1/sessions",
        "/v1/sessions/current",
        "/healthz",
        "/readyz",
        "/v1/orgs/{org}/apps",
        "/v1/apps/{app}/keys",
        "/v1/keys/verify",
        "/v1/apps/{app}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// Every request gets a request id of Gatehouse's own, answered, logged
/// and recorded in its events; a client's `X-Request-Id` is recorded apart,
/// marked as the client's, never as the request's id.
#[tokio::test]
async fn a_request_id_is_the_servers_own_and_a_clients_is_recorded_apart() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let r = s
        .http
        .post(s.url("/v1/users"))
        .header("x-request-id", "req-abc-123")
        .json(&json!({"email": "rid@example.com", "name": "Rid", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ours = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(ours, "req-abc-123", "the client does not name the request");
    assert!(uuid::Uuid::parse_str(&ours).is_ok(), "{ours}");
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    // (The server's own first event, its token signing key, is not the
    // request's.)
    let events: Vec<_> = store
        .read_all(0, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.stream_id != event_schemas::oauth::SIGNING_KEYS_STREAM)
        .collect();
    assert_eq!(events.len(), 2);
    for e in events {
        let meta = e.parsed_metadata().unwrap();
        assert_eq!(meta.request_id.as_deref(), Some(ours.as_str()));
        assert_eq!(meta.client_request_id.as_deref(), Some("req-abc-123"));
        assert_eq!(meta.actor.kind, event_schemas::ActorKind::User);
    }
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_refused_with_429_whether_or_not_the_email_exists() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    s.user("target@example.com").await;
    for email in ["target@example.com", "ghost@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let r = s
                .post(
                    "/v1/sessions",
                    json!({"email": email, "password": "guess guess guess"}),
                )
                .await;
            statuses.push(r.status().as_u16());
            if r.status() == 429 {
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry > 0 && retry <= 900, "{retry}");
                assert_problem(r, 429, "too-many-requests").await;
            }
        }
        assert_eq!(statuses, vec![401, 401, 401, 401, 401, 429], "{email}");
    }
    // Even the right password waits out the lock.
    let r = s
        .post(
            "/v1/sessions",
            json!({"email": "target@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), 429);
    // Other accounts are unaffected.
    s.user("bystander@example.com").await;
}

#[tokio::test]
async fn parallel_wrong_passwords_for_one_email_are_checked_at_most_the_allowed_number_of_times() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    s.user("parallel@example.com").await;
    let guesses = (0..30).map(|_| {
        s.post(
            "/v1/sessions",
            json!({"email": "parallel@example.com", "password": "guess guess guess"}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|&&c| c == 401).count();
    let refused = statuses.iter().filter(|&&c| c == 429).count();
    assert_eq!(checked + refused, 30, "only 401 or 429: {statuses:?}");
    assert!(
        checked <= api::accounts::throttle::REFUSE_AFTER,
        "{checked} passwords were checked in parallel; the limit is {}",
        api::accounts::throttle::REFUSE_AFTER
    );
    // The window has not passed: the right password is still refused.
    let r = s
        .post(
            "/v1/sessions",
            json!({"email": "parallel@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), 429);
}
