//! Staff operations on apps over HTTP: suspension by criteria, the JSON
//! Lines export, and the reports.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn staff_suspend_by_criteria_export_and_report() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, a_owner, _) = s.user("a@example.com").await;
    let (_, b_owner, _) = s.user("b@example.com").await;
    let (org_a, at) = s.workspace(&a_owner, &staff, "org-a").await;
    let (org_b, at2) = s.workspace(&b_owner, &staff, "org-b").await;
    let mut at = at.max(at2);
    let mut ids = Vec::new();
    for (owner, org, n) in [(&a_owner, &org_a, 3), (&b_owner, &org_b, 2)] {
        for i in 0..n {
            let body = json!({"name": format!("App {i}"), "slug": format!("app-{i}")});
            let (status, app, p) = s
                .call(
                    Method::POST,
                    &format!("/v1/orgs/{org}/apps"),
                    owner,
                    Some(body),
                    at,
                )
                .await;
            assert_eq!(status, 201);
            ids.push(app["id"].as_str().unwrap().to_owned());
            at = p;
        }
    }
    let (status, _, at) = s
        .call(
            Method::DELETE,
            &format!("/v1/apps/{}", ids[4]),
            &b_owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 204);

    let bulk = "/v1/staff/apps/suspend";
    let before = db.log_stats().await;
    let (status, problem, _) = s
        .call(
            Method::POST,
            bulk,
            &staff,
            Some(json!({"reason": "sweep"})),
            at,
        )
        .await;
    assert_eq!(status, 422, "criteria are required: {problem}");
    let (status, _, _) = s
        .call(
            Method::POST,
            bulk,
            &a_owner,
            Some(json!({"reason": "x", "org_id": org_b})),
            at,
        )
        .await;
    assert_eq!(status, 403);
    let dry = json!({"reason": "sweep", "org_id": org_a, "dry_run": true});
    let (status, out, _) = s.call(Method::POST, bulk, &staff, Some(dry), at).await;
    assert_eq!((status, out["matched"].as_u64()), (200, Some(3)));
    assert_eq!(db.log_stats().await, before, "a dry run changes nothing");

    let (status, out, at) = s
        .call(
            Method::POST,
            bulk,
            &staff,
            Some(json!({"reason": "org-wide review", "org_id": org_a, "status": ["active"]})),
            at,
        )
        .await;
    assert_eq!((status, out["matched"].as_u64()), (200, Some(3)), "{out}");
    assert!(out["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == 200));
    let (_, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org_a}/apps"),
            &a_owner,
            None,
            at,
        )
        .await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "suspended"));
    let (_, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org_b}/apps"),
            &b_owner,
            None,
            at,
        )
        .await;
    assert_eq!(list["items"][0]["status"], "active", "other orgs untouched");
    let (_, again, _) = s
        .call(
            Method::POST,
            bulk,
            &staff,
            Some(json!({"reason": "again", "org_id": org_a})),
            at,
        )
        .await;
    assert_eq!(again["matched"], 0, "suspended apps are not matched again");

    // The export streams every app, deleted ones included.
    let r = s
        .http
        .get(s.url("/v1/staff/apps/export"))
        .bearer_auth(&staff)
        .header("gatehouse-min-position", at.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let exported: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(
        exported,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "oldest first"
    );
    assert_eq!(lines[4]["status"], "deleted");
    assert!(lines[4]["deleted_at"].is_string());
    let r = s
        .http
        .get(s.url(&format!("/v1/staff/apps/export?org_id={org_b}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap().lines().count(), 2);
    let r = s.get("/v1/staff/apps/export", Some(&a_owner)).await;
    assert_eq!(r.status(), 403);

    let (status, inventory, _) = s
        .call(
            Method::GET,
            "/v1/staff/reports/app-inventory",
            &staff,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(inventory["total"], 4);
    assert_eq!(inventory["deleted"], 1);
    assert_eq!(inventory["organizations"], 2);
    assert_eq!(inventory["by_status"], json!({"active": 1, "suspended": 3}));
    assert_eq!(inventory["by_visibility"], json!({"private": 4}));

    let (_, inactive, _) = s
        .call(
            Method::GET,
            "/v1/staff/reports/inactive-apps?days=0",
            &staff,
            None,
            at,
        )
        .await;
    assert_eq!(inactive["items"].as_array().unwrap().len(), 4);
    let (_, inactive, _) = s
        .call(
            Method::GET,
            "/v1/staff/reports/inactive-apps?days=30",
            &staff,
            None,
            at,
        )
        .await;
    assert_eq!(inactive["items"], json!([]), "everything here moved today");
}
