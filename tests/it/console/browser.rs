//! The seeds' flows in a real browser (headless Chromium over WebDriver),
//! typed and clicked as a person would. Every page visited is checked with
//! axe-core (no serious or critical violation), weighed (HTML, CSS and
//! scripts under 100 KiB, nothing from another origin), timed to
//! interactive, and photographed to `target/console/<test>/`.

use fantoccini::Locator;
use gatehouse_tests::browser::Browser;
use gatehouse_tests::fresh_db;
use gatehouse_tests::mail::SmtpSink;
use gatehouse_tests::server::{Options, TestServer, GATEWAY_TOKEN};
use gatehouse_tests::webhooks::Receiver;
use reqwest::Method;
use std::time::Duration;

/// What each page visited weighed and took, printed at the end.
#[derive(Default)]
struct Pages(Vec<(String, u64, f64)>);

impl Pages {
    /// Checks the page the browser shows, names its screenshot `name`.
    async fn check(&mut self, b: &Browser, name: &str) {
        let ready = b.interactive().await;
        let violations = b.axe().await;
        assert!(violations.is_empty(), "{name}: axe found {violations:?}");
        let (bytes, foreign) = b.weight().await;
        assert!(
            foreign.is_empty(),
            "{name}: requests to another origin: {foreign:?}"
        );
        assert!(bytes < 100 * 1024, "{name}: {bytes} bytes");
        b.shot(name).await;
        self.0.push((name.to_owned(), bytes, ready));
    }

    fn print(&self) {
        println!("console page                 bytes   interactive_ms");
        for (name, bytes, ms) in &self.0 {
            println!("{name:<26} {bytes:>8} {ms:>12.1}");
        }
        let mut times: Vec<f64> = self.0.iter().map(|p| p.2).collect();
        times.sort_by(f64::total_cmp);
        let p95 = times[((times.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)];
        println!("console pages {} interactive_p95_ms {p95:.1}", times.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_004_000_003_sign_up_verify_create_an_org_issue_a_key_add_a_webhook_and_see_usage_in_a_browser(
) {
    let Some(b) = Browser::start("access_and_keys").await else {
        return;
    };
    let db = fresh_db().await;
    let sink = SmtpSink::start();
    let s = TestServer::start_with(
        &db,
        Options {
            smtp_url: Some(sink.url.clone()),
            usage_flush_secs: 1,
            ..Options::default()
        },
    )
    .await;
    let staff = s.staff_in(&db, &sink.inbox, "staff@example.com").await;
    let mut pages = Pages::default();

    // The public documentation, open to anyone.
    for (path, name) in [
        ("/docs", "docs-overview"),
        ("/docs/auth", "docs-auth"),
        ("/docs/agents", "docs-agents"),
        ("/docs/api", "docs-api"),
    ] {
        b.open(&s.url(path)).await;
        assert!(!b.text(".tabs a[aria-current=page]").await.is_empty());
        pages.check(&b, name).await;
    }
    assert!(b.text("main").await.contains("/v1/keys/verify"));

    // Seed 004: sign up, verify by the mailed link, attach to an organisation.
    b.open(&s.url("/")).await;
    assert_eq!(b.path().await, "/sign-in");
    pages.check(&b, "sign-in").await;
    b.click("a[href^='/sign-up']").await;
    pages.check(&b, "sign-up").await;
    b.fill("name", "Ada Lovelace").await;
    b.fill("email", "ada@example.com").await;
    b.fill("password", "correct horse battery").await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.path().await, "/access");
    assert!(b.text(".next-step").await.contains("Verify your email"));
    pages.check(&b, "access-unverified").await;

    let mail = sink
        .inbox
        .next("ada@example.com", "Confirm your email")
        .await;
    let token = mail.token("/verify-email");
    b.open(&s.url(&format!("/verify-email?token={token}")))
        .await;
    pages.check(&b, "verify-email").await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.path().await, "/access");
    assert!(b
        .text(".next-step")
        .await
        .contains("Create an organisation"));
    pages.check(&b, "access-verified").await;

    b.click(".next-step a").await;
    pages.check(&b, "org-new").await;
    b.fill("name", "Acme Payments").await;
    b.fill("slug", "acme").await;
    b.click("main button[type=submit]").await;
    let org = b.path().await.trim_start_matches("/orgs/").to_owned();
    assert_eq!(org.len(), 36, "{org}");
    pages.check(&b, "organisation").await;

    // Seed 001's first gate: the developer terms.
    b.click(".next-step a").await;
    assert_eq!(b.path().await, format!("/orgs/{org}/terms"));
    pages.check(&b, "developer-terms").await;
    b.click("main button[type=submit]").await;
    assert!(b.text("main table").await.contains("accepted"));

    // Seed 000: the workspace is locked, with a Pro badge, until the plan
    // has platform.api.
    b.click(&format!("nav a[href='/orgs/{org}/settings/developers']"))
        .await;
    assert!(b.text("main").await.contains("Upgrade required"));
    assert_eq!(b.text("nav .badge.pro").await, "Pro");
    pages.check(&b, "developers-locked").await;
    s.grant_platform_api(&org, &staff).await;
    b.open(&s.url(&format!("/orgs/{org}/settings/developers")))
        .await;
    assert_eq!(b.text(".tabs a[aria-current=page]").await, "Overview");
    pages.check(&b, "developers-overview").await;

    b.click(".tabs a[href$='/apps']").await;
    b.fill("name", "CRM integration").await;
    b.fill("slug", "crm").await;
    b.fill("origins", "https://crm.example").await;
    b.click("main form[method=post][action$='/apps'] button[type=submit]")
        .await;
    assert!(b.path().await.contains("/apps?app="));
    pages.check(&b, "developers-apps").await;

    // Seed 003: issue a key, copy it once, see it in the key table.
    b.click(".tabs a[href$='/keys']").await;
    pages.check(&b, "api-keys-empty").await;
    b.fill("key-name", "crm-integration").await;
    b.click("main form[method=post][action$='/keys'] button[type=submit]")
        .await;
    let key = b.text("#new-key").await;
    pages.check(&b, "api-key-revealed").await;
    b.client
        .find(fantoccini::Locator::Css("[data-copy]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verdict = gatehouse_tests::keys::verify(&s, &key, None).await;
    assert_eq!(verdict["valid"], true, "{verdict}");

    b.click("a.button.secondary").await;
    let table = b.text("#key-table").await;
    assert!(
        table.contains("crm-integration") && !table.contains(&key),
        "{table}"
    );
    pages.check(&b, "api-keys").await;

    // Webhooks: a destination for api_key events, its secret once, a
    // delivery in its log, replayed from there.
    let receiver = Receiver::start().await;
    b.click(".tabs a[href$='/webhooks']").await;
    pages.check(&b, "webhooks-empty").await;
    b.fill("url", &receiver.url("/hooks")).await;
    b.client
        .find(Locator::Css("input[name=families][value='api_key.*']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.click("main form[method=post] button[type=submit]").await;
    let secret = b.text("#new-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    pages.check(&b, "webhook-secret").await;
    b.click("a.button.secondary").await;
    let log = b.path().await;
    pages.check(&b, "webhook-deliveries-empty").await;
    // An api_key event: rotate the key from the key table.
    b.click(".tabs a[href$='/keys']").await;
    b.click("button[aria-label='Rotate crm-integration']").await;
    let rotated = b.text("#new-key").await;
    assert_ne!(rotated, key);
    let first = receiver.wait_for(1, Duration::from_secs(20)).await;
    gatehouse_tests::webhooks::verify(&first[0], &secret).expect("signed with the secret shown");
    b.open(&s.url(&log)).await;
    b.client
        .wait()
        .for_element(Locator::Css("#delivery-log .badge.ok"))
        .await
        .unwrap();
    pages.check(&b, "webhook-deliveries").await;
    b.click("#delivery-log button[aria-label^=Replay]").await;
    receiver.wait_for(2, Duration::from_secs(20)).await;
    b.client
        .wait()
        .for_element(Locator::Css(
            "#delivery-log .badge:not(.ok):not(.bad):not(.warn)",
        ))
        .await
        .unwrap();
    assert!(b.text("#delivery-log").await.contains("replay"));

    // Usage: calls the gateway reports show up per day, drawn and listed.
    let verdict = gatehouse_tests::keys::verify(&s, &rotated, None).await;
    let key_id = verdict["key_id"]
        .as_str()
        .expect("the verdict names the key")
        .to_owned();
    let now = chrono::Utc::now().to_rfc3339();
    let r = s
        .http
        .post(s.url("/v1/usage"))
        .bearer_auth(GATEWAY_TOKEN)
        .json(&serde_json::json!({"records": [
            {"key_id": key_id, "status": 200, "latency_ms": 12, "at": now},
            {"key_id": key_id, "status": 503, "latency_ms": 40, "at": now},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let usage = s.url(&format!("/orgs/{org}/settings/developers/usage"));
    let mut shown = false;
    for _ in 0..300 {
        b.open(&usage).await;
        if b.client.find(Locator::Css("#usage-days")).await.is_ok() {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(shown, "the reported calls never showed");
    let days = b.text("#usage-days tbody").await;
    assert!(days.contains("40") && days.contains("12"), "{days}");
    b.client.find(Locator::Css("svg.chart rect")).await.unwrap();
    pages.check(&b, "usage").await;
    b.click(".tabs a[href$='/docs']").await;
    pages.check(&b, "developers-docs").await;

    // Compliance: the history, filtered; a key as it was; checkpoints.
    b.click(&format!("nav a[href='/orgs/{org}/audit']")).await;
    pages.check(&b, "audit-history").await;
    b.fill("type", "api_key.*").await;
    b.click("form.filters button[type=submit]").await;
    let history = b.text("#audit").await;
    assert!(
        history.contains("api_key.rotated") && !history.contains("org.created"),
        "{history}"
    );
    pages.check(&b, "audit-history-filtered").await;
    let then = (chrono::Utc::now() + chrono::Duration::seconds(1)).format("%Y-%m-%dT%H:%M:%S");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.open(&s.url(&format!("/orgs/{org}/audit/as-of?key={key_id}&at={then}")))
        .await;
    assert!(b.text("#key-then").await.contains("active"));
    pages.check(&b, "audit-as-of").await;
    b.click(".tabs a[href$='/checkpoints']").await;
    pages.check(&b, "audit-checkpoints").await;
    pages.print();
}

/// Signs out whoever is signed in, then signs `email` in.
async fn sign_in(b: &Browser, s: &TestServer, email: &str) {
    b.open(&s.url("/access")).await;
    if b.client
        .find(Locator::Css("form[action='/sign-out'] button"))
        .await
        .is_ok()
    {
        b.click("form[action='/sign-out'] button").await;
    }
    b.open(&s.url("/sign-in")).await;
    b.fill("email", email).await;
    b.fill("password", "correct horse battery").await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.path().await, "/access", "{email} signed in");
}

/// Signs `email` up, verifies it by the mailed link and creates an
/// organisation with the developer terms accepted, in the browser; returns
/// the organisation's id.
async fn owner_with_org(
    b: &Browser,
    s: &TestServer,
    sink: &SmtpSink,
    email: &str,
    slug: &str,
) -> String {
    b.open(&s.url("/sign-up")).await;
    b.fill("name", "Grace Hopper").await;
    b.fill("email", email).await;
    b.fill("password", "correct horse battery").await;
    b.click("main button[type=submit]").await;
    let mail = sink.inbox.next(email, "Confirm your email").await;
    let token = mail.token("/verify-email");
    b.open(&s.url(&format!("/verify-email?token={token}")))
        .await;
    b.click("main button[type=submit]").await;
    b.open(&s.url("/orgs/new")).await;
    b.fill("name", "Payroll Co").await;
    b.fill("slug", slug).await;
    b.click("main button[type=submit]").await;
    let org = b.path().await.trim_start_matches("/orgs/").to_owned();
    b.open(&s.url(&format!("/orgs/{org}/terms"))).await;
    b.click("main button[type=submit]").await;
    org
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_001_002_build_publish_and_secure_an_app_and_subscribe_it_to_a_product_in_a_browser()
{
    let Some(b) = Browser::start("portal").await else {
        return;
    };
    let db = fresh_db().await;
    let sink = SmtpSink::start();
    let s = TestServer::start_with(
        &db,
        Options {
            smtp_url: Some(sink.url.clone()),
            ..Options::default()
        },
    )
    .await;
    let staff = s.staff_in(&db, &sink.inbox, "staff@example.com").await;
    let product = serde_json::json!({"name": "Payroll", "scopes": ["payroll.read"], "approval": {"mode": "manual"}});
    let (status, _, _) = s
        .call(Method::POST, "/v1/staff/products", &staff, Some(product), 0)
        .await;
    assert_eq!(status, 201);
    let mut pages = Pages::default();
    let org = owner_with_org(&b, &s, &sink, "grace@example.com", "payroll-co").await;
    s.grant_platform_api(&org, &staff).await;

    // The dashboard, and a new app.
    b.open(&s.url(&format!("/orgs/{org}/portal"))).await;
    pages.check(&b, "portal-dashboard-empty").await;
    b.fill("name", "Payroll Sync").await;
    b.fill("slug", "payroll-sync").await;
    b.fill("description", "Syncs payroll runs").await;
    b.click("main form[method=post] button[type=submit]").await;
    let app_page = b.path().await;
    assert_eq!(b.text(".tabs a[aria-current=page]").await, "General");
    pages.check(&b, "portal-general").await;
    // Seed 002's editable details: callback URLs and custom attributes,
    // one removed again by deleting its line.
    b.fill("callback_urls", "https://payroll.example/callback")
        .await;
    b.fill("attributes", "tier=gold\nregion=eu").await;
    b.click("main form[method=post] button[type=submit]").await;
    let attributes = b.text("#attributes").await;
    assert!(
        attributes.contains("tier=gold") && attributes.contains("region=eu"),
        "{attributes}"
    );
    assert!(b
        .text("#callback_urls")
        .await
        .contains("https://payroll.example/callback"));
    b.fill("attributes", "tier=gold").await;
    b.click("main form[method=post] button[type=submit]").await;
    assert!(!b.text("#attributes").await.contains("region"));

    // Versions: a draft, a manifest with a problem shown by field, then a
    // valid one, published, and an install link.
    b.click(".tabs a[href$='/versions']").await;
    pages.check(&b, "portal-versions").await;
    b.fill("label", "1.0.0").await;
    b.click("main form[method=post] button[type=submit]").await;
    b.fill("manifest", r#"{"scopes": ["Not A Scope"]}"#).await;
    b.click("button[value=save]").await;
    b.click("button[value=validate]").await;
    let problems = b.text("[role=alert]").await;
    assert!(problems.contains("/manifest/scopes/0"), "{problems}");
    pages.check(&b, "portal-version-invalid").await;
    b.fill(
        "manifest",
        r#"{"name": "Payroll Sync", "scopes": ["payroll.read"], "webhooks": {"categories": ["payroll.*"], "data_types": ["payslip"]}}"#,
    )
    .await;
    b.click("button[value=save]").await;
    b.click("button[value=validate]").await;
    assert!(b.text("[role=status]").await.contains("valid"));
    b.click("button[value=publish]").await;
    assert_eq!(b.text("h2 .badge").await, "published");
    b.click("main form[method=post] button[type=submit]").await;
    let link = b.text("#install-link").await;
    assert!(link.starts_with("/install?token="), "{link}");
    pages.check(&b, "portal-version-published").await;
    // The link installs the app into a workspace the person picks.
    b.open(&s.url(&link)).await;
    pages.check(&b, "install").await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.path().await, format!("/orgs/{org}/installations"));
    assert_eq!(
        b.client
            .find_all(Locator::Css("#installations tbody tr"))
            .await
            .unwrap()
            .len(),
        1
    );
    pages.check(&b, "installations").await;
    b.open(&s.url(&app_page)).await;

    // Security: client credentials, the secret once.
    b.click(".tabs a[href$='/security']").await;
    b.fill("client-name", "payroll-backend").await;
    b.click("main form[action$='/clients'] button[type=submit]")
        .await;
    let secret = b.text("#client-secret").await;
    assert!(secret.len() > 20);
    pages.check(&b, "portal-security").await;
    b.click(".tabs a[href$='/security']").await;
    assert!(!b.client.source().await.unwrap().contains(&secret));

    // Products (seed 002): subscribe, pending until staff decide.
    b.click(".tabs a[href$='/products']").await;
    b.click("main form[method=post] button[type=submit]").await;
    assert_eq!(b.text("#subscriptions .badge").await, "pending");
    pages.check(&b, "portal-products-pending").await;
    // Staff approve it from their queue, in the browser.
    sign_in(&b, &s, "staff@example.com").await;
    b.open(&s.url("/staff")).await;
    pages.check(&b, "staff-queue").await;
    let rows = b
        .client
        .find_all(Locator::Css("#approvals tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    b.client
        .find(Locator::Css("#approvals input[name=request]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.fill("bulk-reason", "meets the payroll terms").await;
    b.click("button[name=decision][value=approve]").await;
    assert!(
        b.client.find(Locator::Css("#approvals")).await.is_err(),
        "the queue is empty"
    );
    b.click(".tabs a[href='/staff/reports']").await;
    pages.check(&b, "staff-reports").await;
    b.click(".tabs a[href='/staff/operations']").await;
    pages.check(&b, "staff-operations").await;
    sign_in(&b, &s, "grace@example.com").await;
    let mut approved = false;
    for _ in 0..300 {
        b.open(&s.url(&format!("{app_page}/products"))).await;
        if b.text("#subscriptions .badge").await == "approved" {
            approved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(approved);
    pages.check(&b, "portal-products-approved").await;
    b.click(".tabs a[href$='/webhooks']").await;
    // The categories and data types the published version declares.
    let declared = b.text("main").await;
    assert!(
        declared.contains("payroll.*") && declared.contains("payslip"),
        "{declared}"
    );
    pages.check(&b, "portal-webhooks").await;
    pages.print();
}
