//! `gatehouse admin rotate-kek`: after a rotation, a server holding only
//! the new key-encryption key still finds accounts by email, opens
//! personal data, signs webhooks with the endpoints' same secrets, and
//! signs tokens with the same signing key.

use std::time::Duration;

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::{Options, TestServer, TEST_KEK};
use gatehouse_tests::webhooks::{verify, Receiver};
use reqwest::Method;
use serde_json::json;

async fn publish(s: &TestServer, k: &KeyedApp) {
    k.publish(s, json!({"type": "order.placed", "payload": {}}))
        .await;
}

const NEW_KEK: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

#[tokio::test]
async fn after_a_kek_rotation_the_new_key_alone_opens_accounts_personal_data_and_secrets() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "kek").await;
    let r = Receiver::start().await;
    let body = json!({"url": r.url("/"), "mode": "test", "event_types": ["order.*"]});
    let (e, _) = k.endpoint(&s, body).await;
    let (endpoint, secret) = (
        e["id"].as_str().unwrap().to_owned(),
        e["secret"].as_str().unwrap().to_owned(),
    );
    publish(&s, &k).await;
    assert_eq!(
        verify(&r.wait_for(1, Duration::from_secs(15)).await[0], &secret),
        Ok(())
    );
    // An OAuth client, whose tokens the sealed signing key signs.
    let (status, client, _) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/oauth-clients", k.app),
            &k.owner,
            Some(json!({"name": "backend", "mode": "test"})),
            k.at,
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let token_form = [
        ("grant_type", "client_credentials".to_owned()),
        (
            "client_id",
            client["client_id"].as_str().unwrap().to_owned(),
        ),
        (
            "client_secret",
            client["client_secret"].as_str().unwrap().to_owned(),
        ),
    ];
    let kid_of = |t: &serde_json::Value| {
        jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
            .unwrap()
            .kid
            .unwrap()
    };
    let t = s
        .http
        .post(s.url("/v1/oauth/token"))
        .form(&token_form)
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 200);
    let kid_before = kid_of(&t.json().await.unwrap());
    let (status, me, _) = s.call(Method::GET, "/v1/me", &k.owner, None, 0).await;
    assert_eq!(status, 200, "{me}");
    // `GET /v1/me` answers `{"user": {..., "email", "name"}, ...}`: the
    // personal data is under `user`, opened with the subject's key.
    assert_eq!(
        me["user"]["name"].as_str(),
        Some("Test User"),
        "the name opens before the rotation: {me}"
    );
    assert_eq!(
        me["user"]["email"].as_str(),
        Some("owner-kek@example.com"),
        "the email opens before the rotation: {me}"
    );
    s.stop().await;

    let dir = tempfile::tempdir().unwrap();
    api::admin::run(api::config::AdminArgs {
        db: api::config::DatabaseArgs {
            database_url: Some(db.conninfo.clone()),
            data_dir: dir.path().to_path_buf(),
            pool_size: 2,
        },
        kek: Some(TEST_KEK.into()),
        previous_kek: None,
        command: api::config::AdminCommand::RotateKek {
            new_kek: Some(NEW_KEK.into()),
        },
    })
    .await
    .unwrap();

    let s = TestServer::start_with(
        &db,
        Options {
            kek: NEW_KEK.into(),
            ..Options::default()
        },
    )
    .await;
    let r2 = s
        .post(
            "/v1/sessions",
            json!({"email": "owner-kek@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r2.status(), 201, "the email index outlived the rotation");
    // The signing key's seed was resealed: the same key signs on.
    let t = s
        .http
        .post(s.url("/v1/oauth/token"))
        .form(&token_form)
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 200, "a token is signed under the new KEK");
    assert_eq!(kid_of(&t.json().await.unwrap()), kid_before);
    let session: serde_json::Value = r2.json().await.unwrap();
    let fresh = session["token"].as_str().unwrap().to_owned();
    for token in [&k.owner, &fresh] {
        let (status, me_after, _) = s.call(Method::GET, "/v1/me", token, None, 0).await;
        assert_eq!(status, 200, "{me_after}");
        assert_eq!(
            me_after["user"]["name"].as_str(),
            Some("Test User"),
            "the name opens under the new KEK: {me_after}"
        );
        assert_eq!(
            me_after["user"]["email"].as_str(),
            Some("owner-kek@example.com"),
            "the email opens under the new KEK: {me_after}"
        );
        assert_eq!(
            me_after["user"], me["user"],
            "the account reads the same under the new KEK"
        );
    }
    publish(&s, &k).await;
    let got = r.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(
        verify(&got[1], &secret),
        Ok(()),
        "the same secret, resealed"
    );

    let client = db.client().await;
    let resealed: Vec<serde_json::Value> = client
        .query(
            "SELECT data FROM events WHERE event_type = 'webhook.secrets_resealed' AND stream_id = $1",
            &[&format!("webhook-{endpoint}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(resealed.len(), 1);
    let created: serde_json::Value = client
        .query_one(
            "SELECT data FROM events WHERE event_type = 'webhook.endpoint_created' AND stream_id = $1",
            &[&format!("webhook-{endpoint}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_ne!(resealed[0]["secret"]["kek_id"], created["secret"]["kek_id"]);
    assert_ne!(resealed[0]["secret"]["sealed"], created["secret"]["sealed"]);
}
