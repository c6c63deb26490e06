//! What the key tests share: an app with an approved product, ready for
//! keys, and the gateway's verify call.

use reqwest::Method;
use serde_json::{json, Value};

use crate::server::{TestServer, GATEWAY_TOKEN};
use crate::TestDb;

/// An organisation with an app whose test-mode access to a product
/// granting `pay.read` and `pay.write` is approved.
pub struct KeyedApp {
    /// Staff token.
    pub staff: String,
    /// The owner's token.
    pub owner: String,
    /// Organisation id.
    pub org: String,
    /// App id.
    pub app: String,
    /// The position reached.
    pub at: u64,
}

impl KeyedApp {
    /// Sets one up on `s`, under `slug`.
    pub async fn new(s: &TestServer, db: &TestDb, slug: &str) -> Self {
        let staff = s.staff(db, &format!("ops-{slug}@example.com")).await;
        let (_, owner, _) = s.user(&format!("owner-{slug}@example.com")).await;
        let (org, at) = s.workspace(&owner, &staff, slug).await;
        let body = json!({"name": format!("Payments {slug}"), "scopes": ["pay.read", "pay.write"],
                          "approval": {"mode": "auto"}});
        let (status, product, at2) = s
            .call(Method::POST, "/v1/staff/products", &staff, Some(body), 0)
            .await;
        assert_eq!(status, 201, "{product}");
        let body = json!({"name": "Checkout", "slug": format!("{slug}-app")});
        let (status, app, at) = s
            .call(
                Method::POST,
                &format!("/v1/orgs/{org}/apps"),
                &owner,
                Some(body),
                at.max(at2),
            )
            .await;
        assert_eq!(status, 201, "{app}");
        let app = app["id"].as_str().unwrap().to_owned();
        let body = json!({"product_id": product["id"], "mode": "test"});
        let (status, access, at) = s
            .call(
                Method::POST,
                &format!("/v1/apps/{app}/products"),
                &owner,
                Some(body),
                at,
            )
            .await;
        assert_eq!(status, 201, "{access}");
        KeyedApp {
            staff,
            owner,
            org,
            app,
            at,
        }
    }

    /// Sets the organisation's plan to `limit` calls in a billing window
    /// that holds now (staff); returns the position.
    pub async fn set_limit(&self, s: &TestServer, limit: u64) -> u64 {
        let now = chrono::Utc::now();
        let plan = json!({
            "plan": "tiny", "modules": ["platform.api"], "monthly_call_limit": limit,
            "subscription_state": "active",
            "billing_window_start": (now - chrono::Duration::days(1)).to_rfc3339(),
            "billing_window_end": (now + chrono::Duration::days(29)).to_rfc3339(),
        });
        let path = format!("/v1/orgs/{}/plan", self.org);
        let (status, body, at) = s.call(Method::PUT, &path, &self.staff, Some(plan), 0).await;
        assert_eq!(status, 200, "{body}");
        at
    }

    /// Issues a key with `body`; returns the 201 answer and the position.
    pub async fn issue(&self, s: &TestServer, token: &str, body: Value) -> (u16, Value, u64) {
        s.call(
            Method::POST,
            &format!("/v1/apps/{}/keys", self.app),
            token,
            Some(body),
            self.at,
        )
        .await
    }

    /// Creates a webhook endpoint for the app as the owner; returns the
    /// 201 answer (with its secret) and the position.
    pub async fn endpoint(&self, s: &TestServer, body: Value) -> (Value, u64) {
        let path = format!("/v1/apps/{}/webhooks", self.app);
        let (status, e, at) = s
            .call(Method::POST, &path, &self.owner, Some(body), self.at)
            .await;
        assert_eq!(status, 201, "{e}");
        (e, at)
    }

    /// Publishes a message to the app's endpoints as the owner; returns the
    /// 202 answer.
    pub async fn publish(&self, s: &TestServer, body: Value) -> Value {
        let path = format!("/v1/apps/{}/events", self.app);
        let (status, m, _) = s
            .call(Method::POST, &path, &self.owner, Some(body), 0)
            .await;
        assert_eq!(status, 202, "{m}");
        m
    }

    /// A marker for "the notices loop raised nothing else, and completed
    /// nothing else": waits until that loop (`api::notices::run`, which
    /// raises the due notices and then completes integration
    /// verifications, a round every `notice_interval_ms`) has run a whole
    /// round that began after this call.
    ///
    /// It issues a test key expiring in three days and waits for its
    /// `api_key.expiry_approaching`, twice, the second key issued once the
    /// first notice is in the log. The round that raised the first notice
    /// read the due notices after this call; the second notice can only be
    /// raised by a later round, which starts after that first round has
    /// finished, both its parts. Whatever a round would raise, it appends
    /// before the expiry notices of the same round.
    pub async fn notices_round(&self, s: &TestServer, db: &TestDb) {
        for n in 0..2 {
            let expires = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
            let body = json!({"name": format!("notices marker {n}"), "mode": "test",
                              "type": "secret", "expires_at": expires});
            let (status, key, _) = self.issue(s, &self.owner, body).await;
            assert_eq!(status, 201, "{key}");
            let id: uuid::Uuid = key["id"].as_str().unwrap().parse().unwrap();
            let stream = event_schemas::key::expiry_notice_stream(id);
            let client = db.client().await;
            let started = std::time::Instant::now();
            loop {
                let raised: i64 = client
                    .query_one(
                        "SELECT count(*) FROM events WHERE stream_id = $1",
                        &[&stream],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if raised > 0 {
                    break;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(15),
                    "the notices loop raised no expiry notice for marker {n} in 15 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// Issues a test secret key as the owner; returns (id, plaintext, position).
    pub async fn test_key(&self, s: &TestServer) -> (String, String, u64) {
        let (status, key, at) = self
            .issue(
                s,
                &self.owner,
                json!({"name": "CI", "mode": "test", "type": "secret"}),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        (
            key["id"].as_str().unwrap().to_owned(),
            key["key"].as_str().unwrap().to_owned(),
            at,
        )
    }
}

/// `POST /v1/keys/verify` as the gateway; the verdict.
pub async fn verify(s: &TestServer, key: &str, scope: Option<&str>) -> Value {
    let mut body = json!({"key": key});
    if let Some(scope) = scope {
        body["scope"] = scope.into();
    }
    let r = s
        .http
        .post(s.url("/v1/keys/verify"))
        .bearer_auth(GATEWAY_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "verify answers 200 for a verdict");
    r.json().await.unwrap()
}

/// The reason a key does not verify, or `"valid"`.
pub async fn verdict(s: &TestServer, key: &str) -> String {
    let v = verify(s, key, None).await;
    if v["valid"] == true {
        "valid".into()
    } else {
        v["reason"].as_str().unwrap_or("?").into()
    }
}

/// Waits (up to 5 s) until `key` verifies as `expected` on `s`; the time
/// it took.
pub async fn until_verdict(s: &TestServer, key: &str, expected: &str) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        if verdict(s, key).await == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{key:.12}... never verified as {expected}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
