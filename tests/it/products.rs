//! API products and approval workflows over HTTP.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

async fn define(s: &TestServer, staff: &str, name: &str, approval: Value) -> (String, u64) {
    let body = json!({"name": name, "scopes": [format!("{}.read", name.to_lowercase())], "approval": approval});
    let (status, p, at) = s
        .call(Method::POST, "/v1/staff/products", staff, Some(body), 0)
        .await;
    assert_eq!(status, 201, "{p}");
    (p["id"].as_str().unwrap().to_owned(), at)
}

#[tokio::test]
async fn products_are_approved_by_their_mode_and_staff_decisions_reach_the_developer() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "buyer").await;
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/staff/products",
            &owner,
            Some(json!({"name": "X", "scopes": ["x"], "approval": {"mode": "auto"}})),
            at,
        )
        .await;
    assert_eq!(status, 403, "only staff define products");
    let (auto, _) = define(&s, &staff, "Payroll", json!({"mode": "auto"})).await;
    let (manual, _) = define(&s, &staff, "People", json!({"mode": "manual"})).await;
    let (conditional, at2) = define(
        &s,
        &staff,
        "Ledger",
        json!({"mode": "conditional", "test": "auto", "live": "manual"}),
    )
    .await;
    let at = at.max(at2);
    let (_, catalogue, _) = s.call(Method::GET, "/v1/products", &owner, None, at).await;
    assert_eq!(catalogue["items"].as_array().unwrap().len(), 3);
    assert_eq!(catalogue["items"][2]["approval"]["live"], "manual");

    let (_, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(json!({"name": "A", "slug": "a-app"})),
            at,
        )
        .await;
    let app = app["id"].as_str().unwrap().to_owned();
    let req = format!("/v1/apps/{app}/products");
    let ask = |product: &str, mode: &str| json!({"product_id": product, "mode": mode});

    let (status, r, at) = s
        .call(Method::POST, &req, &owner, Some(ask(&auto, "live")), at)
        .await;
    assert_eq!(
        (status, r["state"].as_str()),
        (201, Some("approved")),
        "auto: at once"
    );
    let (status, r, at) = s
        .call(
            Method::POST,
            &req,
            &owner,
            Some(ask(&conditional, "test")),
            at,
        )
        .await;
    assert_eq!(
        (status, r["state"].as_str()),
        (201, Some("approved")),
        "conditional: auto in test"
    );
    let (status, live, at) = s
        .call(
            Method::POST,
            &req,
            &owner,
            Some(ask(&conditional, "live")),
            at,
        )
        .await;
    assert_eq!(
        (status, live["state"].as_str()),
        (201, Some("pending")),
        "conditional: manual in live"
    );
    let (status, people, at) = s
        .call(Method::POST, &req, &owner, Some(ask(&manual, "test")), at)
        .await;
    assert_eq!((status, people["state"].as_str()), (201, Some("pending")));
    let (status, problem, _) = s
        .call(Method::POST, &req, &owner, Some(ask(&manual, "test")), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("product-already-requested"))
    );

    let (_, queue, _) = s
        .call(Method::GET, "/v1/staff/approvals", &staff, None, at)
        .await;
    let pending: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        pending,
        vec![live["id"].as_str().unwrap(), people["id"].as_str().unwrap()]
    );
    let (status, _, _) = s
        .call(Method::GET, "/v1/staff/approvals", &owner, None, at)
        .await;
    assert_eq!(status, 403);

    let reject = format!(
        "/v1/staff/apps/{app}/access/{}/reject",
        people["id"].as_str().unwrap()
    );
    let (status, _, _) = s
        .call(Method::POST, &reject, &staff, Some(json!({})), at)
        .await;
    assert_eq!(status, 422, "a rejection needs a reason");
    let (status, r, at) = s
        .call(
            Method::POST,
            &reject,
            &staff,
            Some(json!({"reason": "no contract on file"})),
            at,
        )
        .await;
    assert_eq!((status, r["state"].as_str()), (200, Some("rejected")));
    let approve = format!(
        "/v1/staff/apps/{app}/access/{}/approve",
        live["id"].as_str().unwrap()
    );
    let (status, r, at) = s
        .call(Method::POST, &approve, &staff, Some(json!({})), at)
        .await;
    assert_eq!((status, r["scopes"].clone()), (200, json!(["ledger.read"])));
    let (status, problem, _) = s
        .call(Method::POST, &approve, &staff, Some(json!({})), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already-decided")),
        "approve twice refused"
    );

    let (_, notes, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/notifications"),
            &owner,
            None,
            at,
        )
        .await;
    let kinds: Vec<&str> = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["product_access.approved", "product_access.rejected"],
        "newest first"
    );
    assert!(notes["items"][1]["message"]
        .as_str()
        .unwrap()
        .contains("no contract on file"));

    let (status, security, _) = s
        .call(
            Method::GET,
            &format!("/v1/apps/{app}/security"),
            &owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{security}");
    assert_eq!(
        security["approved_scopes"],
        json!({"live": ["ledger.read", "payroll.read"], "test": ["ledger.read"]}),
        "credentials carry the scopes of approved products only"
    );
    let (_, products, _) = s.call(Method::GET, &req, &owner, None, at).await;
    let states: Vec<(&str, &str)> = products["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["mode"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("live", "approved"),
            ("test", "approved"),
            ("live", "approved"),
            ("test", "rejected")
        ]
    );
}

#[tokio::test]
async fn an_app_waits_in_pending_and_bulk_approval_decides_each_request() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "bulk").await;
    let (manual, _) = define(&s, &staff, "People", json!({"mode": "manual"})).await;
    let mut items = Vec::new();
    let mut at = at;
    for i in 0..3 {
        let (_, app, p) = s
            .call(
                Method::POST,
                &format!("/v1/orgs/{org}/apps"),
                &owner,
                Some(json!({"name": "A", "slug": format!("app-{i}")})),
                at,
            )
            .await;
        let app = app["id"].as_str().unwrap().to_owned();
        let (_, r, p) = s
            .call(
                Method::POST,
                &format!("/v1/apps/{app}/products"),
                &owner,
                Some(json!({"product_id": manual, "mode": "test"})),
                p,
            )
            .await;
        at = p;
        let (_, read, _) = s
            .call(Method::GET, &format!("/v1/apps/{app}"), &owner, None, at)
            .await;
        assert_eq!(
            read["status"], "pending",
            "waiting for staff with nothing approved"
        );
        items.push(json!({"app_id": app, "request_id": r["id"]}));
    }
    items.push(json!({"app_id": items[0]["app_id"], "request_id": uuid::Uuid::nil()}));
    let (status, problem, _) = s
        .call(
            Method::POST,
            "/v1/staff/approvals/bulk",
            &staff,
            Some(json!({"decision": "maybe", "items": []})),
            at,
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, out, at) = s
        .call(
            Method::POST,
            "/v1/staff/approvals/bulk",
            &staff,
            Some(json!({"decision": "approve", "items": items})),
            at,
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let statuses: Vec<u64> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![200, 200, 200, 404],
        "each decided on its own"
    );
    let (_, apps, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            None,
            at,
        )
        .await;
    assert!(apps["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "active"));
    let (_, queue, _) = s
        .call(Method::GET, "/v1/staff/approvals", &staff, None, at)
        .await;
    assert_eq!(queue["items"], json!([]));
}
