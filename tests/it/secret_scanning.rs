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

#[tokio::test]
async fn a_signed_report_revokes_a_leaked_test_key_and_a_bad_signature_changes_nothing() {
    let github = SigningKey::random(&mut rand::rngs::OsRng);
    let der = github.verifying_key().to_public_key_der().unwrap();
    let options = Options {
        secret_scanning_keys: vec![format!("gh-key-1={}", B64.encode(der.as_bytes()))],
        ..Options::default()
    };
    let db = fresh_db().await;
    let s = TestServer::start_with(&db, options).await;
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
