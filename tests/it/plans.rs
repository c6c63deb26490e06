//! Plans and the 402 paywall over HTTP.

use std::time::Duration;

use gatehouse_tests::server::{position_of, TestServer};
use gatehouse_tests::{fresh_db, make_staff};
use serde_json::{json, Value};

fn plan(modules: &[&str], state: &str) -> Value {
    json!({
        "plan": "pro",
        "modules": modules,
        "monthly_call_limit": 250000,
        "subscription_state": state,
        "billing_window_start": "2026-11-01T00:00:00Z",
        "billing_window_end": "2026-12-01T00:00:00Z",
    })
}

#[tokio::test]
async fn the_developers_workspace_is_locked_without_the_platform_api_module() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, staff, _) = s.verified_user("ops@example.com").await;
    make_staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("payer@example.com").await;
    let r = s
        .http
        .post(s.url("/v1/orgs"))
        .bearer_auth(&owner)
        .json(&json!({"slug": "pay-co", "name": "Pay"}))
        .send()
        .await
        .unwrap();
    let position = position_of(&r);
    let org = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = s
        .get_at(&format!("/v1/orgs/{org}/overview"), &owner, position)
        .await;
    assert_eq!(r.status(), 402);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/upgrade-required"
    );
    assert_eq!(body["module"], "platform.api");

    let put = |token: String, body: Value| {
        let s = &s;
        let org = org.clone();
        async move {
            s.http
                .put(s.url(&format!("/v1/orgs/{org}/plan")))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = put(owner.clone(), plan(&["platform.api"], "active")).await;
    assert_eq!(r.status(), 403, "only staff set plans");
    let mut accepted = None;
    for _ in 0..200 {
        let r = put(staff.clone(), plan(&["platform.api", "billing"], "active")).await;
        if r.status() == 200 {
            accepted = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = accepted.expect("staff set the plan");
    let position = position_of(&r);
    let overview: Value = s
        .get_at(&format!("/v1/orgs/{org}/overview"), &owner, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overview["paywall"], "unlocked");
    assert_eq!(overview["plan"]["plan"], "pro");
    assert_eq!(overview["monthly_call_limit"], 250000);

    let r = put(staff.clone(), plan(&["platform.api"], "canceled")).await;
    let position = position_of(&r);
    let r = s
        .get_at(&format!("/v1/orgs/{org}/overview"), &owner, position)
        .await;
    assert_eq!(r.status(), 402, "a canceled subscription locks it again");

    let before = db.log_stats().await;
    let r = put(staff.clone(), plan(&["Bad Module"], "someday")).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, vec!["/modules/0", "/subscription_state"]);
    assert_eq!(
        db.log_stats().await,
        before,
        "a refused plan appends nothing"
    );
}
