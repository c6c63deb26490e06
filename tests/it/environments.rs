//! The onboarding lane over HTTP: from sign-up to production granted, with
//! staff grants and review steps, and the refusals on the way.

use std::time::Duration;

use gatehouse_tests::server::TestServer;
use gatehouse_tests::{fresh_db, make_staff};
use serde_json::{json, Value};

async fn post(s: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value, u64) {
    let r = s
        .http
        .post(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let position = r
        .headers()
        .get("gatehouse-position")
        .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    (status, r.json().await.unwrap_or(Value::Null), position)
}

async fn next_step(s: &TestServer, token: &str, position: u64) -> String {
    let me: Value = s
        .get_at("/v1/me", token, position)
        .await
        .json()
        .await
        .unwrap();
    me["access"]["next_step"].as_str().unwrap().to_owned()
}

async fn wait_until_staff(s: &TestServer, token: &str) {
    for _ in 0..200 {
        if s.get("/v1/staff/queue", Some(token)).await.status() == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("staff grant not visible");
}

#[tokio::test]
async fn the_next_step_advances_through_the_whole_lane_to_production() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, staff, _) = s.verified_user("staff@example.com").await;
    make_staff(&db, "staff@example.com").await;
    wait_until_staff(&s, &staff).await;

    let (_, owner, position) = s.user("founder@example.com").await;
    assert_eq!(next_step(&s, &owner, position).await, "verify_email");
    let position = s.verify_email("founder@example.com").await;
    assert_eq!(
        next_step(&s, &owner, position).await,
        "attach_to_organization"
    );
    let (status, org, position) = post(
        &s,
        &owner,
        "/v1/orgs",
        json!({"slug": "lane-co", "name": "Lane"}),
    )
    .await;
    assert_eq!(status, 201);
    let org = org["id"].as_str().unwrap().to_owned();
    assert_eq!(
        next_step(&s, &owner, position).await,
        "accept_developer_terms"
    );

    let (status, body, _) = post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/sandbox-access"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("terms-not-accepted"))
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("accept_developer_terms"),
        "the problem names the next step"
    );

    let (_, _, position) = post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/developer-terms/accept"),
        json!({"version": "2026-01"}),
    )
    .await;
    assert_eq!(next_step(&s, &owner, position).await, "request_sandbox");
    let (status, env, position) = post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/sandbox-access"),
        json!({}),
    )
    .await;
    assert_eq!((status, env["sandbox"].as_str()), (200, Some("requested")));
    assert_eq!(next_step(&s, &owner, position).await, "await_sandbox_grant");

    let queue: Value = s
        .get_at("/v1/staff/queue", &staff, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue["items"][0]["org_id"], org.as_str());
    assert_eq!(queue["items"][0]["kind"], "sandbox");
    let (status, body, _) = post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/sandbox-access/grant"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("staff-only")),
        "members cannot grant"
    );
    let (status, env, position) = post(
        &s,
        &staff,
        &format!("/v1/orgs/{org}/sandbox-access/grant"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        env["sandbox_tenant_id"].is_string(),
        "the linked sandbox tenant"
    );
    // In the sandbox the lane asks for a first key (and usage; the keys
    // tests walk those); production may be requested at any point.
    assert_eq!(next_step(&s, &owner, position).await, "issue_first_key");

    let (status, env, position) = post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/production-access"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, env["production"].as_str()),
        (200, Some("in_review"))
    );
    assert_eq!(next_step(&s, &owner, position).await, "consent_review");
    let (status, env, rejected_at) = post(
        &s,
        &staff,
        &format!("/v1/orgs/{org}/production-access/steps/billing_setup/reject"),
        json!({"reason": "no payment method"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(env["steps"][1]["state"], "rejected");
    assert_eq!(env["steps"][1]["reason"], "no payment method");
    let lane: Value = s
        .get_at(&format!("/v1/orgs/{org}/onboarding"), &owner, rejected_at)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lane["steps"][1]["reason"], "no payment method");
    assert_eq!(lane["next_step"], "consent_review");
    let (status, _, _) = post(
        &s,
        &staff,
        &format!("/v1/orgs/{org}/production-access/steps/astrology/complete"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let mut last = 0;
    for step in [
        "consent_review",
        "billing_setup",
        "integration_verification",
        "audit_ready",
    ] {
        let (status, env, position) = post(
            &s,
            &staff,
            &format!("/v1/orgs/{org}/production-access/steps/{step}/complete"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{step}");
        last = position;
        if step != "audit_ready" {
            assert_eq!(env["production"], "in_review");
        } else {
            assert_eq!(env["production"], "granted");
        }
    }
    assert_eq!(next_step(&s, &owner, last).await, "production_granted");
    let lane: Value = s
        .get_at(&format!("/v1/orgs/{org}/onboarding"), &owner, last)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lane["next_step"], "production_granted");
    assert_eq!(lane["terms_accepted"], true);
    assert_eq!(lane["sandbox"], "granted");
    assert_eq!(lane["production"], "granted");
    let steps: Vec<(&str, &str)> = lane["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("consent_review", "completed"),
            ("billing_setup", "completed"),
            ("integration_verification", "completed"),
            ("audit_ready", "completed"),
        ]
    );
    let (_, outsider, position) = s.user("nosy@example.com").await;
    assert_eq!(
        s.get_at(&format!("/v1/orgs/{org}/onboarding"), &outsider, position)
            .await
            .status(),
        404
    );
    let promoted: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'sandbox.promoted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(promoted, 1);
    let queue: Value = s
        .get_at("/v1/staff/queue", &staff, last)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue, json!({"items": []}), "nothing left pending");
}

#[tokio::test]
async fn only_owners_and_managers_request_environments() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("own@example.com").await;
    let (_, dev, _) = s.user("dev2@example.com").await;
    let (_, org, _) = post(
        &s,
        &owner,
        "/v1/orgs",
        json!({"slug": "env-co", "name": "Env"}),
    )
    .await;
    let org = org["id"].as_str().unwrap().to_owned();
    post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/developer-terms/accept"),
        json!({"version": "2026-01"}),
    )
    .await;
    s.join(&owner, &org, "dev2@example.com", "developer", &dev)
        .await;
    let (status, body, _) = post(
        &s,
        &dev,
        &format!("/v1/orgs/{org}/sandbox-access"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["permission"].as_str()),
        (403, Some("environments.request"))
    );
    let (status, body, _) = post(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/production-access"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("sandbox-required"))
    );
}
