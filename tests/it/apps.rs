//! Apps over HTTP: create, read, update, delete, team ownership, app
//! members, visibility and distribution, the dashboard, role checks,
//! tenant isolation, the paywall, bad input, and concurrent edits.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

fn app_body(slug: &str) -> Value {
    json!({
        "name": "Payroll Sync",
        "slug": slug,
        "description": "Syncs payroll",
        "origins": ["https://app.example.com"],
        "callback_urls": ["https://app.example.com/cb", "http://localhost:3000/cb"],
        "attributes": {"tier": "gold"}
    })
}

#[tokio::test]
async fn an_app_is_created_read_updated_and_deleted() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "acme").await;

    let path = format!("/v1/orgs/{org}/apps");
    let (status, app, at) = s
        .call(Method::POST, &path, &owner, Some(app_body("payroll")), at)
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["status"], "active");
    assert_eq!(app["visibility"], "private");
    assert_eq!(app["version"], 1);
    let id = app["id"].as_str().unwrap().to_owned();

    let (status, read, _) = s
        .call(Method::GET, &format!("/v1/apps/{id}"), &owner, None, at)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read, app, "the read model shows what the command answered");

    // The same slug again in this org is taken.
    let (status, problem, _) = s
        .call(Method::POST, &path, &owner, Some(app_body("payroll")), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("slug-taken"))
    );

    let patch =
        json!({"description": "Now with taxes", "attributes": {"tier": null, "region": "eu"}});
    let (status, updated, at) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{id}"),
            &owner,
            Some(patch),
            at,
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["description"], "Now with taxes");
    assert_eq!(updated["attributes"], json!({"region": "eu"}));
    assert_eq!(updated["name"], "Payroll Sync", "fields not sent stay");

    // Renaming the slug frees the old one.
    let (status, _, at) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{id}"),
            &owner,
            Some(json!({"slug": "payroll-2"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, second, at) = s
        .call(Method::POST, &path, &owner, Some(app_body("payroll")), at)
        .await;
    assert_eq!(status, 201, "{second}");

    let (status, dashboard, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/dashboard"),
            &owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{dashboard}");
    assert_eq!(dashboard["app_count"], 2);
    assert_eq!(dashboard["apps"]["items"].as_array().unwrap().len(), 2);
    let overview = format!("/v1/orgs/{org}/overview");
    let (status, o, _) = s.call(Method::GET, &overview, &owner, None, at).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["app_count"], 2);
    assert_eq!(
        o["selected_app"]["id"], second["id"],
        "the most recently active app"
    );
    let (_, o, _) = s
        .call(
            Method::GET,
            &format!("{overview}?app={id}"),
            &owner,
            None,
            at,
        )
        .await;
    assert_eq!(o["selected_app"]["slug"], "payroll-2");

    let (status, _, at) = s
        .call(Method::DELETE, &format!("/v1/apps/{id}"), &owner, None, at)
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = s
        .call(Method::GET, &format!("/v1/apps/{id}"), &owner, None, at)
        .await;
    assert_eq!(status, 404, "a deleted app is gone from the portal");
    let (_, list, _) = s.call(Method::GET, &path, &owner, None, at).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let deleted: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'app.deleted' AND stream_id = $1",
            &[&format!("app-{id}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 1, "the deletion is one logged event");
}

#[tokio::test]
async fn roles_teams_and_tenants_decide_who_sees_and_changes_an_app() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "acme").await;
    let (dev_id, dev, _) = s.user("dev@example.com").await;
    let (_, auditor, _) = s.user("audit@example.com").await;
    let (_, outsider, _) = s.user("out@example.com").await;
    s.join(&owner, &org, "dev@example.com", "developer", &dev)
        .await;
    let at = s
        .join(&owner, &org, "audit@example.com", "compliance", &auditor)
        .await
        .max(at);
    let (_, _other_org, _) = {
        let (o, p) = s.workspace(&outsider, &staff, "other").await;
        (o, (), p)
    };

    let path = format!("/v1/orgs/{org}/apps");
    let (status, problem, _) = s
        .call(Method::POST, &path, &dev, Some(app_body("dev-app")), at)
        .await;
    assert_eq!(
        (status, problem["permission"].as_str()),
        (403, Some("apps.manage"))
    );
    let (status, app, at) = s
        .call(Method::POST, &path, &owner, Some(app_body("team-app")), at)
        .await;
    assert_eq!(status, 201);
    let id = app["id"].as_str().unwrap();
    let app_path = format!("/v1/apps/{id}");

    // Compliance reads, cannot change.
    let (status, _, _) = s.call(Method::GET, &app_path, &auditor, None, at).await;
    assert_eq!(status, 200);
    let (status, problem, _) = s
        .call(
            Method::PATCH,
            &app_path,
            &auditor,
            Some(json!({"name": "Mine"})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["permission"].as_str()),
        (403, Some("apps.manage"))
    );

    // An outsider gets 404 on every app route, and nothing is appended.
    let before = db.log_stats().await;
    for (method, p, body) in [
        (Method::GET, app_path.clone(), None),
        (Method::PATCH, app_path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, app_path.clone(), None),
        (Method::GET, format!("{app_path}/members"), None),
        (
            Method::POST,
            format!("{app_path}/visibility"),
            Some(json!({"visibility": "public"})),
        ),
        (
            Method::PUT,
            format!("{app_path}/allowlist"),
            Some(json!({"workspaces": []})),
        ),
        (Method::GET, path.clone(), None),
        (Method::POST, path.clone(), Some(app_body("sneaky"))),
    ] {
        let (status, _, _) = s.call(method.clone(), &p, &outsider, body, at).await;
        assert_eq!(status, 404, "{method} {p}");
    }
    assert_eq!(db.log_stats().await, before, "nothing appended");

    // An app admin role never lifts a developer above the permission
    // table: the developer still only views the app.
    let (status, _, at) = s
        .call(
            Method::PUT,
            &format!("{app_path}/members/{dev_id}"),
            &owner,
            Some(json!({"role": "admin"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = s
        .call(
            Method::PATCH,
            &app_path,
            &dev,
            Some(json!({"description": "by the app admin"})),
            at,
        )
        .await;
    assert_eq!(status, 403);
    let (_, members, _) = s
        .call(
            Method::GET,
            &format!("{app_path}/members"),
            &auditor,
            None,
            at,
        )
        .await;
    assert_eq!(members["items"][0]["role"], "admin");
}

#[tokio::test]
async fn without_platform_api_or_terms_apps_are_refused() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (status, org, at) = s
        .call(
            Method::POST,
            "/v1/orgs",
            &owner,
            Some(json!({"slug": "locked", "name": "Locked"})),
            0,
        )
        .await;
    assert_eq!(status, 201);
    let org = org["id"].as_str().unwrap();
    let path = format!("/v1/orgs/{org}/apps");
    let (status, problem, _) = s
        .call(Method::POST, &path, &owner, Some(app_body("a-app")), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (402, Some("upgrade-required"))
    );
    let (status, _, _) = s.call(Method::GET, &path, &owner, None, at).await;
    assert_eq!(status, 402);

    let staff = s.staff(&db, "ops@example.com").await;
    let plan = json!({
        "plan": "pro", "modules": ["platform.api"], "monthly_call_limit": 1000,
        "subscription_state": "active",
        "billing_window_start": "2026-11-01T00:00:00Z", "billing_window_end": "2026-12-01T00:00:00Z"
    });
    let (status, _, at) = s
        .call(
            Method::PUT,
            &format!("/v1/orgs/{org}/plan"),
            &staff,
            Some(plan),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, problem, _) = s
        .call(Method::POST, &path, &owner, Some(app_body("a-app")), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("terms-not-accepted"))
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("accept_developer_terms"),
        "the problem names the next step: {problem}"
    );
}

#[tokio::test]
async fn bad_app_input_is_refused_by_pointer_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "strict").await;
    let path = format!("/v1/orgs/{org}/apps");
    let (_, app, at) = s
        .call(Method::POST, &path, &owner, Some(app_body("good")), at)
        .await;
    let app_path = format!("/v1/apps/{}", app["id"].as_str().unwrap());
    let before = db.log_stats().await;
    let cases: Vec<(Method, String, Value, u16, Vec<&str>)> = vec![
        (
            Method::POST,
            path.clone(),
            json!({"slug": "x-app"}),
            422,
            vec!["/name"],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X"}),
            422,
            vec!["/slug"],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X", "slug": "Bad Slug"}),
            422,
            vec!["/slug"],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "x".repeat(101), "slug": "x-app"}),
            422,
            vec!["/name"],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X", "slug": "x-app", "callback_urls": ["http://example.com/cb", "https://u:p@example.com/cb", "https://example.com/#f"]}),
            422,
            vec!["/callback_urls/0", "/callback_urls/1", "/callback_urls/2"],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X", "slug": "x-app", "origins": ["https://example.com/path", "javascript:alert(1)"]}),
            422,
            vec!["/origins/0", "/origins/1"],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": 5, "slug": "x-app"}),
            422,
            vec![],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X", "slug": "x-app", "colour": "red"}),
            422,
            vec![],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X", "slug": "good"}),
            409,
            vec![],
        ),
        (
            Method::POST,
            path.clone(),
            json!({"name": "X", "slug": "x-app", "team_id": uuid::Uuid::nil()}),
            422,
            vec!["/team_id"],
        ),
        (
            Method::PATCH,
            app_path.clone(),
            json!({"origins": ["ftp://example.com"]}),
            422,
            vec!["/origins/0"],
        ),
        (
            Method::PATCH,
            app_path.clone(),
            json!({"attributes": {"bad key!": "v"}}),
            422,
            vec!["/attributes/bad key!"],
        ),
        (
            Method::PATCH,
            app_path.clone(),
            json!({"team_id": uuid::Uuid::nil()}),
            422,
            vec!["/team_id"],
        ),
        (
            Method::POST,
            format!("{app_path}/visibility"),
            json!({"visibility": "everyone"}),
            422,
            vec!["/visibility"],
        ),
        (
            Method::PUT,
            format!("{app_path}/members/{}", uuid::Uuid::nil()),
            json!({"role": "admin"}),
            404,
            vec![],
        ),
        (
            Method::PUT,
            format!("{app_path}/allowlist"),
            json!({"workspaces": ["not-a-uuid"]}),
            422,
            vec![],
        ),
        (
            Method::GET,
            "/v1/apps/not-a-uuid".into(),
            Value::Null,
            400,
            vec![],
        ),
    ];
    for (method, p, body, status, pointers) in cases {
        let body = (!body.is_null()).then_some(body);
        let (got, problem, _) = s.call(method.clone(), &p, &owner, body.clone(), at).await;
        assert_eq!(got, status, "{method} {p} {body:?}: {problem}");
        assert!(problem["type"].as_str().is_some(), "problem+json for {p}");
        let got_pointers: Vec<&str> = problem["errors"]
            .as_array()
            .map(|e| e.iter().map(|f| f["pointer"].as_str().unwrap()).collect())
            .unwrap_or_default();
        if !pointers.is_empty() {
            assert_eq!(got_pointers, pointers, "{method} {p} {body:?}");
        }
    }
    assert_eq!(db.log_stats().await, before, "no refused command appended");
}

#[tokio::test]
async fn twenty_concurrent_edits_lose_no_update() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "busy").await;
    let (_, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(app_body("busy-app")),
            at,
        )
        .await;
    let app_path = format!("/v1/apps/{}", app["id"].as_str().unwrap());
    let version = app["version"].as_u64().unwrap();

    // With If-Match on the version all twenty read: one wins, the others 409.
    let edits = (0..20).map(|i| {
        let s = &s;
        let owner = owner.clone();
        let app_path = app_path.clone();
        async move {
            s.http
                .patch(s.url(&app_path))
                .bearer_auth(&owner)
                .header("if-match", format!("\"{version}\""))
                .json(&json!({"description": format!("edit {i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(edits).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );

    // Without If-Match each edit is re-decided on fresh state: all twenty
    // attributes land.
    let edits = (0..20).map(|i| {
        let s = &s;
        let owner = owner.clone();
        let app_path = app_path.clone();
        async move {
            s.call(
                Method::PATCH,
                &app_path,
                &owner,
                Some(json!({"attributes": {format!("k{i}"): format!("v{i}")}})),
                at,
            )
            .await
        }
    });
    let results = futures::future::join_all(edits).await;
    assert!(results.iter().all(|(s, _, _)| *s == 200), "{results:?}");
    let last = results.iter().map(|(_, _, p)| *p).max().unwrap();
    let (_, app, _) = s.call(Method::GET, &app_path, &owner, None, last).await;
    let attributes = app["attributes"].as_object().unwrap();
    for i in 0..20 {
        assert_eq!(
            attributes[&format!("k{i}")],
            format!("v{i}"),
            "edit {i} kept"
        );
    }
    assert_eq!(app["version"], version + 21);
}

#[tokio::test]
async fn staff_decide_distribution_and_suspend_and_reinstate_apps() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "dist").await;
    let (_, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(app_body("wide")),
            at,
        )
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    let app_path = format!("/v1/apps/{id}");

    let (status, app, at) = s
        .call(
            Method::POST,
            &format!("{app_path}/visibility"),
            &owner,
            Some(json!({"visibility": "public"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app["visibility"], "private", "not before staff approve");
    let request = app["distribution_request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, read, _) = s.call(Method::GET, &app_path, &owner, None, at).await;
    assert_eq!(read["distribution_request"]["visibility"], "public");

    let (status, queue, _) = s
        .call(
            Method::GET,
            "/v1/staff/distribution-requests",
            &staff,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        queue["items"][0]["id"],
        request.as_str(),
        "staff see it queued"
    );
    let approve = format!("/v1/staff/apps/{id}/distribution/{request}/approve");
    let (status, _, _) = s
        .call(Method::POST, &approve, &owner, Some(json!({})), at)
        .await;
    assert_eq!(status, 403, "only staff decide");
    let (status, app, at) = s
        .call(Method::POST, &approve, &staff, Some(json!({})), at)
        .await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["visibility"], "public");
    let (status, problem, _) = s
        .call(Method::POST, &approve, &staff, Some(json!({})), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("no-distribution-request")),
        "approve twice refused"
    );

    let suspend = format!("/v1/staff/apps/{id}/suspend");
    let (status, _, _) = s
        .call(Method::POST, &suspend, &staff, Some(json!({})), at)
        .await;
    assert_eq!(status, 422, "a suspension needs a reason");
    let (status, app, at) = s
        .call(
            Method::POST,
            &suspend,
            &staff,
            Some(json!({"reason": "abuse report"})),
            at,
        )
        .await;
    assert_eq!((status, app["status"].as_str()), (200, Some("suspended")));
    let (_, read, _) = s.call(Method::GET, &app_path, &owner, None, at).await;
    assert_eq!(read["status"], "suspended");
    assert_eq!(read["suspended_reason"], "abuse report");
    let (status, problem, _) = s
        .call(
            Method::POST,
            &format!("{app_path}/visibility"),
            &owner,
            Some(json!({"visibility": "private"})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("app-suspended"))
    );
    let (status, app, _) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{id}/reinstate"),
            &staff,
            Some(json!({"reason": "resolved"})),
            at,
        )
        .await;
    assert_eq!((status, app["status"].as_str()), (200, Some("active")));
}

#[tokio::test]
async fn a_suspended_app_refuses_every_change_but_deletion_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (owner_id, owner, _) = s.user("owner@example.com").await;
    let (member_id, _, _) = s.user("dev@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "frozen").await;
    let (_, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(app_body("frozen-app")),
            at,
        )
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    let app_path = format!("/v1/apps/{id}");
    let (status, _, at) = s
        .call(
            Method::PUT,
            &format!("{app_path}/members/{owner_id}"),
            &owner,
            Some(json!({"role": "admin"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{id}/suspend"),
            &staff,
            Some(json!({"reason": "abuse report"})),
            at,
        )
        .await;
    assert_eq!(status, 200);

    let before = db.log_stats().await;
    let refused: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            app_path.clone(),
            Some(json!({"callback_urls": ["https://evil.example.com/cb"]})),
        ),
        (
            Method::PUT,
            format!("{app_path}/members/{member_id}"),
            Some(json!({"role": "developer"})),
        ),
        (
            Method::DELETE,
            format!("{app_path}/members/{owner_id}"),
            None,
        ),
        (
            Method::PUT,
            format!("{app_path}/allowlist"),
            Some(json!({"workspaces": [org]})),
        ),
        (
            Method::POST,
            format!("{app_path}/visibility"),
            Some(json!({"visibility": "public"})),
        ),
        (
            Method::POST,
            format!("{app_path}/versions"),
            Some(json!({"label": "1.0.0", "manifest": {}})),
        ),
    ];
    for (method, path, body) in refused {
        let (status, problem, _) = s.call(method.clone(), &path, &owner, body, at).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (409, Some("app-suspended")),
            "{method} {path}: {problem}"
        );
    }
    assert_eq!(
        db.log_stats().await,
        before,
        "a refused command appends nothing"
    );
    let (_, read, _) = s.call(Method::GET, &app_path, &owner, None, at).await;
    assert_eq!(
        read["callback_urls"], app["callback_urls"],
        "the callbacks did not change"
    );

    let (status, _, _) = s.call(Method::DELETE, &app_path, &owner, None, at).await;
    assert_eq!(status, 204, "a suspended app can still be deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_making_four_thousand_edits_on_one_app_all_land() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "contended").await;
    let (_, app, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(app_body("contended-app")),
            at,
        )
        .await;
    let app_path = format!("/v1/apps/{}", app["id"].as_str().unwrap());
    let version = app["version"].as_u64().unwrap();
    const WRITERS: usize = 8;
    const EDITS: usize = 500;
    let writers = (0..WRITERS).map(|w| {
        let (s, owner, app_path) = (&s, owner.clone(), app_path.clone());
        async move {
            let mut refused = Vec::new();
            for i in 0..EDITS {
                let r = s
                    .http
                    .patch(s.url(&app_path))
                    .bearer_auth(&owner)
                    .json(&json!({"description": format!("writer {w} edit {i}")}))
                    .send()
                    .await
                    .unwrap();
                if r.status() != 200 {
                    refused.push((r.status().as_u16(), r.text().await.unwrap()));
                }
            }
            refused
        }
    });
    let refused: Vec<_> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        refused.is_empty(),
        "{} edits refused: {:?}",
        refused.len(),
        refused.first()
    );
    let stream_version: i64 = db
        .client()
        .await
        .query_one(
            "SELECT max(stream_version) FROM events WHERE stream_id = $1",
            &[&format!("app-{}", app["id"].as_str().unwrap())],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stream_version as u64, version + (WRITERS * EDITS) as u64);
}
