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
    secrets.push(owner.trim_start_matches("ghs_").to_owned());
    secrets.push("correct horse battery".to_owned());
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret ({}...) is in the server's trace log",
            &secret[..6]
        );
    }
    assert!(log.lines().count() > 100, "the log is at trace level");
}
