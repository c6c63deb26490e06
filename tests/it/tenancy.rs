//! Tenant isolation, generated from the route table: every operation under
//! `/v1/orgs/{org}` and `/v1/apps/{app}` answers 404 to a signed-in
//! outsider and appends nothing, however the id is spelled. The operations come from the OpenAPI
//! document, and a second test checks that the router's routes (read from
//! the route modules' `.route(...)` calls) are exactly the document's, so a
//! route added tomorrow is covered the day it lands.

use std::collections::BTreeSet;

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

/// `(method, path template)` of every operation in the document.
async fn operations(s: &TestServer) -> Vec<(Method, String)> {
    let doc: Value = s.get("/openapi.json", None).await.json().await.unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if let Ok(m) = method.to_uppercase().parse::<Method>() {
                ops.push((m, path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_org_and_app_route_answers_404_to_an_outsider_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.user("owner@example.com").await;
    let (_, outsider, _) = s.user("outsider@example.com").await;
    let (org, at) = s.workspace(&owner, &staff, "inside").await;
    let (status, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(json!({"name": "Inside", "slug": "inside"})),
            at,
        )
        .await;
    assert_eq!(status, 201);
    let app = app["id"].as_str().unwrap().to_owned();
    // The outsider has a workspace of their own, so they are a member of
    // something: only membership of *this* one is missing.
    s.workspace(&outsider, &staff, "outside").await;
    let some_id = uuid::Uuid::now_v7();

    let scoped: Vec<(Method, String)> = operations(&s)
        .await
        .into_iter()
        .filter(|(_, p)| p.starts_with("/v1/orgs/{org}") || p.starts_with("/v1/apps/{app}"))
        .collect();
    assert!(
        scoped.len() >= 30,
        "the document lists the scoped routes: {}",
        scoped.len()
    );
    let before = db.log_stats().await;
    let mut answers = Vec::new();
    // Each id as a client may spell it: plain, upper case, and every
    // character percent-encoded (the router decodes all three alike).
    let spellings = |id: &str| {
        vec![
            id.to_owned(),
            id.to_uppercase(),
            id.bytes().map(|b| format!("%{b:02X}")).collect::<String>(),
        ]
    };
    let variants: Vec<(Method, String, String, String)> = scoped
        .iter()
        .flat_map(|(method, template)| {
            spellings(&org)
                .into_iter()
                .zip(spellings(&app))
                .map(move |(o, a)| (method.clone(), template.clone(), o, a))
        })
        .collect();
    for (method, template, org, app) in &variants {
        // Every other path parameter gets a well-formed id, so nothing is
        // refused as malformed before tenancy is decided.
        let mut path = template.replace("{org}", org).replace("{app}", app);
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').unwrap() + start;
            path.replace_range(start..=end, &some_id.to_string());
        }
        let mut req = s
            .http
            .request(method.clone(), s.url(&path))
            .bearer_auth(&outsider)
            .header("gatehouse-min-position", at.to_string());
        if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
            req = req.json(&json!({}));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        answers.push((method.clone(), path, status, body["code"].clone()));
    }
    let leaks: Vec<_> = answers
        .iter()
        .filter(|(_, _, status, code)| !(*status == 404 && code == "not-found"))
        .collect();
    assert!(leaks.is_empty(), "not 404 to an outsider: {leaks:?}");
    // A client generated from the document knows every answer it can get.
    let doc: Value = s.get("/openapi.json", None).await.json().await.unwrap();
    let undocumented: Vec<_> = scoped
        .iter()
        .filter(|(method, template)| {
            doc["paths"][template][method.as_str().to_lowercase()]["responses"]["404"].is_null()
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "answer 404 without documenting it: {undocumented:?}"
    );
    assert_eq!(db.log_stats().await, before, "an outsider appends nothing");

    // The owner, by contrast, gets past the guard on the same routes.
    let r = s
        .get(&format!("/v1/orgs/{org}/members"), Some(&owner))
        .await;
    assert_eq!(r.status(), 200);
}

/// The path templates of the router's routes, read from the route modules
/// (and their directories).
fn router_paths() -> BTreeSet<String> {
    fn scan(dir: &std::path::Path, paths: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().path();
            if file.is_dir() {
                scan(&file, paths);
                continue;
            }
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let mut rest = text.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                let open = rest.find('"').unwrap();
                let close = rest[open + 1..].find('"').unwrap() + open + 1;
                paths.insert(rest[open + 1..close].to_owned());
            }
        }
    }
    let mut paths = BTreeSet::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/routes");
    scan(&dir, &mut paths);
    paths
}

#[tokio::test]
async fn the_router_serves_exactly_the_routes_the_openapi_document_lists() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let documented: BTreeSet<String> = operations(&s).await.into_iter().map(|(_, p)| p).collect();
    let mut routed = router_paths();
    routed.remove("/openapi.json");
    assert_eq!(routed, documented, "router paths vs. documented paths");
}

/// Every parameter is documented where the route takes it: a path
/// parameter is a `{name}` of the template and every `{name}` is one, so
/// query parameters (`limit`, `cursor`, filters) are never declared in the
/// path, which generated clients refuse.
#[tokio::test]
async fn every_parameter_is_documented_where_the_route_takes_it() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let doc: Value = s.get("/openapi.json", None).await.json().await.unwrap();
    let mut wrong = Vec::new();
    let mut paged = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let in_template: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split('}').next())
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared: BTreeSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
            if declared != in_template {
                wrong.push(format!("{method} {path}: path parameters {declared:?}"));
            }
            if params
                .iter()
                .any(|p| p["name"] == "cursor" && p["in"] == "query")
            {
                paged += 1;
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(
        paged >= 20,
        "the paged lists take limit and cursor in the query: {paged}"
    );
}
