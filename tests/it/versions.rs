//! Versions, manifests, install links and installs over HTTP.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

struct World {
    s: TestServer,
    db: gatehouse_tests::TestDb,
    staff: String,
    owner: String,
    org: String,
    app: String,
    at: u64,
}

async fn world() -> World {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "maker").await;
    let body = json!({"name": "Payroll Sync", "slug": "payroll"});
    let (status, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(body),
            at,
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let app = app["id"].as_str().unwrap().to_owned();
    World {
        s,
        db,
        staff,
        owner,
        org,
        app,
        at,
    }
}

fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|f| f["pointer"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn only_a_valid_draft_is_published_and_then_never_changes() {
    let w = world().await;
    let (s, owner, app) = (&w.s, &w.owner, &w.app);
    let versions = format!("/v1/apps/{app}/versions");
    let draft = json!({"label": "1.0.0", "manifest": {"scopes": ["Not A Scope"], "redirect_urls": ["http://x.example.com"]}});
    let (status, v, at) = s
        .call(Method::POST, &versions, owner, Some(draft), w.at)
        .await;
    assert_eq!((status, v["state"].as_str()), (201, Some("draft")), "{v}");
    let v_path = format!("{versions}/{}", v["id"].as_str().unwrap());

    let (status, report, _) = s
        .call(Method::POST, &format!("{v_path}/validate"), owner, None, at)
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["valid"], false);
    let got = pointers(&report);
    for p in [
        "/manifest",
        "/manifest/scopes/0",
        "/manifest/redirect_urls/0",
    ] {
        assert!(got.contains(&p.to_owned()), "{p} in {got:?}");
    }
    let before = w.db.log_stats().await;
    let (status, problem, _) = s
        .call(Method::POST, &format!("{v_path}/publish"), owner, None, at)
        .await;
    assert_eq!(status, 422, "an invalid draft is not published: {problem}");
    assert_eq!(pointers(&problem), got, "publish names the same errors");
    assert_eq!(w.db.log_stats().await, before);

    let good = json!({"name": "Payroll Sync", "scopes": ["payroll.read"], "webhooks": {"categories": ["payroll.*"]}});
    let (status, v, at) = s
        .call(
            Method::PUT,
            &format!("{v_path}/manifest"),
            owner,
            Some(good.clone()),
            at,
        )
        .await;
    assert_eq!((status, &v["manifest"]), (200, &good));
    let (_, report, _) = s
        .call(Method::POST, &format!("{v_path}/validate"), owner, None, at)
        .await;
    assert_eq!(report, json!({"valid": true, "errors": []}));
    let (status, v, at) = s
        .call(Method::POST, &format!("{v_path}/publish"), owner, None, at)
        .await;
    assert_eq!((status, v["state"].as_str()), (200, Some("published")));

    let (status, problem, _) = s
        .call(
            Method::PUT,
            &format!("{v_path}/manifest"),
            owner,
            Some(json!({"name": "x", "scopes": []})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("version-published"))
    );
    let (status, _, _) = s
        .call(Method::POST, &format!("{v_path}/publish"), owner, None, at)
        .await;
    assert_eq!(status, 409, "publish twice refused");
    let (status, problem, _) = s
        .call(
            Method::POST,
            &versions,
            owner,
            Some(json!({"label": "1.0.0"})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("version-label-taken"))
    );

    let (_, list, _) = s.call(Method::GET, &versions, owner, None, at).await;
    assert_eq!(list["items"][0]["state"], "published");
    let (_, dashboard, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/dashboard", w.org),
            owner,
            None,
            at,
        )
        .await;
    assert_eq!(dashboard["published_app_count"], 1);
    assert_eq!(dashboard["draft_version_count"], 0);
    let schema = s.get("/v1/schemas/app-manifest", None).await;
    assert_eq!(schema.status(), 200);
    let schema: Value = serde_json::from_str(&schema.text().await.unwrap()).unwrap();
    assert_eq!(schema["required"], json!(["name", "scopes"]));
}

#[tokio::test]
async fn install_links_honour_visibility_allowlist_expiry_and_single_use() {
    let w = world().await;
    let (s, owner, app) = (&w.s, &w.owner, &w.app);
    let versions = format!("/v1/apps/{app}/versions");
    let manifest = json!({"name": "Payroll Sync", "scopes": ["payroll.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &versions,
            owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            w.at,
        )
        .await;
    let v_path = format!("{versions}/{}", v["id"].as_str().unwrap());
    let (status, problem, _) = s
        .call(
            Method::POST,
            &format!("{v_path}/install-links"),
            owner,
            Some(json!({})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("version-not-published"))
    );
    let (_, _, at) = s
        .call(Method::POST, &format!("{v_path}/publish"), owner, None, at)
        .await;
    let (status, problem, _) = s
        .call(
            Method::POST,
            &format!("{v_path}/install-links"),
            owner,
            Some(json!({"expires_in_hours": 721})),
            at,
        )
        .await;
    assert_eq!(
        (status, pointers(&problem)),
        (422, vec!["/expires_in_hours".to_owned()])
    );
    let (status, link, at) = s
        .call(
            Method::POST,
            &format!("{v_path}/install-links"),
            owner,
            Some(json!({"single_use": true})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().unwrap().to_owned();
    let stored: i64 =
        w.db.client()
            .await
            .query_one(
                "SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'",
                &[&token],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(stored, 0, "the token is never stored");

    // Another workspace: refused while private and not allowlisted.
    let (_, customer, _) = s.user("customer@example.com").await;
    let (customer_org, _) = s.workspace(&customer, &w.staff, "customer").await;
    let install = format!("/v1/install/{token}");
    let body = json!({"workspace_id": customer_org});
    let (status, problem, _) = s
        .call(Method::POST, &install, &customer, Some(body.clone()), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("not-allowlisted"))
    );
    let (status, _, at) = s
        .call(
            Method::PUT,
            &format!("/v1/apps/{app}/allowlist"),
            owner,
            Some(json!({"workspaces": [customer_org]})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    // Installing into a workspace the caller is not in is refused.
    let foreign = json!({"workspace_id": w.org});
    let (status, _, _) = s
        .call(Method::POST, &install, &customer, Some(foreign), at)
        .await;
    assert_eq!(status, 404);
    let (status, installed, at) = s
        .call(Method::POST, &install, &customer, Some(body.clone()), at)
        .await;
    assert_eq!(status, 201, "{installed}");
    assert_eq!(installed["version_id"], v["id"]);
    let (_, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{customer_org}/installations"),
            &customer,
            None,
            at,
        )
        .await;
    assert_eq!(list["items"][0]["app_id"], app.as_str());

    // Single use: a second workspace cannot reuse it.
    let (_, third, _) = s.user("third@example.com").await;
    let (third_org, _) = s.workspace(&third, &w.staff, "third").await;
    let (status, problem, _) = s
        .call(
            Method::POST,
            &install,
            &third,
            Some(json!({"workspace_id": third_org})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("install-link-used")),
        "{problem}"
    );
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/install/gil_nonsense",
            &third,
            Some(json!({"workspace_id": third_org})),
            at,
        )
        .await;
    assert_eq!(status, 404);

    let uninstall = format!("/v1/orgs/{customer_org}/installations/{app}");
    let (status, _, at) = s
        .call(Method::DELETE, &uninstall, &customer, None, at)
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = s
        .call(Method::DELETE, &uninstall, &customer, None, at)
        .await;
    assert_eq!(status, 404, "not installed any more");
}

#[tokio::test]
async fn developers_and_compliance_cannot_publish() {
    let w = world().await;
    let (s, owner, app) = (&w.s, &w.owner, &w.app);
    let (_, dev, _) = s.user("dev@example.com").await;
    let (_, auditor, _) = s.user("audit@example.com").await;
    s.join(owner, &w.org, "dev@example.com", "developer", &dev)
        .await;
    let at = s
        .join(owner, &w.org, "audit@example.com", "compliance", &auditor)
        .await;
    let versions = format!("/v1/apps/{app}/versions");
    let manifest = json!({"name": "Payroll Sync", "scopes": ["payroll.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &versions,
            owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            at.max(w.at),
        )
        .await;
    let publish = format!("{versions}/{}/publish", v["id"].as_str().unwrap());
    for token in [&dev, &auditor] {
        let (status, problem, _) = s.call(Method::POST, &publish, token, None, at).await;
        assert_eq!(
            (status, problem["permission"].as_str()),
            (403, Some("apps.manage"))
        );
        let (status, _, _) = s.call(Method::GET, &versions, token, None, at).await;
        assert_eq!(status, 200, "members read the Versions page");
    }
}

#[tokio::test]
async fn new_developer_terms_gate_publishing_until_accepted_again() {
    let w = world().await;
    let (s, owner, app) = (&w.s, &w.owner, &w.app);
    let (_, dev, _) = s.user("dev@example.com").await;
    let at = s
        .join(owner, &w.org, "dev@example.com", "manager", &dev)
        .await
        .max(w.at);
    // A manager may manage apps, so only the terms can stop them. (An app
    // admin role no longer lifts a developer this far: tests/it/roles.rs.)
    let versions = format!("/v1/apps/{app}/versions");
    let manifest = json!({"name": "A", "scopes": ["a.read"]});
    let (status, v, at) = s
        .call(
            Method::POST,
            &versions,
            &dev,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            at,
        )
        .await;
    assert_eq!(status, 201);
    let publish = format!("{versions}/{}/publish", v["id"].as_str().unwrap());

    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/staff/developer-terms",
            owner,
            Some(json!({"version": "2027-01"})),
            at,
        )
        .await;
    assert_eq!(status, 403, "only staff publish terms");
    let (status, _, at) = s
        .call(
            Method::POST,
            "/v1/staff/developer-terms",
            &w.staff,
            Some(json!({"version": "2027-01"})),
            at,
        )
        .await;
    assert_eq!(status, 201);
    let (status, problem, _) = s
        .call(
            Method::POST,
            "/v1/staff/developer-terms",
            &w.staff,
            Some(json!({"version": "2027-01"})),
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("terms-version-used"))
    );
    let current: Value = s
        .get("/v1/developer-terms", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["version"], "2027-01");

    let before = w.db.log_stats().await;
    let (status, problem, _) = s.call(Method::POST, &publish, &dev, None, at).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("terms-not-accepted")),
        "{problem}"
    );
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("accept_developer_terms"));
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/apps", w.org),
            owner,
            Some(json!({"name": "B", "slug": "b-app"})),
            at,
        )
        .await;
    assert_eq!(status, 403, "creating apps is gated too");
    assert_eq!(w.db.log_stats().await, before, "nothing appended");
    let (_, lane, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/onboarding", w.org),
            owner,
            None,
            at,
        )
        .await;
    assert_eq!(lane["next_step"], "accept_developer_terms");
    assert_eq!(lane["terms_accepted"], false);

    let accept = format!("/v1/orgs/{}/developer-terms/accept", w.org);
    let (status, _, _) = s
        .call(
            Method::POST,
            &accept,
            owner,
            Some(json!({"version": "2026-01"})),
            at,
        )
        .await;
    assert_eq!(status, 422, "the old version no longer counts");
    let (status, _, at) = s
        .call(
            Method::POST,
            &accept,
            owner,
            Some(json!({"version": "2027-01"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, v, _) = s.call(Method::POST, &publish, &dev, None, at).await;
    assert_eq!((status, v["state"].as_str()), (200, Some("published")));
    let (_, lane, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/onboarding", w.org),
            owner,
            None,
            at,
        )
        .await;
    assert_eq!(lane["terms_accepted"], true);
    assert_ne!(lane["next_step"], "accept_developer_terms");
}

#[tokio::test]
async fn installs_go_to_streams_of_their_own_and_a_single_use_link_is_spent_once_under_races() {
    let w = world().await;
    let (s, owner, app) = (&w.s, &w.owner, &w.app);
    let versions = format!("/v1/apps/{app}/versions");
    let manifest = json!({"name": "Payroll Sync", "scopes": ["payroll.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &versions,
            owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            w.at,
        )
        .await;
    let v_path = format!("{versions}/{}", v["id"].as_str().unwrap());
    let (_, _, at) = s
        .call(Method::POST, &format!("{v_path}/publish"), owner, None, at)
        .await;
    let (_, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/visibility"),
            owner,
            Some(json!({"visibility": "public"})),
            at,
        )
        .await;
    let request = {
        let (_, read, _) = s
            .call(Method::GET, &format!("/v1/apps/{app}"), owner, None, at)
            .await;
        read["distribution_request"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{app}/distribution/{request}/approve"),
            &w.staff,
            Some(json!({})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, link, at) = s
        .call(
            Method::POST,
            &format!("{v_path}/install-links"),
            owner,
            Some(json!({"single_use": true})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().unwrap().to_owned();
    assert!(
        token.contains(link["id"].as_str().unwrap().replace('-', "").as_str()),
        "the token names its link"
    );

    let client = w.db.client().await;
    let app_stream = format!("app-{app}");
    let version_sql = "SELECT max(stream_version) FROM events WHERE stream_id = $1";
    let before: i64 = client
        .query_one(version_sql, &[&app_stream])
        .await
        .unwrap()
        .get(0);
    // Four workspaces race for the single-use link: one gets it.
    let mut racers = Vec::new();
    for i in 0..4 {
        let (_, token, _) = s.user(&format!("racer{i}@example.com")).await;
        let (org, _) = s.workspace(&token, &w.staff, &format!("racer-{i}")).await;
        racers.push((token, org));
    }
    let attempts = racers.iter().map(|(t, org)| {
        s.call(
            Method::POST,
            "/v1/install",
            t,
            Some(json!({"token": token, "workspace_id": org})),
            at,
        )
    });
    let results = futures::future::join_all(attempts).await;
    let won = results
        .iter()
        .filter(|(status, _, _)| *status == 201)
        .count();
    let spent = results
        .iter()
        .filter(|(status, body, _)| *status == 409 && body["code"] == "install-link-used")
        .count();
    assert_eq!((won, spent), (1, 3), "{results:?}");
    let after: i64 = client
        .query_one(version_sql, &[&app_stream])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, before, "an install does not touch the app's stream");
    let streams: Vec<String> = w
        .db
        .client()
        .await
        .query("SELECT stream_id FROM events WHERE event_type IN ('installation.added', 'install_link.used')", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert!(streams.iter().any(|s| s.starts_with("installation-")));
    assert!(streams.iter().any(|s| s.starts_with("install_link-")));
}

#[tokio::test]
async fn a_link_an_earlier_release_kept_in_the_app_stream_still_installs_and_uninstalls() {
    use event_schemas::app::{app_stream, AppEvent, InstallLinkCreated};
    use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
    use event_store::{EventStore, EventStoreExt};
    let w = world().await;
    let (s, owner, app) = (&w.s, &w.owner, &w.app);
    let versions = format!("/v1/apps/{app}/versions");
    let manifest = json!({"name": "Payroll Sync", "scopes": ["payroll.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &versions,
            owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            w.at,
        )
        .await;
    let version_id: uuid::Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let (_, _, _) = s
        .call(
            Method::POST,
            &format!("{versions}/{version_id}/publish"),
            owner,
            None,
            at,
        )
        .await;
    // The link as an earlier release recorded it: in the app's stream, its
    // token naming the app.
    let app_id: uuid::Uuid = app.parse().unwrap();
    let token = format!("gil_{}_{}", app_id.simple(), "s".repeat(43));
    let store = event_store::postgres::PgStore::connect(w.db.config.clone(), Default::default())
        .await
        .unwrap();
    let stream = app_stream(app_id);
    let version = store.read_stream(&stream, 1, 1000).await.unwrap().len() as u64;
    let created = AppEvent::InstallLinkCreated(InstallLinkCreated {
        link_id: uuid::Uuid::now_v7(),
        version_id,
        token_hash: api::extract::token_hash(&token),
        single_use: true,
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
    });
    let appended = store
        .append(
            &stream,
            ExpectedVersion::Exact(version),
            vec![NewEvent::from_domain(
                &created,
                Metadata::by(Actor::system()),
            )],
        )
        .await
        .unwrap();
    let body = json!({"token": token, "workspace_id": w.org});
    let (status, installed, at) = s
        .call(
            Method::POST,
            "/v1/install",
            owner,
            Some(body.clone()),
            appended.last_position,
        )
        .await;
    assert_eq!(status, 201, "{installed}");
    assert_eq!(installed["version_id"], version_id.to_string());
    let (status, problem, _) = s
        .call(Method::POST, "/v1/install", owner, Some(body), at)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("install-link-used")),
        "single use"
    );
    let (status, listed, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/installations", w.org),
            owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"][0]["app_id"], app.as_str());
    let uninstall = format!("/v1/orgs/{}/installations/{app}", w.org);
    let (status, _, at) = s.call(Method::DELETE, &uninstall, owner, None, at).await;
    assert_eq!(status, 204);
    let (status, _, _) = s.call(Method::DELETE, &uninstall, owner, None, at).await;
    assert_eq!(status, 404, "not installed any more");
}
