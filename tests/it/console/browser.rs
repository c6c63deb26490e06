//! The seeds' flows in a real browser (headless Chromium over WebDriver),
//! typed and clicked as a person would. Every page visited is checked with
//! axe-core (no serious or critical violation), weighed (HTML, CSS and
//! scripts under 100 KiB, nothing from another origin), timed to
//! interactive, and photographed to `target/console/<test>/`.

use gatehouse_tests::browser::Browser;
use gatehouse_tests::fresh_db;
use gatehouse_tests::mail::SmtpSink;
use gatehouse_tests::server::{Options, TestServer};
use reqwest::Method;

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
async fn seed_004_and_000_and_003_sign_up_verify_create_an_org_and_issue_a_key_in_a_browser() {
    let Some(b) = Browser::start("access_and_keys").await else {
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
    let mut pages = Pages::default();

    // Seed 004: sign up, verify by the mailed link, attach to an organisation.
    b.open(&s.url("/")).await;
    assert_eq!(b.path().await, "/sign-in");
    pages.check(&b, "sign-in").await;
    b.click("a[href='/sign-up']").await;
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
    let plan = serde_json::json!({
        "plan": "pro", "modules": ["platform.api"], "monthly_call_limit": 250000,
        "subscription_state": "active",
        "billing_window_start": "2026-11-01T00:00:00Z", "billing_window_end": "2026-12-01T00:00:00Z",
    });
    let (status, _, _) = s
        .call(
            Method::PUT,
            &format!("/v1/orgs/{org}/plan"),
            &staff,
            Some(plan),
            0,
        )
        .await;
    assert_eq!(status, 200);
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
    pages.print();
}
