//! OAuth client credentials over HTTP: a client's secret shown once, the
//! token endpoint (form, JSON, HTTP Basic; RFC 6749 §5.2 errors; a rate
//! limit), tokens checked by an independent JWT library against the JWKS,
//! verified by the gateway's call until they expire or their client is
//! revoked, secret rotation with an overlap, signing key rotation.

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::{verify, KeyedApp};
use gatehouse_tests::server::{Options, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

async fn token_form(s: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r = s
        .http
        .post(s.url("/v1/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn client(s: &TestServer, k: &KeyedApp, body: Value) -> (String, String) {
    let (status, c, _) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/oauth-clients", k.app),
            &k.owner,
            Some(body),
            k.at,
        )
        .await;
    assert_eq!(status, 201, "{c}");
    (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn token(s: &TestServer, id: &str, secret: &str) -> String {
    let (status, t) = token_form(
        s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

/// The token's claims, checked by `jsonwebtoken` with the published key.
async fn decode(s: &TestServer, token: &str) -> Value {
    let jwks: Value = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("published");
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["platform"]);
    validation.set_issuer(&["gatehouse"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn a_client_gets_tokens_that_verify_until_they_expire_or_it_is_revoked() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            oauth_token_ttl_secs: 2,
            ..Options::default()
        },
    )
    .await;
    let k = KeyedApp::new(&s, &db, "oauth").await;
    let (id, secret) = client(
        &s,
        &k,
        json!({"name": "backend", "mode": "test", "scopes": ["pay.read"]}),
    )
    .await;
    assert!(secret.starts_with("gh_cs_"), "{secret}");
    let (_, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/oauth-clients", k.app),
            &k.owner,
            None,
            0,
        )
        .await;
    assert!(
        !list.to_string().contains(&secret),
        "the secret is shown once"
    );

    let jwt = token(&s, &id, &secret).await;
    let claims = decode(&s, &jwt).await;
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert_eq!(
        (claims["app_id"].as_str(), claims["org_id"].as_str()),
        (Some(k.app.as_str()), Some(k.org.as_str()))
    );
    assert_eq!(
        (claims["scope"].as_str(), claims["mode"].as_str()),
        (Some("pay.read"), Some("test"))
    );
    for claim in ["exp", "iat", "jti"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));

    // The gateway's call accepts it, with the client's facts.
    let mut v = Value::Null;
    for _ in 0..200 {
        v = verify(&s, &jwt, Some("pay.read")).await;
        if v["valid"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        (v["key_id"].as_str(), v["scopes"].clone()),
        (Some(id.as_str()), json!(["pay.read"]))
    );
    assert_eq!(
        verify(&s, &jwt, Some("pay.write")).await["reason"],
        "scope_denied"
    );
    let tampered = format!("{}x", &jwt[..jwt.len() - 1]);
    assert_eq!(verify(&s, &tampered, None).await["reason"], "unknown");

    // Expiry, to the second.
    let exp = claims["exp"].as_i64().unwrap();
    let wait = exp * 1000 - chrono::Utc::now().timestamp_millis() + 20;
    tokio::time::sleep(std::time::Duration::from_millis(wait.max(0) as u64)).await;
    assert_eq!(verify(&s, &jwt, None).await["reason"], "expired");

    // Revoked: tokens stop verifying and no new one is issued.
    let fresh = token(&s, &id, &secret).await;
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/oauth-clients/{id}/revoke"),
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 200);
    let mut reason = Value::Null;
    for _ in 0..200 {
        reason = verify(&s, &fresh, None).await["reason"].clone();
        if reason == "revoked" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(reason, "revoked");
    let (status, e) = token_form(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn the_token_endpoint_speaks_rfc_6749_and_secrets_rotate_with_an_overlap() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "tokens").await;
    let (id, secret) = client(&s, &k, json!({"name": "backend", "mode": "test"})).await;
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Form, u16, &str)> = vec![
        (
            vec![("client_id", &id), ("client_secret", &secret)],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nope"),
                ("client_secret", &secret),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "admin"),
            ],
            400,
            "invalid_scope",
        ),
    ];
    for (form, status, error) in cases {
        let (got, e) = token_form(&s, &form).await;
        assert_eq!(
            (got, e["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {e}"
        );
        assert!(e["error_description"].is_string());
    }
    // HTTP Basic and JSON bodies work too; all scopes by default.
    let r = s
        .http
        .post(s.url("/v1/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        (t["token_type"].as_str(), t["scope"].as_str()),
        (Some("Bearer"), Some("pay.read pay.write"))
    );
    let r = s
        .http
        .post(s.url("/v1/oauth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (status, rotated, _) = s
        .call(
            Method::POST,
            &format!("/v1/oauth-clients/{id}/rotate-secret"),
            &k.owner,
            Some(json!({"grace_period_secs": 60})),
            0,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap();
    token(&s, &id, &secret).await;
    token(&s, &id, new_secret).await;
    let (status, rotated, _) = s
        .call(
            Method::POST,
            &format!("/v1/oauth-clients/{id}/rotate-secret"),
            &k.owner,
            Some(json!({"grace_period_secs": 0})),
            0,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = token_form(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", new_secret),
        ],
    )
    .await;
    assert_eq!(status, 401, "no overlap: the previous secret stops at once");
    let newest = rotated["client_secret"].as_str().unwrap().to_owned();

    // The rate limit: 10 a second per client on a node.
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", newest.as_str()),
        ];
        statuses.push(token_form(&s, &form).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn a_signing_key_rotation_keeps_the_previous_key_published_for_its_tokens() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "jwks").await;
    let (id, secret) = client(&s, &k, json!({"name": "backend", "mode": "test"})).await;
    let before = token(&s, &id, &secret).await;
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/staff/oauth/signing-keys/rotate",
            &k.owner,
            None,
            0,
        )
        .await;
    assert_eq!(status, 403, "staff only");
    let (status, rotated, _) = s
        .call(
            Method::POST,
            "/v1/staff/oauth/signing-keys/rotate",
            &k.staff,
            None,
            0,
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let jwks: Value = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [old_kid.as_str(), rotated["kid"].as_str().unwrap()]);
    let after = token(&s, &id, &secret).await;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        rotated["kid"].as_str()
    );
    decode(&s, &before).await;
    decode(&s, &after).await;
    let mut both = (Value::Null, Value::Null);
    for _ in 0..200 {
        both = (
            verify(&s, &before, None).await["valid"].clone(),
            verify(&s, &after, None).await["valid"].clone(),
        );
        if both == (json!(true), json!(true)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        both,
        (json!(true), json!(true)),
        "old and new tokens both verify during the overlap"
    );
}

#[tokio::test]
async fn a_client_id_alone_cannot_exhaust_a_clients_token_budget() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "budget").await;
    let (id, secret) = client(&s, &k, json!({"name": "backend", "mode": "test"})).await;
    // Someone who knows only the client id (it is not a secret) hammers
    // the endpoint with wrong secrets.
    let wrong = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", "not the secret"),
    ];
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(token_form(&s, &wrong).await.0);
    }
    assert!(statuses.iter().all(|&c| c == 401), "{statuses:?}");
    // The client itself still gets its tokens at once.
    let right = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let (status, body) = token_form(&s, &right).await;
    assert_eq!(status, 200, "{body}");
}

/// A signing key is random, not derived from the index key (which
/// outlives every KEK rotation, so whoever once held the first KEK could
/// mint tokens forever); and a deployment whose newest key has no stored
/// seed (one made before seeds were stored) rotates to a random one at
/// start, keeping the old one published for its tokens.
#[tokio::test]
async fn signing_keys_are_random_and_a_derived_one_is_rotated_away_at_start() {
    use base64::Engine;
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let jwks = |s: &TestServer| {
        let url = s.url("/.well-known/jwks.json");
        let http = s.http.clone();
        async move {
            let keys: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            keys["keys"].as_array().unwrap().clone()
        }
    };
    let first = jwks(&s).await;
    assert_eq!(first.len(), 1);
    let kid = first[0]["kid"].as_str().unwrap().to_owned();
    let kek: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(gatehouse_tests::server::TEST_KEK)
        .unwrap()
        .try_into()
        .unwrap();
    let derived = ed25519_dalek::SigningKey::from_bytes(
        &api::vault::Vault::new(kek).fingerprint("token-signing-key", &[kid.as_bytes()]),
    );
    let derived_x =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(derived.verifying_key().as_bytes());
    assert_ne!(first[0]["x"], derived_x.as_str(), "the key is not derived");
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM token_signing_keys WHERE kid = $1",
            &[&kid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "its seed is stored, sealed");
    s.stop().await;

    // As if the key were one of the derived keys of earlier versions.
    db.client()
        .await
        .execute("DELETE FROM token_signing_keys", &[])
        .await
        .unwrap();
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "derived").await;
    let (id, secret) = client(&s, &k, json!({"name": "backend", "mode": "test"})).await;
    let keys = jwks(&s).await;
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(kids[0], kid, "the old key stays published for its tokens");
    let token = token(&s, &id, &secret).await;
    let signed_with = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    assert_eq!(signed_with, kids[1], "new tokens use the new, random key");
    decode(&s, &token).await;
}
