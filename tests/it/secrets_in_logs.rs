//! Secrets never reach the server's log, at any level: the server runs as
//! a child process with `RUST_LOG=trace`, every secret-bearing route is
//! called, and the captured output is searched for each secret and for its
//! random part alone. A new secret-bearing route adds its call here.

use gatehouse_tests::fresh_db;
use gatehouse_tests::process::ServerProcess;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_tokens_session_tokens_and_passwords_never_appear_in_a_trace_log() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(
        env!("CARGO_BIN_EXE_gatehouse-it-server"),
        &db.conninfo,
        dir.path(),
        "trace",
    )
    .await;
    let s = server.client();
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "maker").await;
    let (status, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(json!({"name": "Payroll Sync", "slug": "payroll"})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let versions = format!("/v1/apps/{}/versions", app["id"].as_str().unwrap());
    let manifest = json!({"name": "Payroll Sync", "scopes": ["payroll.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &versions,
            &owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            at,
        )
        .await;
    let v_path = format!("{versions}/{}", v["id"].as_str().unwrap());
    let (status, _, at) = s
        .call(Method::POST, &format!("{v_path}/publish"), &owner, None, at)
        .await;
    assert_eq!(status, 200);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (status, link, _) = s
            .call(
                Method::POST,
                &format!("{v_path}/install-links"),
                &owner,
                Some(json!({"single_use": false})),
                at,
            )
            .await;
        assert_eq!(status, 201, "{link}");
        tokens.push(link["token"].as_str().unwrap().to_owned());
    }
    // One install with the token in the path, one with it in the body.
    let (status, installed, _) = s
        .call(
            Method::POST,
            &format!("/v1/install/{}", tokens[0]),
            &owner,
            Some(json!({"workspace_id": org})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{installed}");
    let (status, problem, _) = s
        .call(
            Method::POST,
            "/v1/install",
            &owner,
            Some(json!({"token": tokens[1], "workspace_id": org})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already-installed")),
        "{problem}"
    );

    // Mailed tokens: a verification (the staff member's), an invitation,
    // a password reset.
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/invitations"),
            &owner,
            Some(json!({"email": "invitee@example.com", "role": "developer"})),
            at,
        )
        .await;
    assert_eq!(status, 201);
    s.post("/v1/password-resets", json!({"email": "owner@example.com"}))
        .await;
    s.mail.next("invitee@example.com", "You are invited").await;
    s.mail.next("owner@example.com", "Reset your").await;
    let mailed: Vec<String> = s.mail.all().iter().flat_map(|m| m.tokens()).collect();
    assert!(mailed.len() >= 3, "{mailed:?}");

    let log = server.stop();
    assert!(
        log.contains("/v1/install/[redacted]"),
        "the install request is logged, redacted"
    );
    let mut secrets: Vec<String> = Vec::new();
    for t in &tokens {
        secrets.push(t.clone());
        // The random part alone: after `gil_<id>_` (it may hold `_` too).
        let random = t.strip_prefix("gil_").unwrap().split_once('_').unwrap().1;
        assert!(random.len() >= 32);
        secrets.push(random.to_owned());
    }
    secrets.push(owner.clone());
    secrets.push(
        owner
            .trim_start_matches(api::routes::accounts::sessions::SESSION_PREFIX)
            .to_owned(),
    );
    secrets.push("correct horse battery".to_owned());
    secrets.extend(mailed);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret ({}...) is in the server's trace log",
            &secret[..6]
        );
    }
    assert!(log.lines().count() > 100, "the log is at trace level");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_client_secrets_are_answered_once_and_stored_or_logged_nowhere() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(
        env!("CARGO_BIN_EXE_gatehouse-it-server"),
        &db.conninfo,
        dir.path(),
        "trace",
    )
    .await;
    let s = server.client();
    let k = gatehouse_tests::keys::KeyedApp::new(&s, &db, "secret").await;
    // Issued with an Idempotency-Key, so the stored answer is searched too.
    let issue = || {
        s.http
            .post(s.url(&format!("/v1/apps/{}/keys", k.app)))
            .bearer_auth(&k.owner)
            .header("idempotency-key", "issue-once")
            .json(&json!({"name": "CI", "mode": "test", "type": "secret"}))
            .send()
    };
    let first: serde_json::Value = issue().await.unwrap().json().await.unwrap();
    let replayed = issue().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let replayed: serde_json::Value = replayed.json().await.unwrap();
    assert_eq!(
        first["key"], replayed["key"],
        "a retry answers the same key"
    );
    let key = first["key"].as_str().unwrap().to_owned();
    let id = first["id"].as_str().unwrap();
    let (status, rotated, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{id}/rotate"),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 201);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    for k in [&key, &new_key] {
        gatehouse_tests::keys::until_verdict(&s, k, "valid").await;
    }
    // An OAuth client's secret, and a token issued with it.
    let (status, client, _) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/oauth-clients", k.app),
            &k.owner,
            Some(json!({"name": "backend", "mode": "test"})),
            0,
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let client_secret = client["client_secret"].as_str().unwrap().to_owned();
    let token = s
        .http
        .post(s.url("/v1/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("client_secret", client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    // A key pasted into a path is not logged either.
    let (status, _, _) = s
        .call(Method::GET, &format!("/v1/keys/{key}"), &k.owner, None, 0)
        .await;
    assert_eq!(status, 400);

    let log = server.stop();
    assert!(log.lines().count() > 100, "the log is at trace level");
    assert!(
        log.contains("/v1/keys/[redacted]"),
        "the pasted key's request is logged, redacted"
    );
    // The stored answer of the idempotent issue is there to be searched
    // (sealed, as BYTEA).
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM idempotency_keys WHERE key = 'issue-once' AND body IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the idempotent answer is stored");
    // Every column of every table (the log, each read model generation, the
    // idempotency store): text and JSON as text, BYTEA as its decoded bytes,
    // so a plaintext in `idempotency_keys.body` would be found.
    let mut needles = vec!["api_key.issued".to_owned()];
    for secret in [&key, &new_key, &client_secret] {
        // The whole secret, and its random part alone.
        let random = &secret["gh_test_sk_".len().min(secret.rfind('_').unwrap() + 1)..];
        for needle in [secret.as_str(), random] {
            assert!(
                !log.contains(needle),
                "a key ({needle:.12}...) is in the trace log"
            );
            needles.push(needle.to_owned());
        }
    }
    let found = gatehouse_tests::search_every_table(&db, &needles).await;
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("\"api_key.issued\" in ")),
        "the events were searched"
    );
    for needle in &needles[1..] {
        let prefix = format!("{needle:?} in ");
        // Where, without the key itself.
        let places: Vec<&str> = found
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .map(|f| f.rsplit(" in ").next().unwrap_or_default())
            .collect();
        assert!(
            places.is_empty(),
            "a key ({needle:.12}...) is stored in the database: {places:?}"
        );
    }
}
