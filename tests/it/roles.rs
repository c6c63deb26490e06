//! Roles that say exactly what the permission table says: each finding of
//! the access review has a test here named for the rule it checks.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

/// An organisation (owner, staff-set plan) with one app, and a member of
/// each given role who joined by the mailed invitation.
struct Org {
    owner: String,
    staff: String,
    org: String,
    app: String,
    members: Vec<(String, String, String)>,
    at: u64,
}

async fn org_with(s: &TestServer, db: &gatehouse_tests::TestDb, slug: &str, roles: &[&str]) -> Org {
    let staff = s.staff(db, &format!("ops-{slug}@example.com")).await;
    let (_, owner, _) = s.verified_user(&format!("owner-{slug}@example.com")).await;
    let (org, at) = s.workspace(&owner, &staff, slug).await;
    let (status, app, mut at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(json!({"name": "Ledger", "slug": format!("{slug}-ledger")})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let mut members = Vec::new();
    for role in roles {
        let email = format!("{role}-{slug}@example.com");
        let (id, token, _) = s.user(&email).await;
        at = s.join(&owner, &org, &email, role, &token).await;
        members.push((id, token, email));
    }
    Org {
        owner,
        staff,
        org,
        app: app["id"].as_str().unwrap().to_owned(),
        members,
        at,
    }
}

#[tokio::test]
async fn compliance_sees_audit_streams_but_never_creates_rotates_or_receives_a_secret() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let o = org_with(&s, &db, "streams", &["compliance"]).await;
    let auditor = &o.members[0].1;
    let streams = format!("/v1/orgs/{}/audit/streams", o.org);
    let collector = gatehouse_tests::webhooks::Receiver::start().await;
    let body = json!({"url": collector.url("/siem")});
    let (status, refused, _) = s
        .call(Method::POST, &streams, auditor, Some(body.clone()), o.at)
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["permission"], "audit.streams.manage");
    let (status, created, at) = s
        .call(Method::POST, &streams, &o.owner, Some(body), o.at)
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    for path in ["rotate-secret", "enable"] {
        let (status, answer, _) = s
            .call(
                Method::POST,
                &format!("{streams}/{id}/{path}"),
                auditor,
                None,
                at,
            )
            .await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(!answer.to_string().contains("whsec_"), "{answer}");
    }
    let (status, _, _) = s
        .call(
            Method::DELETE,
            &format!("{streams}/{id}"),
            auditor,
            None,
            at,
        )
        .await;
    assert_eq!(status, 403);
    let (status, list, _) = s.call(Method::GET, &streams, auditor, None, at).await;
    assert_eq!(status, 200, "compliance reads the streams");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("whsec_"), "{list}");
}

#[tokio::test]
async fn an_app_admin_role_lifts_no_member_above_the_permission_table() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let o = org_with(&s, &db, "lift", &["developer", "finance", "compliance"]).await;
    let mut at = o.at;
    for (id, token, _) in &o.members {
        let (status, body, set) = s
            .call(
                Method::PUT,
                &format!("/v1/apps/{}/members/{id}", o.app),
                &o.owner,
                Some(json!({"role": "admin"})),
                at,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        at = set;
        let (status, refused, _) = s
            .call(
                Method::PATCH,
                &format!("/v1/apps/{}", o.app),
                token,
                Some(json!({"name": "Taken over"})),
                at,
            )
            .await;
        assert_eq!(status, 403, "an app admin {id} edits the app: {refused}");
    }
}

#[tokio::test]
async fn leaving_the_organisation_ends_app_and_team_membership() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let o = org_with(&s, &db, "leave", &["developer"]).await;
    let (dev_id, _, _) = &o.members[0];
    let (status, team, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/teams", o.org),
            &o.owner,
            Some(json!({"name": "Core"})),
            o.at,
        )
        .await;
    assert_eq!(status, 201, "{team}");
    let team = team["id"].as_str().unwrap();
    let (status, _, at) = s
        .call(
            Method::PUT,
            &format!("/v1/orgs/{}/teams/{team}/members/{dev_id}", o.org),
            &o.owner,
            Some(json!({"team_role": "admin"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, at) = s
        .call(
            Method::PUT,
            &format!("/v1/apps/{}/members/{dev_id}", o.app),
            &o.owner,
            Some(json!({"role": "developer"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    // The developer is an app member before leaving (the list follows the
    // apps read model, which takes a moment).
    let members_path = format!("/v1/apps/{}/members", o.app);
    let mut present = false;
    for _ in 0..200 {
        let (status, members, _) = s.call(Method::GET, &members_path, &o.owner, None, at).await;
        assert_eq!(status, 200, "{members}");
        if members.to_string().contains(dev_id.as_str()) {
            present = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(present, "the developer joined the app");
    let (status, _, at) = s
        .call(
            Method::DELETE,
            &format!("/v1/orgs/{}/members/{dev_id}", o.org),
            &o.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 204);
    let mut members = Value::Null;
    for _ in 0..200 {
        let (status, page, _) = s.call(Method::GET, &members_path, &o.owner, None, at).await;
        assert_eq!(status, 200, "{page}");
        members = page;
        if !members.to_string().contains(dev_id.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        !members.to_string().contains(dev_id.as_str()),
        "app membership ended: {members}"
    );
    let (status, teams, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/teams", o.org),
            &o.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200, "{teams}");
    assert!(
        !teams.to_string().contains(dev_id.as_str()),
        "team membership ended: {teams}"
    );
}

#[tokio::test]
async fn an_organisations_audit_view_names_platform_staff_without_their_personal_data() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let o = org_with(&s, &db, "staffed", &[]).await;
    // The plan was set by staff (in `workspace`).
    let (status, page, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/audit?limit=200", o.org),
            &o.owner,
            None,
            o.at,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let by_staff: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["kind"] == "staff")
        .collect();
    assert!(!by_staff.is_empty(), "staff acted on the organisation");
    for e in &by_staff {
        assert_eq!(e["actor"]["name"], "Gatehouse staff", "{e}");
        assert!(e["actor"]["id"].is_null(), "{e}");
        assert!(e["context"]["ip"].is_null(), "{e}");
        assert!(e["context"]["user_agent"].is_null(), "{e}");
    }
    // Staff see who among them acted.
    let (status, page, _) = s
        .call(
            Method::GET,
            &format!("/v1/staff/audit?org={}&limit=200", o.org),
            &o.staff,
            None,
            o.at,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let by_staff: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["kind"] == "staff")
        .collect();
    assert!(!by_staff.is_empty(), "{page}");
    let named = by_staff
        .iter()
        .all(|e| e["actor"]["id"].is_string() && e["actor"]["name"] == "Test User");
    assert!(named, "{page}");
}

#[tokio::test]
async fn compliance_and_the_member_themselves_see_member_emails_finance_sees_only_its_own() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let o = org_with(&s, &db, "emails", &["compliance", "finance"]).await;
    let list = |token: String| {
        let s = &s;
        let path = format!("/v1/orgs/{}/members", o.org);
        let at = o.at;
        async move { s.call(Method::GET, &path, &token, None, at).await.1 }
    };
    let emails = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["email"].as_str().map(str::to_owned))
            .collect()
    };
    let seen = emails(&list(o.members[0].1.clone()).await);
    assert_eq!(seen.len(), 3, "compliance sees every address: {seen:?}");
    let seen = emails(&list(o.members[1].1.clone()).await);
    assert_eq!(seen, vec![o.members[1].2.clone()], "finance sees its own");
}
