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

#[tokio::test]
async fn bad_input_on_version_product_and_staff_routes_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "strict").await;
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
    let manifest = json!({"name": "A", "scopes": ["a.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/versions"),
            &owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            at,
        )
        .await;
    let v_path = format!("/v1/apps/{app}/versions/{}", v["id"].as_str().unwrap());
    let (product, at2) = define(&s, &staff, "Payroll", json!({"mode": "manual"})).await;
    let at = at.max(at2);
    let nil = uuid::Uuid::nil();
    let before = db.log_stats().await;
    let o = owner.as_str();
    let st = staff.as_str();
    let cases: Vec<(&str, Method, String, Value, u16, &str)> = vec![
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/versions"),
            json!({"label": ""}),
            422,
            "/label",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/versions"),
            json!({"label": "x".repeat(33)}),
            422,
            "/label",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/versions"),
            json!({"label": "1 0"}),
            422,
            "/label",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/versions"),
            json!({}),
            422,
            "",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/versions"),
            json!({"label": "2", "manifest": {"name": "x".repeat(70_000)}}),
            422,
            "/manifest",
        ),
        (
            o,
            Method::PUT,
            format!("{v_path}/manifest"),
            json!("not an object"),
            200,
            "",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/versions/{nil}/publish"),
            Value::Null,
            404,
            "",
        ),
        (
            o,
            Method::POST,
            format!("{v_path}/install-links"),
            json!({"expires_in_hours": 0}),
            422,
            "/expires_in_hours",
        ),
        (
            o,
            Method::POST,
            format!("{v_path}/install-links"),
            json!({"single_use": "yes"}),
            422,
            "",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/products"),
            json!({"product_id": product, "mode": "prod"}),
            422,
            "/mode",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/products"),
            json!({"product_id": nil, "mode": "test"}),
            404,
            "",
        ),
        (
            o,
            Method::POST,
            format!("/v1/apps/{app}/products"),
            json!({"mode": "test"}),
            422,
            "",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/products".into(),
            json!({"name": "", "scopes": [], "approval": {"mode": "auto"}}),
            422,
            "/name",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/products".into(),
            json!({"name": "P", "scopes": ["Bad Scope"], "approval": {"mode": "auto"}}),
            422,
            "/scopes/0",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/products".into(),
            json!({"name": "P", "scopes": ["a"], "approval": {"mode": "sometimes"}}),
            422,
            "",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/products".into(),
            json!({"name": "P", "scopes": ["a"], "approval": {"mode": "conditional", "test": "auto"}}),
            422,
            "",
        ),
        (
            st,
            Method::PUT,
            format!("/v1/staff/products/{nil}"),
            json!({"name": "P", "scopes": ["a"], "approval": {"mode": "auto"}}),
            404,
            "",
        ),
        (
            st,
            Method::POST,
            format!("/v1/staff/apps/{app}/suspend"),
            json!({"reason": "   "}),
            422,
            "/reason",
        ),
        (
            st,
            Method::POST,
            format!("/v1/staff/apps/{nil}/suspend"),
            json!({"reason": "x"}),
            404,
            "",
        ),
        (
            st,
            Method::POST,
            format!("/v1/staff/apps/{app}/distribution/{nil}/approve"),
            json!({}),
            409,
            "",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/apps/suspend".into(),
            json!({"reason": "x", "inactive_days": 0}),
            422,
            "/inactive_days",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/apps/suspend".into(),
            json!({"reason": "x", "status": ["deleted"]}),
            422,
            "/status/0",
        ),
        (
            st,
            Method::POST,
            "/v1/staff/approvals/bulk".into(),
            json!({"decision": "approve", "items": []}),
            422,
            "/items",
        ),
        (
            st,
            Method::GET,
            "/v1/staff/reports/inactive-apps?days=-1".into(),
            Value::Null,
            400,
            "",
        ),
        (
            o,
            Method::POST,
            format!(
                "/v1/install/gil_{}_{}",
                app.replace('-', ""),
                "x".repeat(43)
            ),
            json!({"workspace_id": org}),
            404,
            "",
        ),
        (
            o,
            Method::POST,
            "/v1/install/whatever".into(),
            json!({"workspace_id": "nope"}),
            422,
            "",
        ),
    ];
    for (token, method, path, body, status, pointer) in cases {
        let body = (!body.is_null()).then_some(body);
        let (got, problem, _) = s.call(method.clone(), &path, token, body.clone(), at).await;
        if status == 200 {
            // A manifest of any JSON is a draft's business; validate judges it.
            assert_eq!(got, 200, "{path}");
            continue;
        }
        assert_eq!(got, status, "{method} {path} {body:?}: {problem}");
        assert!(problem["code"].is_string(), "problem+json for {path}");
        if !pointer.is_empty() {
            assert_eq!(problem["errors"][0]["pointer"], pointer, "{method} {path}");
        }
    }
    let after = db.log_stats().await;
    // Only the one accepted manifest replacement was appended.
    assert_eq!(after.0, before.0 + 1, "refused commands append nothing");
}
