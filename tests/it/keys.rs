//! API keys over HTTP: issue, the key table, rotation with overlap,
//! revocation, expiry, scopes, app states and role rules, each verdict
//! asked of `POST /v1/keys/verify`.

use std::time::Duration;

use gatehouse_tests::fresh_db;
use gatehouse_tests::keys::{until_verdict, verdict, verify, KeyedApp};
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_issued_key_verifies_with_its_apps_scopes_and_shows_in_the_key_table() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "acme").await;
    let (status, key, at) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "CI", "mode": "test", "type": "secret"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let plaintext = key["key"].as_str().unwrap();
    assert!(plaintext.starts_with("gh_test_sk_"), "{plaintext}");
    assert!(plaintext.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(key["status"], "active");
    assert_eq!(key["warnings"], json!([]));
    assert!(key["created_by"].as_str().is_some_and(|s| !s.is_empty()));

    let v = verify(&s, plaintext, Some("pay.write")).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        (v["key_id"].clone(), v["app_id"].as_str()),
        (key["id"].clone(), Some(k.app.as_str()))
    );
    assert_eq!(
        (v["org_id"].as_str(), v["mode"].as_str()),
        (Some(k.org.as_str()), Some("test"))
    );
    assert_eq!(v["scopes"], json!(["pay.read", "pay.write"]));
    assert!(v["remaining"].as_u64().is_some_and(|r| r < 250_000), "{v}");
    assert_eq!(
        verify(&s, plaintext, Some("admin")).await["reason"],
        "scope_denied"
    );

    let (status, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/keys", k.app),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    let row = &list["items"][0];
    let mut fields: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "created_by",
            "expires_at",
            "id",
            "last_used_at",
            "mode",
            "name",
            "prefix",
            "scopes",
            "status",
            "type",
            "usage_count"
        ],
        "exactly the key table"
    );
    assert_eq!(
        (row["name"].as_str(), row["status"].as_str()),
        (Some("CI"), Some("active"))
    );
    let (status, one, _) = s
        .call(
            Method::GET,
            &format!("/v1/keys/{}", key["id"].as_str().unwrap()),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!((status, &one["prefix"]), (200, &key["prefix"]));
    assert!(one.get("key").is_none(), "material is never read back");
}

#[tokio::test]
async fn restricted_keys_carry_only_approved_scopes_and_names_get_warnings() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "scopes").await;
    let (status, p, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "r", "mode": "test", "type": "restricted",
                                    "scopes": ["pay.read", "admin"]}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["pointer"].as_str()),
        (422, Some("/scopes/1")),
        "{p}"
    );
    let (status, key, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "Ada Lovelace", "mode": "test", "type": "restricted",
                                    "scopes": ["pay.read"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["warnings"], json!(["name_looks_like_person_name"]));
    let plaintext = key["key"].as_str().unwrap();
    assert!(plaintext.starts_with("gh_test_rk_"));
    assert_eq!(verify(&s, plaintext, Some("pay.read")).await["valid"], true);
    assert_eq!(
        verify(&s, plaintext, Some("pay.write")).await["reason"],
        "scope_denied"
    );
}

#[tokio::test]
async fn a_rotation_overlaps_until_its_grace_ends_and_a_scheduled_one_until_its_instant() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "rotate").await;
    let (old_id, old, at) = k.test_key(&s).await;
    let (status, new, at) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{old_id}/rotate"),
            &k.owner,
            Some(json!({"grace_period_secs": 2})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{new}");
    assert_eq!(
        (new["rotated_from"].as_str(), new["name"].as_str()),
        (Some(old_id.as_str()), Some("CI"))
    );
    let new_key = new["key"].as_str().unwrap().to_owned();
    assert_eq!(verdict(&s, &old).await, "valid", "the old key overlaps");
    assert_eq!(verdict(&s, &new_key).await, "valid");
    let (_, row, _) = s
        .call(
            Method::GET,
            &format!("/v1/keys/{old_id}"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(row["status"], "expiring");
    let (status, again, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{old_id}/rotate"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!((status, again["code"].as_str()), (409, Some("key-rotated")));
    let stops =
        chrono::DateTime::parse_from_rfc3339(new["previous_key_stops_at"].as_str().unwrap())
            .unwrap();
    tokio::time::sleep_until(
        tokio::time::Instant::now() + until(stops) - Duration::from_millis(300),
    )
    .await;
    assert_eq!(verdict(&s, &old).await, "valid", "until the grace ends");
    tokio::time::sleep(until(stops) + Duration::from_millis(50)).await;
    assert_eq!(verdict(&s, &old).await, "expired", "then no more");
    assert_eq!(verdict(&s, &new_key).await, "valid");

    // Scheduled for an instant; and no overlap at all.
    let at_instant = chrono::Utc::now() + chrono::Duration::seconds(2);
    let new_id = new["id"].as_str().unwrap();
    let (status, third, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{new_id}/rotate"),
            &k.owner,
            Some(json!({"at": at_instant.to_rfc3339()})),
            0,
        )
        .await;
    assert_eq!(status, 201, "{third}");
    assert_eq!(
        verdict(&s, &new_key).await,
        "valid",
        "until the scheduled instant"
    );
    tokio::time::sleep(until(at_instant.into()) + Duration::from_millis(50)).await;
    assert_eq!(verdict(&s, &new_key).await, "expired");
    let third_id = third["id"].as_str().unwrap();
    let (status, fourth, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{third_id}/rotate"),
            &k.owner,
            Some(json!({"grace_period_secs": 0})),
            0,
        )
        .await;
    assert_eq!(status, 201, "{fourth}");
    assert_eq!(
        verdict(&s, third["key"].as_str().unwrap()).await,
        "expired",
        "0: stops now"
    );
    assert_eq!(verdict(&s, fourth["key"].as_str().unwrap()).await, "valid");
}

fn until(t: chrono::DateTime<chrono::FixedOffset>) -> Duration {
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_key_expires_at_its_instant_to_the_second() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "expiry").await;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(2);
    let (status, key, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "short", "mode": "test", "type": "secret",
                                    "expires_at": expires.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let plaintext = key["key"].as_str().unwrap();
    tokio::time::sleep(until(expires.into()).saturating_sub(Duration::from_millis(500))).await;
    assert_eq!(
        verdict(&s, plaintext).await,
        "valid",
        "half a second before"
    );
    tokio::time::sleep(until(expires.into()) + Duration::from_millis(20)).await;
    assert_eq!(verdict(&s, plaintext).await, "expired", "just after");
    let (status, p, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "past", "mode": "test", "type": "secret",
                                    "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["pointer"].as_str()),
        (422, Some("/expires_at"))
    );
}

#[tokio::test]
async fn revoke_is_irreversible_and_app_states_decide_the_verdict() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "states").await;
    let (id, key, at) = k.test_key(&s).await;
    let (status, revoked, at) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{id}/revoke"),
            &k.owner,
            Some(json!({"reason": "leaked in a gist"})),
            at,
        )
        .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    until_verdict(&s, &key, "revoked").await;
    let (status, p, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{id}/revoke"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("key-revoked")));

    let (_, key, at) = k.test_key(&s).await;
    let app = &k.app;
    let reason = json!({"reason": "abuse"});
    let (status, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{app}/suspend"),
            &k.staff,
            Some(reason.clone()),
            at,
        )
        .await;
    assert_eq!(status, 200);
    until_verdict(&s, &key, "app_suspended").await;
    let (status, p, _) = k
        .issue(
            &s,
            &k.owner,
            json!({"name": "x", "mode": "test", "type": "secret"}),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("app-suspended")),
        "{p}"
    );
    let (status, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{app}/reinstate"),
            &k.staff,
            Some(reason),
            at,
        )
        .await;
    assert_eq!(status, 200);
    until_verdict(&s, &key, "valid").await;
    let (status, _, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/apps/{app}"),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 204);
    until_verdict(&s, &key, "app_deleted").await;
}

#[tokio::test]
async fn keys_of_a_pending_app_wait_for_its_approval() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "pending").await;
    let body = json!({"name": "Manual", "scopes": ["m.read"], "approval": {"mode": "manual"}});
    let (_, product, _) = s
        .call(Method::POST, "/v1/staff/products", &staff, Some(body), 0)
        .await;
    let (_, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(json!({"name": "P", "slug": "p-app"})),
            at,
        )
        .await;
    let app = app["id"].as_str().unwrap();
    let (status, access, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/products"),
            &owner,
            Some(json!({"product_id": product["id"], "mode": "test"})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{access}");
    let (status, key, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/keys"),
            &owner,
            Some(json!({"name": "early", "mode": "test", "type": "secret"})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let plaintext = key["key"].as_str().unwrap();
    until_verdict(&s, plaintext, "app_pending").await;
    let request = access["request_id"]
        .as_str()
        .or(access["id"].as_str())
        .unwrap();
    let (status, decided, _) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{app}/access/{request}/approve"),
            &staff,
            Some(json!({})),
            at,
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    until_verdict(&s, plaintext, "valid").await;
}

#[tokio::test]
async fn roles_decide_who_issues_which_keys_and_outsiders_learn_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "roles").await;
    let (_, dev, _) = s.user("dev@example.com").await;
    let (_, auditor, _) = s.user("audit@example.com").await;
    let (_, outsider, _) = s.user("out@example.com").await;
    s.join(&k.owner, &k.org, "dev@example.com", "developer", &dev)
        .await;
    let at = s
        .join(
            &k.owner,
            &k.org,
            "audit@example.com",
            "compliance",
            &auditor,
        )
        .await;
    let test = json!({"name": "t", "mode": "test", "type": "secret"});
    let live = json!({"name": "l", "mode": "live", "type": "secret"});
    let (status, dev_key, _) = k.issue(&s, &dev, test.clone()).await;
    assert_eq!(status, 201, "developers issue test keys: {dev_key}");
    let (status, p, _) = k.issue(&s, &dev, live.clone()).await;
    assert_eq!(
        (status, p["permission"].as_str()),
        (403, Some("credentials.live.manage"))
    );
    let (status, p, _) = k.issue(&s, &k.owner, live.clone()).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("not-in-production")),
        "{p}"
    );
    let (status, p, _) = k.issue(&s, &auditor, test.clone()).await;
    assert_eq!(
        (status, p["permission"].as_str()),
        (403, Some("credentials.test.manage"))
    );
    let (status, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/keys", k.app),
            &auditor,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "compliance reads metadata");
    assert!(
        !list.to_string().contains(dev_key["key"].as_str().unwrap()),
        "never material"
    );
    let key_id = dev_key["id"].as_str().unwrap();
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{key_id}/revoke"),
            &auditor,
            None,
            at,
        )
        .await;
    assert_eq!(status, 403, "compliance changes nothing");
    for path in [
        format!("/v1/keys/{key_id}"),
        format!("/v1/apps/{}/keys", k.app),
    ] {
        let (status, _, _) = s.call(Method::GET, &path, &outsider, None, at).await;
        assert_eq!(status, 404, "{path} to an outsider");
    }
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{key_id}/revoke"),
            &outsider,
            None,
            at,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn imported_keys_keep_working_by_their_hash() {
    use sha2::Digest;
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let k = KeyedApp::new(&s, &db, "import").await;
    let legacy = "sk_test_51HxLegacyPlatformKey0000000000";
    let hash = hex::encode(sha2::Sha256::digest(legacy.as_bytes()));
    let body = json!({"keys": [{"hash": hash, "prefix": "sk_test_51Hx", "name": "legacy",
                                "mode": "test", "type": "restricted", "scopes": ["pay.read"]}]});
    let path = format!("/v1/apps/{}/keys/import", k.app);
    let (status, imported, at) = s
        .call(Method::POST, &path, &k.owner, Some(body.clone()), k.at)
        .await;
    assert_eq!(status, 201, "{imported}");
    assert!(
        !imported.to_string().contains(&hash),
        "the hash is not answered back"
    );
    until_verdict(&s, legacy, "valid").await;
    assert_eq!(
        verify(&s, legacy, Some("pay.write")).await["reason"],
        "scope_denied"
    );
    assert_eq!(verdict(&s, "sk_test_51HxSomethingElse").await, "unknown");
    let (status, p, _) = s.call(Method::POST, &path, &k.owner, Some(body), at).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("key-hash-taken")),
        "{p}"
    );
    let bad = json!({"keys": [{"hash": "abc", "prefix": "sk_x", "name": "n", "mode": "test", "type": "secret"}]});
    let (status, p, _) = s.call(Method::POST, &path, &k.owner, Some(bad), at).await;
    assert_eq!(
        (status, p["errors"][0]["pointer"].as_str()),
        (422, Some("/keys/0/hash"))
    );
    let (_, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{}/keys", k.app),
            &k.owner,
            None,
            at,
        )
        .await;
    assert_eq!(list["items"][0]["prefix"], "sk_test_51Hx");
}

#[tokio::test]
async fn in_the_sandbox_the_lane_moves_from_the_first_key_to_usage_to_production() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        gatehouse_tests::server::Options {
            usage_flush_secs: 1,
            ..Default::default()
        },
    )
    .await;
    let k = KeyedApp::new(&s, &db, "lane").await;
    // Until the owner proves their address, that is their next step.
    s.verify_email("owner-lane@example.com").await;
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/sandbox-access", k.org),
            &k.owner,
            None,
            k.at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, env, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/sandbox-access/grant", k.org),
            &k.staff,
            Some(json!({})),
            0,
        )
        .await;
    assert_eq!(
        (status, env["next_step"].as_str()),
        (200, Some("issue_first_key")),
        "{env}"
    );
    let step = |at: u64| {
        let s = &s;
        let path = format!("/v1/orgs/{}/onboarding", k.org);
        let owner = k.owner.clone();
        async move { s.call(Method::GET, &path, &owner, None, at).await.1["next_step"].clone() }
    };
    assert_eq!(step(at).await, "issue_first_key");
    let (_, key, at) = k.test_key(&s).await;
    assert_eq!(step(at).await, "review_usage");
    until_verdict(&s, &key, "valid").await;
    let started = std::time::Instant::now();
    while step(0).await != "connect_webhook" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "usage never moved the lane"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, me, _) = s.call(Method::GET, "/v1/me", &k.owner, None, 0).await;
    assert_eq!(me["access"]["next_step"], "connect_webhook");
    let body = json!({"url": "http://127.0.0.1:9/hooks", "mode": "test", "event_types": ["*"]});
    let (status, e, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{}/webhooks", k.app),
            &k.owner,
            Some(body),
            0,
        )
        .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(step(at).await, "request_production");
}
