//! Accounts you can trust: addresses proven by real mail, invitations that
//! name their holder, staff only for proven accounts, passwords changed and
//! reset by mail, sessions that end, and throttles that stop an attacker
//! without locking the owner out. Each test is an attack or a user's flow
//! over HTTP.

use gatehouse_tests::fresh_db;
use gatehouse_tests::mail::SmtpSink;
use gatehouse_tests::server::{position_of, Options, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

async fn sign_in(s: &TestServer, email: &str, password: &str) -> reqwest::Response {
    s.post(
        "/v1/sessions",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn token_of(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_invitees_address_squatted_by_a_manager_never_makes_the_manager_an_owner() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.verified_user("owner@acme.test").await;
    let (status, org, _) = s
        .call(
            Method::POST,
            "/v1/orgs",
            &owner,
            Some(json!({"slug": "acme", "name": "Acme"})),
            0,
        )
        .await;
    assert_eq!(status, 201);
    let org = org["id"].as_str().unwrap().to_owned();
    // The manager joins properly, with their own proven address.
    let (_, manager, _) = s.verified_user("manager@acme.test").await;
    s.join(&owner, &org, "manager@acme.test", "manager", &manager)
        .await;
    // The owner invites a second owner.
    let (status, invitation, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/invitations"),
            &owner,
            Some(json!({"email": "cfo@acme.test", "role": "owner"})),
            0,
        )
        .await;
    assert_eq!(status, 201);
    let invitation = invitation["id"].as_str().unwrap().to_owned();
    // The manager sees the pending invitation and the invitee's address...
    let (status, pending, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{org}/invitations"),
            &manager,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending["items"][0]["email"], "cfo@acme.test");
    assert!(pending["items"][0].get("token").is_none(), "{pending}");
    // ...and signs a second account up with it before the invitee does.
    let (_, squatter, _) = s.user("cfo@acme.test").await;
    let accept = format!("/v1/invitations/{invitation}/accept");
    let (status, problem, _) = s.call(Method::POST, &accept, &squatter, None, at).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("email-unverified")),
        "an unproven address is no proof: {problem}"
    );
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/invitations/accept",
            &squatter,
            Some(json!({"token": "guessed-token"})),
            at,
        )
        .await;
    assert_eq!(status, 410, "a guessed token opens nothing");
    // The manager's own proven account is not the invitee either.
    let (status, _, _) = s.call(Method::POST, &accept, &manager, None, at).await;
    assert_eq!(status, 404);
    // Nor can the squatter be made staff.
    let refused = make_staff_result(&db, "cfo@acme.test").await;
    assert!(refused.contains("proven"), "{refused}");

    // The real invitee signs up too and opens the invitation mail.
    let (_, invitee, _) = s.user("cfo@acme.test").await;
    let mail = s.mail.next("cfo@acme.test", "You are invited").await;
    let (status, member, joined) = s
        .call(
            Method::POST,
            "/v1/invitations/accept",
            &invitee,
            Some(json!({"token": mail.token("/invitations/accept")})),
            at,
        )
        .await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["role"], "owner");
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/invitations/accept",
            &squatter,
            Some(json!({"token": mail.token("/invitations/accept")})),
            joined,
        )
        .await;
    assert_eq!(status, 410, "the link works once");
    // The invitee proves the address: the squatter loses it and its session.
    let verify_mails: Vec<_> = s
        .mail
        .all()
        .into_iter()
        .filter(|m| m.to == "cfo@acme.test" && m.subject.contains("Confirm"))
        .collect();
    assert_eq!(verify_mails.len(), 2, "one link per sign-up");
    // A link works only for its own account: the squatter's link (the
    // first) is useless to the invitee, signed in as themselves.
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/email-verifications",
            &invitee,
            Some(json!({"token": verify_mails[0].token("/verify-email")})),
            0,
        )
        .await;
    assert_eq!(status, 410, "another account's link proves nothing");
    let (status, _, at) = s
        .call(
            Method::POST,
            "/v1/email-verifications",
            &invitee,
            Some(json!({"token": verify_mails[1].token("/verify-email")})),
            0,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.get_at("/v1/me", &squatter, at).await.status(), 401);
    let me: Value = s.get_at("/v1/me", &invitee, at).await.json().await.unwrap();
    assert_eq!(me["user"]["email_verified"], true);
    // The squatter's session is gone, and its link with it.
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/email-verifications",
            &squatter,
            Some(json!({"token": verify_mails[0].token("/verify-email")})),
            0,
        )
        .await;
    assert_eq!(status, 401);
}

async fn make_staff_result(db: &gatehouse_tests::TestDb, email: &str) -> String {
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    let vault = api::vault::Vault::new([7u8; 32]);
    match api::admin::create_staff(&store, &vault, email).await {
        Ok(done) => done,
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn only_a_proven_account_becomes_staff_and_revoking_staff_ends_its_sessions() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, token, _) = s.user("ops@example.com").await;
    let refused = make_staff_result(&db, "ops@example.com").await;
    assert!(refused.contains("proven"), "{refused}");
    s.verify_email("ops@example.com").await;
    let granted = make_staff_result(&db, "ops@example.com").await;
    assert!(granted.contains("is now platform staff"), "{granted}");
    let mut ok = false;
    for _ in 0..200 {
        if s.get("/v1/staff/queue", Some(&token)).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(ok, "the grant reached the read model");
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    let vault = api::vault::Vault::new([7u8; 32]);
    let said = api::admin::revoke_staff(&store, &vault, "ops@example.com")
        .await
        .unwrap();
    assert!(said.contains("no longer platform staff"), "{said}");
    let mut ended = false;
    for _ in 0..200 {
        if s.get("/v1/me", Some(&token)).await.status() == 401 {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(ended, "the staff member's sessions ended");
    let again = token_of(sign_in(&s, "ops@example.com", "correct horse battery").await).await;
    let r = s.get("/v1/staff/queue", Some(&again)).await;
    assert_eq!(r.status(), 403, "no longer staff");
}

#[tokio::test]
async fn sign_up_answers_the_same_for_a_new_and_a_proven_address() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    s.verified_user("taken@example.com").await;
    let body =
        |email: &str| json!({"email": email, "name": "Probe", "password": "probe password 1"});
    let taken = s.post("/v1/users", body("taken@example.com")).await;
    let fresh = s.post("/v1/users", body("fresh@example.com")).await;
    assert_eq!(taken.status(), fresh.status());
    let (taken, fresh): (Value, Value) = (taken.json().await.unwrap(), fresh.json().await.unwrap());
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&taken), keys(&fresh));
    assert_eq!(taken["email_verified"], fresh["email_verified"]);
    // The holder is told by mail; the probe's password opens nothing.
    let told = s
        .mail
        .next("taken@example.com", "Your Gatehouse account")
        .await;
    assert!(
        told.text.contains("No new account was made"),
        "{}",
        told.text
    );
    assert_eq!(
        sign_in(&s, "taken@example.com", "probe password 1")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&s, "taken@example.com", "correct horse battery")
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn mail_goes_through_a_real_smtp_server_retried_and_its_links_work_once_then_expire() {
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
    // The first attempt is refused by the server: the outbox retries.
    sink.refuse_next(1);
    let (_, token, _) = s.user("ada@example.com").await;
    let mail = sink
        .inbox
        .next("ada@example.com", "Confirm your email")
        .await;
    assert!(
        mail.html.contains("/verify-email?token="),
        "an HTML part too"
    );
    let record = db
        .client()
        .await
        .query_one(
            "SELECT status, attempts, sealed IS NULL, last_error IS NULL FROM mail_outbox \
             WHERE kind = 'verify_email'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(record.get::<_, String>(0), "sent");
    assert_eq!(record.get::<_, i32>(1), 2, "sent on the second attempt");
    assert!(record.get::<_, bool>(2), "the message is dropped once sent");
    let verify = json!({"token": mail.token("/verify-email")});
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/email-verifications",
            &token,
            Some(verify.clone()),
            0,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/email-verifications",
            &token,
            Some(verify),
            0,
        )
        .await;
    assert_eq!(status, 410, "a link works once");

    // A reset link: the old password stops, every session ends.
    let r = s
        .post("/v1/password-resets", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(r.status(), 202);
    let r = s
        .post(
            "/v1/password-resets",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(r.status(), 202, "the same answer for an unknown address");
    let reset = sink.inbox.next("ada@example.com", "Reset your").await;
    let confirm =
        json!({"token": reset.token("/reset-password"), "new_password": "a brand new password"});
    let r = s.post("/v1/password-resets/confirm", confirm.clone()).await;
    assert_eq!(r.status(), 204);
    let at = position_of(&r);
    assert_eq!(s.get_at("/v1/me", &token, at).await.status(), 401);
    assert_eq!(
        s.post("/v1/password-resets/confirm", confirm)
            .await
            .status(),
        410,
        "a reset link works once"
    );
    assert_eq!(
        sign_in(&s, "ada@example.com", "correct horse battery")
            .await
            .status(),
        401
    );
    token_of(sign_in(&s, "ada@example.com", "a brand new password").await).await;

    // A link past its expiry is refused (the clock moved on: the token's
    // expiry is moved back, as thirty minutes passing would).
    s.post("/v1/password-resets", json!({"email": "ada@example.com"}))
        .await;
    let late = sink.inbox.next("ada@example.com", "Reset your").await;
    db.client()
        .await
        .execute(
            "UPDATE account_tokens SET expires_at = now() - interval '1 second' \
             WHERE purpose = 'password_reset' AND used_at IS NULL",
            &[],
        )
        .await
        .unwrap();
    let r = s
        .post(
            "/v1/password-resets/confirm",
            json!({"token": late.token("/reset-password"), "new_password": "yet another password"}),
        )
        .await;
    assert_eq!(r.status(), 410, "an expired link");
}

#[tokio::test]
async fn no_mailed_token_or_password_hash_is_found_in_the_log_or_any_table() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, owner, _) = s.verified_user("owner@example.com").await;
    let verify = s.mail.all()[0].token("/verify-email");
    let (status, org, _) = s
        .call(
            Method::POST,
            "/v1/orgs",
            &owner,
            Some(json!({"slug": "leaks", "name": "Leaks"})),
            0,
        )
        .await;
    assert_eq!(status, 201);
    let org = org["id"].as_str().unwrap();
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/invitations"),
            &owner,
            Some(json!({"email": "dev@example.com", "role": "developer"})),
            0,
        )
        .await;
    assert_eq!(status, 201);
    let invite = s.mail.next("dev@example.com", "You are invited").await;
    s.post("/v1/password-resets", json!({"email": "owner@example.com"}))
        .await;
    let reset = s.mail.next("owner@example.com", "Reset your").await;
    let secrets = [
        verify,
        invite.token("/invitations/accept"),
        reset.token("/reset-password"),
        "$argon2".to_owned(),
    ];
    let found: Vec<String> = gatehouse_tests::search_every_table(&db, &secrets)
        .await
        .into_iter()
        // The one place a hash belongs: beside the log, never in it.
        .filter(|place| place != "\"$argon2\" in public.credentials.password_hash")
        .collect();
    assert!(found.is_empty(), "found in the database: {found:?}");
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_signing_out_everywhere_ends_all() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (_, first, _) = s.user("pat@example.com").await;
    let second = token_of(sign_in(&s, "pat@example.com", "correct horse battery").await).await;
    let (status, problem, _) = s
        .call(
            Method::POST,
            "/v1/me/password",
            &first,
            Some(
                json!({"current_password": "wrong password!", "new_password": "a new password 1"}),
            ),
            0,
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["pointer"].as_str()),
        (422, Some("/current_password"))
    );
    let (status, _, at) = s
        .call(
            Method::POST,
            "/v1/me/password",
            &first,
            Some(json!({"current_password": "correct horse battery", "new_password": "a new password 1"})),
            0,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        s.get_at("/v1/me", &first, at).await.status(),
        200,
        "this one stays"
    );
    assert_eq!(
        s.get_at("/v1/me", &second, at).await.status(),
        401,
        "the other ends"
    );
    let third = token_of(sign_in(&s, "pat@example.com", "a new password 1").await).await;
    let r = s
        .http
        .delete(s.url("/v1/sessions"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let at = position_of(&r);
    for token in [&first, &third] {
        assert_eq!(s.get_at("/v1/me", token, at).await.status(), 401);
    }
    let log: String = db
        .client()
        .await
        .query(
            "SELECT data::text FROM events WHERE event_type = 'user.password_changed'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert!(log.contains("\"via\":\"changed\""), "{log}");
    assert!(!log.contains("argon2"), "{log}");
}

#[tokio::test]
async fn a_session_unused_past_the_idle_timeout_ends() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            session_idle_minutes: 30,
            ..Options::default()
        },
    )
    .await;
    let (_, token, _) = s.user("idle@example.com").await;
    assert_eq!(s.get("/v1/me", Some(&token)).await.status(), 200);
    // Thirty-one minutes pass without a request.
    db.client()
        .await
        .execute(
            "INSERT INTO session_activity (session_id, last_seen_at) \
             SELECT session_id, now() - interval '31 minutes' FROM rm.sessions \
             ON CONFLICT (session_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(s.get("/v1/me", Some(&token)).await.status(), 401);
}

#[tokio::test]
async fn an_attackers_failures_from_one_address_do_not_stop_the_owner_signing_in_from_another() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            client_ip_header: Some("x-forwarded-for".into()),
            ..Options::default()
        },
    )
    .await;
    s.user("victim@example.com").await;
    let from = |ip: &'static str, password: &'static str| {
        s.http
            .post(s.url("/v1/sessions"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": "victim@example.com", "password": password}))
            .send()
    };
    let mut refused = 0;
    for _ in 0..12 {
        // As a trusted proxy passes it on: what the client wrote (the
        // owner's address, hoping to be counted as the owner), then the
        // address the proxy saw.
        let r = from("198.51.100.20, 203.0.113.7", "not the password")
            .await
            .unwrap();
        if r.status() == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 6, "the attacker is refused: {refused}");
    let r = from("198.51.100.20", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the owner, from their own address");
    let r = from("203.0.113.7", "correct horse battery").await.unwrap();
    assert_eq!(r.status(), 429, "the attacker's address stays refused");
}

#[tokio::test]
async fn six_hundred_concurrent_sign_ins_stay_in_bounded_memory_and_answer_401_429_or_503() {
    use gatehouse_tests::process::ServerProcess;
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // Each sign-in from an address of its own: no per-address throttle
    // helps, only the bounded hasher.
    let server = ServerProcess::spawn_with(
        env!("CARGO_BIN_EXE_gatehouse-it-server"),
        &db.conninfo,
        dir.path(),
        "warn",
        &[("GATEHOUSE_CLIENT_IP_HEADER", "x-forwarded-for")],
    )
    .await;
    let s = server.client();
    let attempts = (0..600).map(|i| {
        s.http
            .post(s.url("/v1/sessions"))
            .header("x-forwarded-for", format!("10.0.{}.{}", i / 256, i % 256))
            .json(&json!({"email": format!("random{i}@example.com"), "password": "some password here"}))
            .send()
    });
    let answers: Vec<reqwest::Response> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for r in answers {
        let status = r.status().as_u16();
        assert!(matches!(status, 401 | 429 | 503), "{status}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{status}"
        );
        *by_status.entry(status).or_default() += 1;
    }
    assert!(
        by_status.get(&503).copied().unwrap_or(0) > 0,
        "the hasher's bound refused some: {by_status:?}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    println!(
        "600 concurrent sign-ins: {by_status:?}, peak resident memory {} MiB",
        peak_kib / 1024
    );
    assert!(
        peak_kib < 1024 * 1024,
        "peak resident memory {peak_kib} KiB"
    );
    assert_eq!(s.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn a_recorded_notice_is_mailed_to_the_proven_members_who_manage_the_apps_only() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (_, owner, _) = s.verified_user("owner@notices.test").await;
    let (org, at) = s.workspace(&owner, &staff, "notices").await;
    // A developer (proven) and a manager (unproven) join.
    let (_, dev, _) = s.verified_user("dev@notices.test").await;
    s.join(&owner, &org, "dev@notices.test", "developer", &dev)
        .await;
    let (_, manager, _) = s.user("manager@notices.test").await;
    let at = s
        .join(&owner, &org, "manager@notices.test", "manager", &manager)
        .await
        .max(at);
    let (status, product, at2) = s
        .call(
            Method::POST,
            "/v1/staff/products",
            &staff,
            Some(json!({"name": "People", "scopes": ["people.read"], "approval": {"mode": "manual"}})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let (status, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            &owner,
            Some(json!({"name": "Payroll", "slug": "payroll"})),
            at.max(at2),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let app = app["id"].as_str().unwrap();
    let mut requests = Vec::new();
    let mut at = at;
    for mode in ["test", "live"] {
        let (status, r, next) = s
            .call(
                Method::POST,
                &format!("/v1/apps/{app}/products"),
                &owner,
                Some(json!({"product_id": product["id"], "mode": mode})),
                at,
            )
            .await;
        assert_eq!(status, 201, "{r}");
        requests.push(r["id"].as_str().unwrap().to_owned());
        at = next;
    }
    let (status, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{app}/access/{}/reject", requests[0]),
            &staff,
            Some(json!({"reason": "no contract on file"})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    let mail = s
        .mail
        .next("owner@notices.test", "A product access decision")
        .await;
    assert!(mail.subject.contains("Payroll"), "{}", mail.subject);
    assert!(mail.text.contains("no contract on file"), "{}", mail.text);
    // A later notice to the owner is the marker: by the time it arrives,
    // any mail of the first notice to anyone else would have been sent.
    let (status, _, _) = s
        .call(
            Method::POST,
            &format!("/v1/staff/apps/{app}/access/{}/approve", requests[1]),
            &staff,
            Some(json!({})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    s.mail
        .next("owner@notices.test", "A product access decision")
        .await;
    let others: Vec<String> = s
        .mail
        .all()
        .into_iter()
        .filter(|m| m.subject.contains("decision") && m.to != "owner@notices.test")
        .map(|m| m.to)
        .collect();
    assert!(
        others.is_empty(),
        "a developer, and a manager at an unproven address, get no notice: {others:?}"
    );
}

async fn hashes(db: &gatehouse_tests::TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT count(*) FROM credentials", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn erasure_destroys_the_password_hash_and_no_hash_is_ever_in_the_log_or_an_export() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let staff = s.staff(&db, "ops@example.com").await;
    let (user, token, _) = s.verified_user("leaver@example.com").await;
    let (status, _, _) = s
        .call(
            Method::POST,
            "/v1/me/password",
            &token,
            Some(json!({"current_password": "correct horse battery", "new_password": "another password 2"})),
            0,
        )
        .await;
    assert_eq!(status, 204);
    let r = s
        .http
        .get(s.url("/v1/staff/audit/export"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let export = r.text().await.unwrap();
    assert!(
        export.contains("user.password_changed"),
        "the change is exported"
    );
    assert!(!export.contains("$argon2"), "no hash in the export");
    assert_eq!(hashes(&db).await, 2, "two accounts, two hashes");
    let (status, _, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/users/{user}/personal-data"),
            &staff,
            None,
            0,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(hashes(&db).await, 1, "the erased account's hash is gone");
    let found: Vec<String> = gatehouse_tests::search_every_table(&db, &["$argon2".to_owned()])
        .await
        .into_iter()
        .filter(|place| place != "\"$argon2\" in public.credentials.password_hash")
        .collect();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(
        sign_in(&s, "leaver@example.com", "another password 2")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_staff_grant_counts_only_for_an_account_that_proved_its_address() {
    use event_schemas::user::{AccountEvent, StaffGranted};
    use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
    use event_store::EventStoreExt;
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let (user, token, _) = s.user("legacy@example.com").await;
    // A grant made before addresses were proven (as the old create-staff
    // made it), straight into the log.
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    let grant = AccountEvent::StaffGranted(StaffGranted {
        user_id: user.parse().unwrap(),
    });
    let at = store
        .append(
            &format!("staff-{user}"),
            ExpectedVersion::NoStream,
            vec![NewEvent::from_domain(&grant, Metadata::by(Actor::system()))],
        )
        .await
        .unwrap()
        .last_position;
    let r = s.get_at("/v1/staff/queue", &token, at).await;
    assert_eq!(r.status(), 403, "an unproven staff grant opens nothing");
    let at = s.verify_email("legacy@example.com").await;
    let r = s.get_at("/v1/staff/queue", &token, at).await;
    assert_eq!(r.status(), 200, "once proven, the grant holds");
}

#[tokio::test]
async fn a_refused_mail_voids_no_earlier_link() {
    let db = fresh_db().await;
    let s = TestServer::start_with(
        &db,
        Options {
            mails_per_address_per_hour: 1,
            ..Options::default()
        },
    )
    .await;
    s.user("once@example.com").await;
    let r = s
        .post("/v1/password-resets", json!({"email": "once@example.com"}))
        .await;
    assert_eq!(r.status(), 202);
    let mail = s.mail.next("once@example.com", "Reset your").await;
    // Past the address's share: the same answer, no mail, and the link
    // already sent still works.
    for _ in 0..3 {
        let r = s
            .post("/v1/password-resets", json!({"email": "once@example.com"}))
            .await;
        assert_eq!(r.status(), 202);
    }
    let r = s
        .post(
            "/v1/password-resets/confirm",
            json!({"token": mail.token("/reset-password"), "new_password": "a fresh password"}),
        )
        .await;
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn made_up_reset_tokens_cost_no_hashing() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    let attempts = (0..60).map(|i| {
        s.post(
            "/v1/password-resets/confirm",
            json!({"token": format!("made-up-{i}"), "new_password": "a password of ten"}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|&c| c == 410),
        "refused before hashing, never busy: {statuses:?}"
    );
}
