//! Organisations over HTTP: creation, the next step in `/v1/me`, developer
//! terms, invitations, roles, last-owner protection and tenant isolation.

use gatehouse_tests::fresh_db;
use gatehouse_tests::server::{position_of, Options, TestServer};
use serde_json::{json, Value};

async fn post_as(s: &TestServer, token: &str, path: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn code(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn create_org(s: &TestServer, token: &str, slug: &str) -> (String, u64) {
    let r = post_as(
        s,
        token,
        "/v1/orgs",
        json!({"slug": slug, "name": format!("Org {slug}")}),
    )
    .await;
    assert_eq!(r.status(), 201, "create {slug}");
    let position = position_of(&r);
    let body: Value = r.json().await.unwrap();
    (body["id"].as_str().unwrap().to_owned(), position)
}

async fn head(s: &TestServer) -> u64 {
    let ready: Value = s.readiness().await;
    ready["head"].as_u64().unwrap()
}

#[tokio::test]
async fn the_next_step_advances_from_sign_up_to_terms_accepted() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, position) = s.user("owner@example.com").await;
    let me: Value = s
        .get_at("/v1/me", &token, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["access"]["next_step"], "verify_email");
    let position = s.verify_email("owner@example.com").await;
    let me: Value = s
        .get_at("/v1/me", &token, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["access"]["next_step"], "attach_to_organization");

    let (org, position) = create_org(&s, &token, "acme").await;
    let me: Value = s
        .get_at("/v1/me", &token, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["access"]["next_step"], "accept_developer_terms");
    assert_eq!(me["memberships"][0]["org_id"], org.as_str());
    assert_eq!(me["memberships"][0]["role"], "owner");

    let r = post_as(
        &s,
        &token,
        &format!("/v1/orgs/{org}/developer-terms/accept"),
        json!({"version": "1999-01"}),
    )
    .await;
    assert_eq!(code(r).await.0, 422, "only the current version");
    let r = post_as(
        &s,
        &token,
        &format!("/v1/orgs/{org}/developer-terms/accept"),
        json!({"version": "2026-01"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let position = position_of(&r);
    let me: Value = s
        .get_at("/v1/me", &token, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["access"]["next_step"], "request_sandbox");
    assert_eq!(me["memberships"][0]["terms_version"], "2026-01");
}

#[tokio::test]
async fn an_invitation_is_accepted_once_by_its_addressee() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("boss@example.com").await;
    let (org, _) = create_org(&s, &owner, "inv-co").await;
    let (dev_id, dev, _) = s.verified_user("dev@example.com").await;
    let (_, other, _) = s.verified_user("other@example.com").await;

    let r = post_as(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/invitations"),
        json!({"email": "DEV@example.com", "role": "developer"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let position = position_of(&r);
    let invitation = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let log: String = db
        .client()
        .await
        .query("SELECT data::text FROM events", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert!(
        !log.contains("dev@example.com"),
        "the invitee's email is sealed"
    );

    let accept = |token: String| {
        let s = &s;
        let invitation = invitation.clone();
        async move {
            s.http
                .post(s.url(&format!("/v1/invitations/{invitation}/accept")))
                .bearer_auth(token)
                .header("gatehouse-min-position", position.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        code(accept(other.clone()).await).await.0,
        404,
        "someone else's invitation"
    );
    let r = accept(dev.clone()).await;
    assert_eq!(r.status(), 200);
    let joined = position_of(&r);
    let (status, body) = code(accept(dev.clone()).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("invitation-used"))
    );

    let members: Value = s
        .get_at(&format!("/v1/orgs/{org}/members"), &dev, joined)
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<(&str, &str)> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_id"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&(dev_id.as_str(), "developer")), "{roles:?}");

    // A revoked invitation cannot be accepted.
    let r = post_as(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/invitations"),
        json!({"email": "other@example.com", "role": "finance"}),
    )
    .await;
    let second = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_as(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/invitations/{second}/revoke"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let revoked_at = position_of(&r);
    let r = s
        .http
        .post(s.url(&format!("/v1/invitations/{second}/accept")))
        .bearer_auth(&other)
        .header("gatehouse-min-position", revoked_at.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await.0, 409);
}

#[tokio::test]
async fn an_expired_invitation_is_refused_and_appends_nothing() {
    let db = fresh_db().await;
    let options = Options {
        invitation_ttl_secs: 1,
        ..Options::default()
    };
    let s = TestServer::start_with(&db, options).await;
    let (_, owner, _) = s.user("boss@example.com").await;
    let (org, _) = create_org(&s, &owner, "expiring-co").await;
    let (_, dev, _) = s.verified_user("dev@example.com").await;
    let r = post_as(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/invitations"),
        json!({"email": "dev@example.com", "role": "developer"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let invitation = body["id"].as_str().unwrap().to_owned();
    let expires_at: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let wait = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(50)).await;

    let before = head(&s).await;
    let r = post_as(
        &s,
        &dev,
        &format!("/v1/invitations/{invitation}/accept"),
        json!({}),
    )
    .await;
    let (status, problem) = code(r).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("invitation-expired")),
        "{problem}"
    );
    assert_eq!(
        head(&s).await,
        before,
        "a refused acceptance appends nothing"
    );
    let r = s.get(&format!("/v1/orgs/{org}/members"), Some(&dev)).await;
    assert_eq!(r.status(), 404, "the invitee did not join");
}

#[tokio::test]
async fn roles_are_enforced_and_the_last_owner_is_protected() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (owner_id, owner, _) = s.user("o@example.com").await;
    let (org, _) = create_org(&s, &owner, "roles-co").await;
    let (dev_id, dev, _) = s.user("d@example.com").await;
    s.join(&owner, &org, "d@example.com", "developer", &dev)
        .await;

    let before = head(&s).await;
    let (status, body) = code(
        post_as(
            &s,
            &dev,
            &format!("/v1/orgs/{org}/invitations"),
            json!({"email": "x@example.com", "role": "developer"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["permission"], "members.manage",
        "the missing permission is named"
    );
    let (status, body) = code(
        post_as(
            &s,
            &dev,
            &format!("/v1/orgs/{org}/developer-terms/accept"),
            json!({"version": "2026-01"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["permission"].as_str()),
        (403, Some("terms.accept"))
    );

    let r = s
        .http
        .delete(s.url(&format!("/v1/orgs/{org}/members/{owner_id}")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let (status, body) = code(r).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("last-owner")));
    let r = s
        .http
        .patch(s.url(&format!("/v1/orgs/{org}/members/{owner_id}")))
        .bearer_auth(&owner)
        .json(&json!({"role": "manager"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await.1["code"], "last-owner");
    let r = s
        .http
        .patch(s.url(&format!("/v1/orgs/{org}/members/{dev_id}")))
        .bearer_auth(&owner)
        .json(&json!({"role": "emperor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await.0, 422);
    assert_eq!(head(&s).await, before, "refused commands append nothing");

    // A removed member loses access on the next request.
    let r = s
        .http
        .delete(s.url(&format!("/v1/orgs/{org}/members/{dev_id}")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.get(&format!("/v1/orgs/{org}/members"), Some(&dev))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_member_of_one_org_gets_not_found_on_every_route_of_another() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, alice, _) = s.user("alice@example.com").await;
    let (_, bob, _) = s.user("bob@example.com").await;
    let (_a, _) = create_org(&s, &alice, "alpha").await;
    let (b, position) = create_org(&s, &bob, "bravo").await;
    let members = s
        .get_at(&format!("/v1/orgs/{b}/members"), &alice, position)
        .await;
    assert_eq!(members.status(), 404);
    let before = head(&s).await;
    for (path, body) in [
        (
            format!("/v1/orgs/{b}/invitations"),
            json!({"email": "e@example.com", "role": "developer"}),
        ),
        (
            format!("/v1/orgs/{b}/developer-terms/accept"),
            json!({"version": "2026-01"}),
        ),
    ] {
        let (status, body) = code(post_as(&s, &alice, &path, body).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not-found")),
            "{path}"
        );
    }
    let missing = uuid::Uuid::now_v7();
    let r = s
        .http
        .delete(s.url(&format!("/v1/orgs/{b}/members/{missing}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(head(&s).await, before);
}

#[tokio::test]
async fn bad_org_input_is_refused_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, _) = s.user("slugs@example.com").await;
    create_org(&s, &token, "taken").await;
    let before = db.log_stats().await;
    let (status, body) = code(
        post_as(
            &s,
            &token,
            "/v1/orgs",
            json!({"slug": "Not A Slug", "name": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["pointer"].as_str()),
        (422, Some("/slug"))
    );
    let (status, body) = code(
        post_as(
            &s,
            &token,
            "/v1/orgs",
            json!({"slug": "taken", "name": "Again"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("slug-taken")));
    let (status, _) = code(
        post_as(
            &s,
            &token,
            "/v1/orgs",
            json!({"slug": "fine-slug", "name": "x".repeat(101)}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = code(post_as(&s, &token, "/v1/orgs", json!({"slug": 7})).await).await;
    assert_eq!(status, 422);
    let r = s
        .http
        .post(s.url("/v1/orgs"))
        .json(&json!({"slug": "anon-co", "name": "Anon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(db.log_stats().await, before);
}

#[tokio::test]
async fn teams_hold_members_of_the_organisation() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (owner_id, owner, _) = s.user("teams@example.com").await;
    let (org, _) = create_org(&s, &owner, "team-co").await;
    let r = post_as(
        &s,
        &owner,
        &format!("/v1/orgs/{org}/teams"),
        json!({"name": "Mobile"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let team = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = code(
        post_as(
            &s,
            &owner,
            &format!("/v1/orgs/{org}/teams"),
            json!({"name": "mobile"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("team-name-taken"))
    );

    let outsider = uuid::Uuid::now_v7();
    let r = s
        .http
        .put(s.url(&format!("/v1/orgs/{org}/teams/{team}/members/{outsider}")))
        .bearer_auth(&owner)
        .json(&json!({"team_role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "only organisation members join teams");
    let r = s
        .http
        .put(s.url(&format!("/v1/orgs/{org}/teams/{team}/members/{owner_id}")))
        .bearer_auth(&owner)
        .json(&json!({"team_role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let position = position_of(&r);
    let teams: Value = s
        .get_at(&format!("/v1/orgs/{org}/teams"), &owner, position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(teams["items"][0]["name"], "Mobile");
    assert_eq!(
        teams["items"][0]["members"][0]["user_id"],
        owner_id.as_str()
    );
    assert_eq!(teams["items"][0]["members"][0]["team_role"], "admin");
}

/// Each role against each org action the API serves so far: 403 naming the
/// permission exactly where `domain::roles::allows` says no. The expected
/// table is written out, so a changed cell fails here too.
#[tokio::test]
async fn each_role_gets_exactly_the_actions_its_permissions_allow() {
    use domain::roles::{allows, Permission, Role};
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, staff, _) = s.verified_user("grid-staff@example.com").await;
    gatehouse_tests::make_staff(&db, "grid-staff@example.com").await;
    let (_, owner, _) = s.user("grid-owner@example.com").await;
    let (org, _) = create_org(&s, &owner, "grid-co").await;
    let mut tokens = vec![(Role::Owner, owner.clone())];
    for role in [
        Role::Manager,
        Role::Developer,
        Role::Finance,
        Role::Compliance,
    ] {
        let email = format!("grid-{}@example.com", role.as_str());
        let (_, token, _) = s.user(&email).await;
        s.join(&owner, &org, &email, role.as_str(), &token).await;
        tokens.push((role, token));
    }
    // Open the Developers workspace so that only roles decide the overview.
    let plan = json!({"plan": "pro", "modules": ["platform.api"], "monthly_call_limit": 1000,
        "subscription_state": "active", "billing_window_start": "2026-11-01T00:00:00Z",
        "billing_window_end": "2026-12-01T00:00:00Z"});
    let mut last = 0;
    for _ in 0..200 {
        let r = s
            .http
            .put(s.url(&format!("/v1/orgs/{org}/plan")))
            .bearer_auth(&staff)
            .json(&plan)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            last = position_of(&r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(last > 0, "staff set the plan");

    // owner, manager, developer, finance, compliance
    let expected: [(Permission, [bool; 5]); 6] = [
        (Permission::ViewOrg, [true, true, true, true, true]),
        (Permission::ManageMembers, [true, true, false, false, false]),
        (Permission::ManageTeams, [true, true, false, false, false]),
        (Permission::AcceptTerms, [true, true, false, false, false]),
        (
            Permission::RequestEnvironments,
            [true, true, false, false, false],
        ),
        (Permission::ManageApps, [true, true, false, false, false]),
    ];
    for (permission, row) in expected {
        for ((role, token), allowed) in tokens.iter().zip(row) {
            assert_eq!(
                allows(*role, permission),
                allowed,
                "the domain table agrees for {role}"
            );
            let r = match permission {
                Permission::ViewOrg => {
                    s.get_at(&format!("/v1/orgs/{org}/members"), token, last)
                        .await
                }
                Permission::ManageMembers => {
                    post_as(
                        &s,
                        token,
                        &format!("/v1/orgs/{org}/invitations"),
                        json!({"email": "grid-new@example.com", "role": "developer"}),
                    )
                    .await
                }
                Permission::ManageTeams => {
                    post_as(
                        &s,
                        token,
                        &format!("/v1/orgs/{org}/teams"),
                        json!({"name": format!("Team of {role}")}),
                    )
                    .await
                }
                Permission::AcceptTerms => {
                    post_as(
                        &s,
                        token,
                        &format!("/v1/orgs/{org}/developer-terms/accept"),
                        json!({"version": "2026-01"}),
                    )
                    .await
                }
                Permission::RequestEnvironments => {
                    post_as(
                        &s,
                        token,
                        &format!("/v1/orgs/{org}/sandbox-access"),
                        json!({}),
                    )
                    .await
                }
                Permission::ManageApps => {
                    s.get_at(&format!("/v1/orgs/{org}/overview"), token, last)
                        .await
                }
                _ => unreachable!("only the permissions above have routes yet"),
            };
            let (status, body) = code(r).await;
            if allowed {
                assert!(
                    status != 403 && status != 404,
                    "{role} may {}: got {status} {body}",
                    permission.as_str()
                );
            } else {
                assert_eq!(status, 403, "{role} may not {}", permission.as_str());
                assert_eq!(body["permission"], permission.as_str());
            }
        }
    }
}

#[tokio::test]
async fn bad_input_on_the_org_routes_is_a_problem_and_appends_nothing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("strict@example.com").await;
    let (org, _) = create_org(&s, &owner, "strict-co").await;
    let before = db.log_stats().await;
    let cases: Vec<(String, Value, u16, &str)> = vec![
        (
            format!("/v1/orgs/{org}/invitations"),
            json!({"email": "not-an-email", "role": "developer"}),
            422,
            "/email",
        ),
        (
            format!("/v1/orgs/{org}/invitations"),
            json!({"email": "a@b.co", "role": "overlord"}),
            422,
            "/role",
        ),
        (
            format!("/v1/orgs/{org}/invitations"),
            json!({"email": "a@b.co"}),
            422,
            "",
        ),
        (
            format!("/v1/orgs/{org}/teams"),
            json!({"name": "   "}),
            422,
            "/name",
        ),
        (
            format!("/v1/orgs/{org}/teams"),
            json!({"name": "t".repeat(101)}),
            422,
            "/name",
        ),
        (
            format!("/v1/orgs/{org}/developer-terms/accept"),
            json!({"version": 2026}),
            422,
            "",
        ),
        (
            format!("/v1/orgs/{org}/developer-terms/accept"),
            json!({}),
            422,
            "",
        ),
        (
            "/v1/orgs/not-a-uuid/teams".to_owned(),
            json!({"name": "x"}),
            400,
            "",
        ),
        (
            "/v1/invitations/not-a-uuid/accept".to_owned(),
            json!({}),
            400,
            "",
        ),
    ];
    for (path, body, status, pointer) in cases {
        let r = post_as(&s, &owner, &path, body.clone()).await;
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json",
            "{path} {body}"
        );
        let (got, problem) = code(r).await;
        assert_eq!(got, status, "{path} {body}: {problem}");
        if !pointer.is_empty() {
            assert_eq!(problem["errors"][0]["pointer"], pointer, "{path} {body}");
        }
    }
    let r = s.get("/v1/orgs/not-a-uuid/members", Some(&owner)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(db.log_stats().await, before, "nothing appended");
}

#[tokio::test]
async fn lists_page_with_a_cursor_without_repeats_or_gaps() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.user("pager@example.com").await;
    let (org, _) = create_org(&s, &owner, "pager-co").await;
    let mut position = 0;
    for i in 0..5 {
        let r = post_as(
            &s,
            &owner,
            &format!("/v1/orgs/{org}/teams"),
            json!({"name": format!("Team {i}")}),
        )
        .await;
        assert_eq!(r.status(), 201);
        position = position_of(&r);
    }
    let mut names = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page: Value = s
            .get_at(
                &format!("/v1/orgs/{org}/teams?limit=2&cursor={cursor}"),
                &owner,
                position,
            )
            .await
            .json()
            .await
            .unwrap();
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(items.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..5).map(|i| format!("Team {i}")).collect();
    assert_eq!(names, expected, "in order, each once");

    for query in ["limit=0", "limit=201", "limit=two", "cursor=not-ours"] {
        let r = s
            .get(&format!("/v1/orgs/{org}/teams?{query}"), Some(&owner))
            .await;
        assert_eq!(r.status(), 400, "{query}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "invalid-query", "{query}");
    }
}

async fn sign_up(s: &TestServer, email: &str, name: &str) -> (String, String) {
    let r = s
        .post(
            "/v1/users",
            json!({"email": email, "name": name, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let r = s
        .post(
            "/v1/sessions",
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    let session: Value = r.json().await.unwrap();
    (
        user["id"].as_str().unwrap().to_owned(),
        session["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_member_list_shows_who_members_are_and_pending_invitations_who_was_asked() {
    use reqwest::Method;
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (owner_id, owner) = sign_up(&s, "ada@example.com", "Ada Lovelace").await;
    let (dev_id, dev) = sign_up(&s, "alan@example.com", "Alan Turing").await;
    let (org, _) = create_org(&s, &owner, "people").await;
    let at = s
        .join(&owner, &org, "alan@example.com", "developer", &dev)
        .await;
    let (status, invited, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/invitations"),
            &owner,
            Some(json!({"email": "grace@example.com", "role": "finance"})),
            at,
        )
        .await;
    assert_eq!(status, 201);

    let (status, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/members"),
            &owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    let people: Vec<(&str, &str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["email"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        people,
        vec![
            ("Ada Lovelace", "ada@example.com", "owner"),
            ("Alan Turing", "alan@example.com", "developer")
        ]
    );
    // A developer sees who their colleagues are, not their emails.
    let (_, seen, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/members"),
            &dev,
            None,
            at,
        )
        .await;
    assert_eq!(seen["items"][0]["name"], "Ada Lovelace");
    assert!(seen["items"][0].get("email").is_none(), "{seen}");

    let (status, pending, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/invitations"),
            &owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let p = &pending["items"][0];
    assert_eq!(p["id"], invited["id"]);
    assert_eq!(p["email"], "grace@example.com");
    assert_eq!(p["role"], "finance");
    assert_eq!(p["invited_by"], owner_id.as_str());
    assert_eq!(p["expires_at"], invited["expires_at"]);
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/invitations"),
            &dev,
            None,
            at,
        )
        .await;
    assert_eq!(status, 403, "developers do not manage members");

    // A role change answers the member as the log recorded them.
    let (status, changed, at) = s
        .call(
            Method::PATCH,
            &format!("/v1/orgs/{org}/members/{dev_id}"),
            &owner,
            Some(json!({"role": "manager"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(changed["role"], "manager");
    assert_eq!(changed["name"], "Alan Turing");
    assert_eq!(
        changed["joined_at"], list["items"][1]["joined_at"],
        "not the time of the change"
    );

    // Once Alan's personal data is shredded, the list says so.
    db.client()
        .await
        .execute(
            "DELETE FROM subject_keys WHERE subject_id = $1",
            &[&dev_id.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    let (_, list, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/members"),
            &owner,
            None,
            at,
        )
        .await;
    assert_eq!(list["items"][1]["name"], "[erased]");
    assert_eq!(list["items"][1]["email"], "[erased]");
    assert!(!list.to_string().contains("Alan"));
}

#[tokio::test]
async fn sign_up_answers_the_time_the_log_recorded() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let r = s
        .post(
            "/v1/users",
            json!({"email": "t@example.com", "name": "T", "password": "correct horse battery"}),
        )
        .await;
    let user: Value = r.json().await.unwrap();
    let recorded: chrono::DateTime<chrono::Utc> = db
        .client()
        .await
        .query_one(
            "SELECT recorded_at FROM events WHERE event_type = 'user.signed_up'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let answered: chrono::DateTime<chrono::Utc> =
        user["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(answered, recorded);
}
