//! The console's pages over HTTP, read with an HTML parser: the headers
//! every page carries, cross-site and token checks, the workspace's locked
//! state and Pro badge, its tabs, the key table, and a key's plaintext on
//! the one page that issued it.

use gatehouse_tests::console::{Answer, Visitor};
use gatehouse_tests::fresh_db;
use gatehouse_tests::mail::SmtpSink;
use gatehouse_tests::server::{Options, TestServer};

const PASSWORD: &str = "correct horse battery";

/// A server that sends its mail to a real SMTP server on loopback.
async fn with_mail(db: &gatehouse_tests::TestDb) -> (TestServer, SmtpSink) {
    let sink = SmtpSink::start();
    let options = Options {
        smtp_url: Some(sink.url.clone()),
        ..Options::default()
    };
    (TestServer::start_with(db, options).await, sink)
}

/// Signs `email` up at the console; the visitor is then signed in.
async fn sign_up(s: &TestServer, email: &str) -> Visitor {
    let mut v = Visitor::new(&s.base);
    let page = v
        .post(
            "/sign-up",
            &[
                ("name", "Ada Lovelace"),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        (page.status, page.path.as_str()),
        (200, "/access"),
        "{}",
        page.body
    );
    v
}

/// The verification mail's link, opened and confirmed in the console.
async fn verify(
    s: &TestServer,
    v: &mut Visitor,
    inbox: &gatehouse_tests::mail::Inbox,
    email: &str,
) {
    let mail = inbox.next(email, "Confirm your email").await;
    let token = mail.token("/verify-email");
    let page = v.get(&format!("/verify-email?token={token}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.attrs("input[name=token]", "value"),
        vec![token.clone()]
    );
    let form = page.form_token();
    let page = v
        .post(
            "/verify-email",
            &[("_form_token", &form), ("token", &token)],
        )
        .await;
    assert_eq!(
        (page.status, page.path.as_str()),
        (200, "/access"),
        "{}",
        page.body
    );
    let _ = s;
}

/// Creates an organisation from the console; returns its id.
async fn create_org(v: &mut Visitor, slug: &str) -> String {
    let form = v.get("/orgs/new").await.form_token();
    let page = v
        .post(
            "/orgs/new",
            &[("_form_token", &form), ("name", "Acme"), ("slug", slug)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.path.trim_start_matches("/orgs/").to_owned()
}

fn assert_console_headers(page: &Answer, what: &str) {
    let csp = page.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} in {csp:?}");
    }
    assert_eq!(
        page.header("cache-control").as_deref(),
        Some("no-store"),
        "{what}"
    );
    assert_eq!(
        page.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    // No inline script or style anywhere: the CSP would block it.
    assert!(
        page.attrs("script:not([src])", "type").is_empty() && !page.body.contains("<script>"),
        "{what}"
    );
    assert!(
        !page.body.contains("<style") && !page.body.contains(" style="),
        "{what}"
    );
}

#[tokio::test]
async fn every_console_page_carries_the_csp_and_no_store_and_no_inline_code() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let mut anonymous = Visitor::new(&s.base);
    for path in ["/sign-in", "/sign-up", "/reset-password"] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_console_headers(&page, path);
    }
    // A wrong address: a page for a browser, a problem for the API.
    let r = s
        .http
        .get(s.url("/no-such-page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let r = s
        .http
        .get(s.url("/v1/no-such-thing"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));

    // Signed out, a console page leads to the sign-in page.
    let page = anonymous.get("/access").await;
    assert_eq!(page.path, "/sign-in?next=%2Faccess");

    let mut v = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    let org = create_org(&mut v, "acme").await;
    for path in [
        "/access".to_owned(),
        "/orgs/new".to_owned(),
        format!("/orgs/{org}"),
        format!("/orgs/{org}/terms"),
        format!("/orgs/{org}/settings/developers"),
    ] {
        let page = v.get(&path).await;
        assert!(
            page.status == 200 || page.status == 402,
            "{path}: {}",
            page.status
        );
        assert_console_headers(&page, &path);
    }
    // An asset may be cached; it is still under the policy.
    let css = v.get("/assets/console-1.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("cache-control").unwrap().contains("immutable"));
    assert!(css.header("content-security-policy").is_some());
}

#[tokio::test]
async fn a_cross_site_form_is_refused_with_403_and_changes_nothing() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let mut v = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    let token = v.get("/orgs/new").await.form_token();
    let (before, _) = db.log_stats().await;

    let fields = [
        ("_form_token", token.as_str()),
        ("name", "Evil"),
        ("slug", "evil"),
    ];
    let page = v
        .post_from("/orgs/new", &fields, "https://evil.example")
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page
        .texts("h1")
        .contains(&"Cross-site request refused".to_owned()));
    // The right origin but another session's token.
    let wrong = [("_form_token", "0000"), ("name", "Evil"), ("slug", "evil")];
    let page = v.post("/orgs/new", &wrong).await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = v
        .post("/orgs/new", &[("name", "Evil"), ("slug", "evil")])
        .await;
    assert_eq!(page.status, 403, "a form without its token");
    let (after, _) = db.log_stats().await;
    assert_eq!(before, after, "nothing was appended");
    assert!(
        v.get("/access").await.texts("td a").is_empty(),
        "no organisation"
    );

    // The same form from the console goes through.
    let page = v.post("/orgs/new", &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn a_form_error_is_shown_on_its_field_and_the_access_page_names_the_next_step() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    // A short password: the sign-up form again, the problem on its field.
    let mut v = Visitor::new(&s.base);
    let page = v
        .post(
            "/sign-up",
            &[
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(
        page.attrs("#password", "aria-invalid"),
        vec!["true".to_owned()]
    );
    assert_eq!(page.texts("#password-error").len(), 1);
    assert_eq!(
        page.attrs("#email", "value"),
        vec!["ada@example.com".to_owned()]
    );

    let mut v = sign_up(&s, "ada@example.com").await;
    let page = v.get("/access").await;
    assert_eq!(
        page.attrs(".next-step a", "href"),
        vec!["/verify-email".to_owned()]
    );
    assert_eq!(page.texts(".lane li[aria-current=step]").len(), 1);
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    let page = v.get("/access").await;
    assert_eq!(
        page.attrs(".next-step a", "href"),
        vec!["/orgs/new".to_owned()]
    );
    let org = create_org(&mut v, "acme").await;
    let page = v.get("/access").await;
    assert_eq!(
        page.attrs(".next-step a", "href"),
        vec![format!("/orgs/{org}/terms")]
    );
    // A slug already taken: the problem on the slug field.
    let token = page.form_token();
    let page = v
        .post(
            "/orgs/new",
            &[
                ("_form_token", &token),
                ("name", "Acme 2"),
                ("slug", "acme"),
            ],
        )
        .await;
    assert!(
        page.status == 409 || page.status == 422,
        "{}: {}",
        page.status,
        page.body
    );
    assert!(!page.texts("[role=alert]").is_empty(), "{}", page.body);
}

#[tokio::test]
async fn the_workspace_is_locked_with_a_pro_badge_until_the_plan_has_platform_api() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let staff = s.staff_in(&db, &sink.inbox, "staff@example.com").await;
    let mut v = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    let org = create_org(&mut v, "acme").await;

    let page = v.get(&format!("/orgs/{org}/settings/developers")).await;
    assert_eq!(page.status, 402, "{}", page.body);
    assert_eq!(page.texts("h2"), vec!["Upgrade required".to_owned()]);
    assert_eq!(page.texts("nav .badge.pro"), vec!["Pro".to_owned()]);
    let page = v
        .get(&format!("/orgs/{org}/settings/developers/keys"))
        .await;
    assert_eq!(page.status, 402, "every tab is locked");

    s.grant_platform_api(&org, &staff).await;
    let page = v.get(&format!("/orgs/{org}/settings/developers")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.texts("nav .badge.pro").is_empty());
    assert_eq!(
        page.texts(".tabs a"),
        ["Overview", "Apps", "API Keys", "Webhooks", "Usage", "Docs"]
            .map(String::from)
            .to_vec()
    );
    assert_eq!(
        page.texts(".tabs a[aria-current=page]"),
        vec!["Overview".to_owned()]
    );
    assert_eq!(page.texts(".card .value")[0], "pro");
}

#[tokio::test]
async fn a_keys_plaintext_is_on_the_page_that_issued_it_and_on_no_other() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let staff = s.staff_in(&db, &sink.inbox, "staff@example.com").await;
    let mut v = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    let org = create_org(&mut v, "acme").await;
    let token = v.get(&format!("/orgs/{org}/terms")).await.form_token();
    let page = v
        .post(
            &format!("/orgs/{org}/terms"),
            &[("_form_token", &token), ("version", "2026-01")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    s.grant_platform_api(&org, &staff).await;

    let apps = format!("/orgs/{org}/settings/developers/apps");
    let page = v.get(&apps).await;
    let token = page.form_token();
    // A bad slug: 422 and the problem on the field.
    let page = v
        .post(
            &apps,
            &[
                ("_form_token", &token),
                ("name", "CRM"),
                ("slug", "NO SPACES"),
                ("origins", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(page.attrs("#slug", "aria-invalid"), vec!["true".to_owned()]);
    let page = v
        .post(
            &apps,
            &[
                ("_form_token", &token),
                ("name", "CRM"),
                ("slug", "crm"),
                ("origins", "https://crm.example"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let app = page.path.rsplit("app=").next().unwrap().to_owned();

    let keys = format!("/orgs/{org}/settings/developers/keys?app={app}");
    let page = v.get(&keys).await;
    assert_eq!(page.texts(".empty").len(), 1, "no keys yet: {}", page.body);
    let issued = v
        .post(
            &format!("/orgs/{org}/settings/developers/apps/{app}/keys"),
            &[
                ("_form_token", &token),
                ("name", "crm-integration"),
                ("mode", "test"),
                ("type", "secret"),
                ("scopes", ""),
                ("expires_on", ""),
            ],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.header("cache-control").as_deref(), Some("no-store"));
    let plaintext = issued.texts("#new-key").pop().expect("the key is shown");
    assert!(plaintext.len() > 20, "{plaintext}");
    assert_eq!(
        issued.attrs("[data-copy]", "data-copy"),
        vec!["new-key".to_owned()]
    );

    // The key works at the gateway.
    let verdict = gatehouse_tests::keys::verify(&s, &plaintext, None).await;
    assert_eq!(verdict["valid"], true, "{verdict}");

    // The key table: the seed's columns, the key's row, and no plaintext.
    let page = v.get(&keys).await;
    assert_eq!(
        page.texts("#key-table th"),
        [
            "Name",
            "Prefix",
            "Usage count",
            "Last used",
            "Expiry",
            "Status",
            "Actions"
        ]
        .map(String::from)
        .to_vec()
    );
    assert_eq!(page.texts("#key-table tbody tr").len(), 1);
    for path in [
        keys.clone(),
        format!("/orgs/{org}/settings/developers"),
        format!("/orgs/{org}/settings/developers/apps?app={app}"),
        "/access".to_owned(),
        format!("/orgs/{org}"),
    ] {
        let page = v.get(&path).await;
        assert!(
            !page.body.contains(&plaintext),
            "the plaintext is on {path}"
        );
    }

    // Revoking asks first, then the key stops verifying.
    let revoke = page.attrs("a[aria-label^=Revoke]", "href").pop().unwrap();
    let key_id = revoke
        .split("/keys/")
        .nth(1)
        .unwrap()
        .trim_end_matches("/revoke")
        .to_owned();
    // The form takes whole seconds: one clearly after the issue and before
    // the revocation.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before_revoke = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let confirm = v.get(&revoke).await;
    assert!(confirm.body.contains("cannot be undone"));
    let page = v
        .post(&revoke, &[("_form_token", &token), ("reason", "unused")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.texts("#key-table .badge.bad"),
        vec!["revoked".to_owned()]
    );
    gatehouse_tests::keys::until_verdict(&s, &plaintext, "revoked").await;

    // Compliance: the history filtered by family, readable, exported in
    // both formats, and the key as it was before its revocation.
    let history = v.get(&format!("/orgs/{org}/audit?type=api_key.*")).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let actions = history.texts("#audit tbody td:nth-child(2)");
    assert_eq!(
        actions,
        ["api_key.revoked", "api_key.issued"]
            .map(String::from)
            .to_vec()
    );
    let bad = v.get(&format!("/orgs/{org}/audit?from=yesterday")).await;
    assert_eq!(bad.status, 200);
    assert!(!bad.texts("[role=alert]").is_empty(), "{}", bad.body);
    let jsonl = v
        .get(&format!(
            "/orgs/{org}/audit/export?type=api_key.*&format=jsonl"
        ))
        .await;
    assert_eq!(jsonl.status, 200);
    let lines: Vec<&str> = jsonl.body.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "two entries and the signed manifest: {}",
        jsonl.body
    );
    assert!(lines[2].contains("\"signature\""), "{}", lines[2]);
    let csv = v
        .get(&format!(
            "/orgs/{org}/audit/export?type=api_key.*&format=csv"
        ))
        .await;
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.body.starts_with("position,occurred_at,action"));
    let then = v
        .get(&format!(
            "/orgs/{org}/audit/as-of?key={key_id}&at={before_revoke}"
        ))
        .await;
    assert_eq!(then.status, 200, "{}", then.body);
    assert!(
        then.texts("#key-then td").contains(&"active".to_owned()),
        "{}",
        then.body
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let now = v
        .get(&format!("/orgs/{org}/audit/as-of?key={key_id}&at={now}"))
        .await;
    assert!(
        now.texts("#key-then td").contains(&"revoked".to_owned()),
        "{}",
        now.body
    );

    // A webhook destination's signing secret: likewise, once.
    let created = v
        .post(
            &format!("/orgs/{org}/settings/developers/apps/{app}/webhooks"),
            &[
                ("_form_token", &token),
                ("url", "http://127.0.0.1:9/in"),
                ("families", "api_key.*"),
                ("families", "app.*"),
                ("mode", "test"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.header("cache-control").as_deref(), Some("no-store"));
    let secret = created
        .texts("#new-secret")
        .pop()
        .expect("the secret is shown");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let log = created.attrs("a.button.secondary", "href").pop().unwrap();
    for path in [
        log.clone(),
        format!("{log}/deliveries"),
        format!("/orgs/{org}/settings/developers/webhooks?app={app}"),
    ] {
        let page = v.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(&secret), "the secret is on {path}");
    }
    let tab = v
        .get(&format!(
            "/orgs/{org}/settings/developers/webhooks?app={app}"
        ))
        .await;
    assert_eq!(tab.texts("#endpoints tbody tr").len(), 1);
    assert!(tab.texts("#endpoints td").join(" ").contains("api_key.*"));
}

#[tokio::test]
async fn an_invitation_is_mailed_accepted_after_signing_in_and_its_member_managed() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let mut owner = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut owner, &sink.inbox, "ada@example.com").await;
    let org = create_org(&mut owner, "acme").await;
    let people = format!("/orgs/{org}/people");
    let page = owner.get(&people).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.texts("#members tbody tr").len(), 1);
    let token = page.form_token();
    let page = owner
        .post(
            &format!("{people}/invitations"),
            &[
                ("_form_token", &token),
                ("email", "bob@example.com"),
                ("role", "developer"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.texts("#invitations tbody tr").len(), 1);

    // Bob has an account; the link, opened signed out, goes by the
    // sign-in page and back.
    let mut bob = sign_up(&s, "bob@example.com").await;
    verify(&s, &mut bob, &sink.inbox, "bob@example.com").await;
    let mail = sink.inbox.next("bob@example.com", "You are invited").await;
    let link_token = mail.token("/invitations/accept");
    let mut signed_out = Visitor::new(&s.base);
    let link = format!("/invitations/accept?token={link_token}");
    let page = signed_out.get(&link).await;
    assert_eq!(
        page.path,
        format!(
            "/sign-in?next={}",
            link.replace('/', "%2F")
                .replace('?', "%3F")
                .replace('=', "%3D")
        )
    );
    assert_eq!(page.attrs("input[name=next]", "value"), vec![link.clone()]);
    let page = signed_out
        .post(
            "/sign-in",
            &[
                ("email", "bob@example.com"),
                ("password", PASSWORD),
                ("next", &link),
            ],
        )
        .await;
    assert_eq!(
        (page.status, page.path.as_str()),
        (200, link.as_str()),
        "{}",
        page.body
    );
    let form = page.form_token();
    let page = signed_out
        .post(
            "/invitations/accept",
            &[("_form_token", &form), ("token", &link_token)],
        )
        .await;
    assert_eq!(
        (page.status, page.path.as_str()),
        (200, "/access"),
        "{}",
        page.body
    );
    assert_eq!(page.texts("tbody td a"), vec!["Acme".to_owned()]);

    // The owner sees Bob, changes his role, then removes him.
    let page = owner.get(&people).await;
    assert_eq!(page.texts("#members tbody tr").len(), 2);
    assert!(page.texts("#invitations tbody tr").is_empty());
    let change = page
        .attrs("#members form[action$='/role']", "action")
        .into_iter()
        .find(|a| !a.contains(&owner_id(&page)))
        .unwrap();
    let page = owner
        .post(&change, &[("_form_token", &token), ("role", "finance")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .texts("#members option[selected]")
        .contains(&"finance".to_owned()));
    let remove = page
        .attrs("#members form[action$='/remove']", "action")
        .pop()
        .unwrap();
    let page = owner.post(&remove, &[("_form_token", &token)]).await;
    assert_eq!(page.texts("#members tbody tr").len(), 1, "{}", page.body);
    let _ = bob.get("/access").await;
}

/// The signed-in owner's user id, from the one member row without a
/// remove button.
fn owner_id(page: &Answer) -> String {
    let removable = page.attrs("#members form[action$='/remove']", "action");
    page.attrs("#members form[action$='/role']", "action")
        .into_iter()
        .map(|a| {
            a.trim_end_matches("/role")
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .find(|id| !removable.iter().any(|r| r.contains(id)))
        .unwrap()
}

#[tokio::test]
async fn an_expired_session_cookie_never_blocks_signing_in_again() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let mut v = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    // The session ends (an idle timeout, a sign-out elsewhere): the
    // browser still holds its cookie.
    v.cookies.insert(
        "__Host-gatehouse-session".into(),
        "gsess_this-session-is-long-gone".into(),
    );
    let page = v.get("/access").await;
    assert!(page.path.starts_with("/sign-in"), "{}", page.path);
    v.cookies.insert(
        "__Host-gatehouse-session".into(),
        "gsess_this-session-is-long-gone".into(),
    );
    let page = v
        .post(
            "/sign-in",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "/access"),
            ],
        )
        .await;
    assert_eq!(
        (page.status, page.path.as_str()),
        (200, "/access"),
        "{}",
        page.body
    );
    let page = v
        .post("/reset-password", &[("email", "ada@example.com")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn an_app_under_another_organisations_address_is_not_found_and_changes_nothing() {
    let db = fresh_db().await;
    let (s, sink) = with_mail(&db).await;
    let staff = s.staff_in(&db, &sink.inbox, "staff@example.com").await;
    let mut v = sign_up(&s, "ada@example.com").await;
    verify(&s, &mut v, &sink.inbox, "ada@example.com").await;
    let acme = create_org(&mut v, "acme").await;
    let beta = create_org(&mut v, "beta").await;
    for org in [&acme, &beta] {
        let token = v.get(&format!("/orgs/{org}/terms")).await.form_token();
        v.post(
            &format!("/orgs/{org}/terms"),
            &[("_form_token", &token), ("version", "2026-01")],
        )
        .await;
        s.grant_platform_api(org, &staff).await;
    }
    let token = v.get(&format!("/orgs/{acme}/portal")).await.form_token();
    let page = v
        .post(
            &format!("/orgs/{acme}/portal/apps"),
            &[
                ("_form_token", &token),
                ("name", "CRM"),
                ("slug", "crm"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let app = page.path.rsplit('/').next().unwrap().to_owned();
    // Acme's app, under Beta's address: not found, for a page and a form.
    let page = v.get(&format!("/orgs/{beta}/portal/apps/{app}")).await;
    assert_eq!(page.status, 404, "{}", page.body);
    let (before, _) = db.log_stats().await;
    let page = v
        .post(
            &format!("/orgs/{beta}/settings/developers/apps/{app}/keys"),
            &[
                ("_form_token", &token),
                ("name", "k"),
                ("mode", "test"),
                ("type", "secret"),
            ],
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert_eq!(db.log_stats().await.0, before, "nothing was appended");
    // Under its own address, it is there.
    let page = v.get(&format!("/orgs/{acme}/portal/apps/{app}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
}
