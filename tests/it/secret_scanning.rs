//! GitHub's secret scanning partner program over HTTP, with a key pair this
//! test generates: a signed report revokes a leaked test key, flags a live
//! one and tells the owners; a bad signature changes nothing.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::{until_verdict, verdict, KeyedApp};
use gatehouse_tests::server::{Options, TestServer};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use reqwest::Method;
use serde_json::{json, Value};

async fn send(s: &TestServer, key: &SigningKey, id: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature: Signature = key.sign(&bytes);
    let r = s
        .http
        .post(s.url("/v1/secret-scanning/github"))
        .header("content-type", "application/json")
        .header("GITHUB-PUBLIC-KEY-IDENTIFIER", id)
        .header(
            "GITHUB-PUBLIC-KEY-SIGNATURE",
            B64.encode(signature.to_der().as_bytes()),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// GitHub's signing key (made here) and a server that trusts it as
/// `gh-key-1`, over a fresh database.
async fn scanned_server() -> (SigningKey, gatehouse_tests::TestDb, TestServer) {
    let github = SigningKey::random(&mut rand::rngs::OsRng);
    let der = github.verifying_key().to_public_key_der().unwrap();
    let options = Options {
        secret_scanning_keys: vec![format!("gh-key-1={}", B64.encode(der.as_bytes()))],
        ..Options::default()
    };
    let db = fresh_db().await;
    let s = TestServer::start_with(&db, options).await;
    (github, db, s)
}

#[tokio::test]
async fn a_signed_report_revokes_a_leaked_test_key_and_a_bad_signature_changes_nothing() {
    let (github, db, s) = scanned_server().await;
    let k = KeyedApp::new(&s, &db, "leaks").await;
    let (_, key, at) = k.test_key(&s).await;
    until_verdict(&s, &key, "valid").await;
    let report = json!([
        {"token": key, "type": "gatehouse_api_key", "url": "https://github.com/octo/app/blob/main/.env", "source": "content"},
        {"token": "gh_test_sk_notreallyakey", "type": "gatehouse_api_key", "url": "https://github.com/x", "source": "content"},
    ]);

    // A forger's key, an unknown identifier, no signature: refused, nothing recorded.
    let forger = SigningKey::random(&mut rand::rngs::OsRng);
    let before = db.log_stats_but_usage().await;
    for (signer, id) in [(&forger, "gh-key-1"), (&github, "gh-key-2")] {
        let (status, p) = send(&s, signer, id, &report).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (403, Some("invalid-signature")),
            "{p}"
        );
    }
    let r = s
        .http
        .post(s.url("/v1/secret-scanning/github"))
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(db.log_stats_but_usage().await, before, "nothing appended");
    assert_eq!(verdict(&s, &key).await, "valid");

    let (status, labels) = send(&s, &github, "gh-key-1", &report).await;
    assert_eq!(status, 200, "{labels}");
    assert_eq!(labels[0]["label"], "true_positive");
    assert_eq!(labels[1]["label"], "false_positive");
    assert!(
        !labels.to_string().contains(key.as_str()),
        "the token is not echoed"
    );
    until_verdict(&s, &key, "revoked").await;
    let head = db.log_stats().await.0 as u64;
    let (status, notes, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/notifications", k.org),
            &k.owner,
            None,
            head.max(at),
        )
        .await;
    assert_eq!(status, 200, "{notes}");
    let leaked: Vec<&Value> = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "key_leaked")
        .collect();
    assert_eq!(leaked.len(), 1, "{notes}");
    assert!(leaked[0]["message"]
        .as_str()
        .unwrap()
        .contains("has been revoked"));
}

/// `POST path` with an empty JSON object as `token`; answers status, body
/// and position.
async fn post(s: &TestServer, token: &str, path: &str) -> (u16, Value, u64) {
    s.call(Method::POST, path, token, Some(json!({})), 0).await
}

/// Takes the organisation of `k` to production as staff would: sandbox
/// requested and granted, production requested and every review step
/// completed. Answers the position of the grant.
async fn production(s: &TestServer, k: &KeyedApp) -> u64 {
    let org = &k.org;
    let (status, env, _) = post(s, &k.owner, &format!("/v1/orgs/{org}/sandbox-access")).await;
    assert_eq!(status, 200, "{env}");
    let grant = format!("/v1/orgs/{org}/sandbox-access/grant");
    let (status, env, _) = post(s, &k.staff, &grant).await;
    assert_eq!(status, 200, "{env}");
    let (status, env, _) = post(s, &k.owner, &format!("/v1/orgs/{org}/production-access")).await;
    assert_eq!(status, 200, "{env}");
    let mut at = 0;
    for step in [
        "consent_review",
        "billing_setup",
        "integration_verification",
        "audit_ready",
    ] {
        let path = format!("/v1/orgs/{org}/production-access/steps/{step}/complete");
        let (status, env, position) = post(s, &k.staff, &path).await;
        assert_eq!(status, 200, "{step}: {env}");
        at = position;
    }
    let (status, lane, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/onboarding"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{lane}");
    assert_eq!(lane["production"], "granted", "{lane}");
    at
}

/// A leaked LIVE key (without `--secret-scanning-revoke-live`) is flagged,
/// not revoked: the report is answered `true_positive`, the log records the
/// leak with `revoked: false` and no revocation, the key keeps verifying,
/// and the owner is told to rotate it, in the workspace's notifications and
/// by mail.
#[tokio::test]
async fn a_leaked_live_key_is_flagged_not_revoked_and_the_owner_is_told_to_rotate_it() {
    let (github, db, s) = scanned_server().await;
    let k = KeyedApp::new(&s, &db, "leak-live").await;
    // Notices are mailed to proven addresses only.
    let owner_email = "owner-leak-live@example.com";
    s.verify_email(owner_email).await;
    let at = production(&s, &k).await;
    let (status, issued, issued_at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/keys", k.app),
            &k.owner,
            Some(json!({"name": "Production", "mode": "live", "type": "secret"})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["mode"], "live");
    let key_id = issued["id"].as_str().unwrap().to_owned();
    let key = issued["key"].as_str().unwrap().to_owned();
    until_verdict(&s, &key, "valid").await;
    // The report is matched against the key table: read it at the issue.
    let (status, read, _) = s
        .call(
            Method::GET,
            &format!("/v1/keys/{key_id}"),
            &k.owner,
            None,
            issued_at,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["mode"], "live", "{read}");

    let url = "https://github.com/octo/app/blob/main/.env.production";
    let report =
        json!([{"token": key, "type": "gatehouse_api_key", "url": url, "source": "content"}]);
    let (status, labels) = send(&s, &github, "gh-key-1", &report).await;
    assert_eq!(status, 200, "{labels}");
    assert_eq!(labels[0]["label"], "true_positive", "{labels}");

    // Flagged in the log, not revoked.
    let stream = event_schemas::key::key_stream(key_id.parse().unwrap());
    let events: Vec<(String, Value)> = db
        .client()
        .await
        .query(
            "SELECT event_type, data FROM events WHERE stream_id = $1 ORDER BY stream_version",
            &[&stream],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["api_key.issued", "api_key.leak_reported"],
        "{events:?}"
    );
    assert_eq!(events[1].1["revoked"], false, "{events:?}");
    assert_eq!(events[1].1["url"], url, "{events:?}");

    // The key still verifies once the index has read the report.
    let head = db.log_stats().await.0 as u64;
    let started = std::time::Instant::now();
    loop {
        let ready: Value = s.readiness().await;
        if ready["verification"]["position"].as_u64() >= Some(head) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{ready}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        verdict(&s, &key).await,
        "valid",
        "a live key is not revoked"
    );
    let (status, read, _) = s
        .call(
            Method::GET,
            &format!("/v1/keys/{key_id}"),
            &k.owner,
            None,
            head,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["status"], "active", "{read}");

    // The owner is told to rotate it: in the workspace...
    let notifications = format!("/v1/orgs/{}/notifications", k.org);
    let started = std::time::Instant::now();
    let leaked = loop {
        let (status, notes, _) = s
            .call(Method::GET, &notifications, &k.owner, None, head)
            .await;
        assert_eq!(status, 200, "{notes}");
        let leaked: Vec<Value> = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "key_leaked")
            .cloned()
            .collect();
        if !leaked.is_empty() {
            break leaked;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "no key_leaked notification: {notes}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(leaked.len(), 1, "{leaked:?}");
    assert_eq!(leaked[0]["app_id"], k.app.as_str());
    let message = leaked[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&key_id) && message.contains(url) && message.contains("rotate it now"),
        "{message}"
    );
    assert!(!message.contains("revoked"), "{message}");
    // ...and by mail.
    let mail = s
        .mail
        .next(owner_email, "An API key was found in public")
        .await;
    assert!(mail.subject.ends_with(": Checkout"), "{}", mail.subject);
    assert!(
        mail.text.contains(&key_id) && mail.text.contains("rotate it now"),
        "{}",
        mail.text
    );
    assert!(!mail.text.contains(&key), "the mail never carries the key");
}

/// An OAuth client's secret found in public is one of ours too: the report
/// labels it, a test client is revoked (its secret mints no token), and
/// the owners are told.
#[tokio::test]
async fn a_leaked_client_secret_revokes_a_test_client_and_tells_the_owners() {
    let (github, db, s) = scanned_server().await;
    let k = KeyedApp::new(&s, &db, "client-leak").await;
    let (status, client, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/oauth-clients", k.app),
            &k.owner,
            Some(json!({"name": "backend", "mode": "test"})),
            k.at,
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let token = |s: &TestServer| {
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", id.clone()),
            ("client_secret", secret.clone()),
        ];
        let request = s.http.post(s.url("/v1/oauth/token")).form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(token(&s).await, 200);

    // The report waits for the client in the read model it is looked up in.
    let (_, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/oauth-clients", k.app),
            &k.owner,
            None,
            at,
        )
        .await;
    let report = json!([{"token": secret, "type": "gatehouse_oauth_client_secret",
                         "url": "https://github.com/octo/app/blob/main/config.yml", "source": "content"}]);
    let (status, labels) = send(&s, &github, "gh-key-1", &report).await;
    assert_eq!(status, 200, "{labels}");
    assert_eq!(labels[0]["label"], "true_positive", "{labels}");
    assert!(!labels.to_string().contains(secret.as_str()));
    assert_eq!(token(&s).await, 401, "the leaked secret mints nothing");

    let client_stream = format!("oauth_client-{id}");
    let types: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version",
            &[&client_stream],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        types,
        [
            "oauth_client.created",
            "oauth_client.leak_reported",
            "oauth_client.revoked"
        ]
    );
    let head = db.log_stats().await.0 as u64;
    let (status, notes, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/notifications", k.org),
            &k.owner,
            None,
            head,
        )
        .await;
    assert_eq!(status, 200, "{notes}");
    let leaked: Vec<&Value> = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "client_secret_leaked")
        .collect();
    assert_eq!(leaked.len(), 1, "{notes}");
    assert!(
        leaked[0]["message"].as_str().unwrap().contains("revoked"),
        "{notes}"
    );
    assert!(!notes.to_string().contains(secret.as_str()));
}
