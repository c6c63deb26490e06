//! The audit trail: readable history with filters and pages, exports that
//! verify offline, checkpoints that catch what the chain alone cannot (a
//! superuser's rewrite with every hash recomputed, a cut tail), and
//! personal data erasure end to end.

use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::{TestServer, TEST_AUDIT_KEY};
use gatehouse_tests::TestDb;
use reqwest::Method;
use serde_json::{json, Value};

/// The audit public key a server publishes.
async fn public_key(s: &TestServer) -> ed25519_dalek::VerifyingKey {
    let body: Value = s
        .get("/v1/audit/public-key", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["algorithm"], "Ed25519");
    event_schemas::audit::public_key_from_base64(body["public_key"].as_str().unwrap())
        .expect("a base64 Ed25519 key")
}

/// Every entry of `path` (a history URL with its query), page by page.
async fn all_pages(s: &TestServer, path: &str, token: &str, at: u64) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_owned(),
        };
        let (status, page, _) = s.call(Method::GET, &url, token, None, at).await;
        assert_eq!(status, 200, "{url}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn positions(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect()
}

/// An org with an app renamed once and a key issued and rotated by its
/// owner; answers the app, the owner's id, the key's id and the position.
async fn history(s: &TestServer, db: &TestDb, slug: &str) -> (KeyedApp, String, String, u64) {
    let app = KeyedApp::new(s, db, slug).await;
    let r = s
        .http
        .patch(s.url(&format!("/v1/apps/{}", app.app)))
        .bearer_auth(&app.owner)
        .header("user-agent", "audit-test/1.0")
        .header("gatehouse-min-position", app.at.to_string())
        .json(&json!({"name": "Checkout 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (key_id, _, at) = app.test_key(s).await;
    let (status, rotated, at) = s
        .call(
            Method::POST,
            &format!("/v1/keys/{key_id}/rotate"),
            &app.owner,
            Some(json!({})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let (_, me, _) = s.call(Method::GET, "/v1/me", &app.owner, None, 0).await;
    (
        app,
        me["user"]["id"].as_str().unwrap().to_owned(),
        key_id,
        at,
    )
}

#[tokio::test]
async fn the_org_history_reads_like_a_person_wrote_it_and_filters_and_pages() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let (app, owner_id, key_id, at) = history(&s, &db, "audit-read").await;
    let base = format!("/v1/orgs/{}/audit", app.org);

    let all = all_pages(&s, &format!("{base}?limit=200"), &app.owner, at).await;
    let newest_first = positions(&all);
    assert!(newest_first.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(all.iter().all(|e| e["org_id"] == app.org.as_str()));
    let types: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for t in [
        "org.created",
        "terms.accepted",
        "app.created",
        "app.updated",
        "api_key.issued",
        "api_key.rotated",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }

    // The rename: who, from where, what before and after.
    let renamed = all.iter().find(|e| e["action"] == "app.updated").unwrap();
    assert_eq!(renamed["actor"]["kind"], "user");
    assert_eq!(renamed["actor"]["id"], owner_id.as_str());
    assert_eq!(renamed["actor"]["name"], "Test User");
    assert_eq!(
        renamed["changes"]["name"],
        json!({"before": "Checkout", "after": "Checkout 2"})
    );
    assert_eq!(
        renamed["targets"][0],
        json!({"type": "app", "id": app.app, "name": "Checkout 2"})
    );
    assert_eq!(renamed["context"]["ip"], "127.0.0.1");
    assert_eq!(renamed["context"]["user_agent"], "audit-test/1.0");
    assert!(renamed["context"]["request_id"].is_string());
    assert_eq!(renamed["hash"].as_str().unwrap().len(), 64);
    // No secret, hash of a secret or sealed value appears anywhere.
    let text = serde_json::to_string(&all).unwrap();
    for word in [
        "secret_hash",
        "\"hash\":\"sha",
        "password",
        "token_hash",
        "email_index",
    ] {
        assert!(!text.contains(word), "{word} appears in the history");
    }
    let issued = all
        .iter()
        .find(|e| e["action"] == "api_key.issued")
        .unwrap();
    assert!(issued.get("changes").is_none(), "a creation has no before");
    assert_eq!(issued["targets"][0]["type"], "api_key");

    // Filters narrow exactly.
    let keys = all_pages(&s, &format!("{base}?type=api_key.*"), &app.owner, at).await;
    assert!(!keys.is_empty());
    assert!(keys
        .iter()
        .all(|e| e["action"].as_str().unwrap().starts_with("api_key.")));
    let expected: Vec<i64> = all
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("api_key."))
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions(&keys), expected);
    let rotated = all_pages(&s, &format!("{base}?type=api_key.rotated"), &app.owner, at).await;
    assert_eq!(rotated.len(), 1);
    let by_key = all_pages(&s, &format!("{base}?key={key_id}"), &app.owner, at).await;
    assert!(by_key
        .iter()
        .all(|e| e["targets"].to_string().contains(&key_id)));
    assert!(by_key.iter().any(|e| e["action"] == "api_key.rotated"));
    let by_app = all_pages(&s, &format!("{base}?app={}", app.app), &app.owner, at).await;
    assert!(by_app.iter().any(|e| e["action"] == "app.updated"));
    assert!(!by_app.iter().any(|e| e["action"] == "org.created"));
    let by_actor = all_pages(&s, &format!("{base}?actor={owner_id}"), &app.owner, at).await;
    assert!(by_actor
        .iter()
        .all(|e| e["actor"]["id"] == owner_id.as_str()));
    assert!(
        !by_actor.is_empty() && by_actor.len() < all.len(),
        "staff set the plan"
    );
    let renamed_at = renamed["occurred_at"].as_str().unwrap();
    let since = all_pages(
        &s,
        &format!("{base}?from={}", urlencode(renamed_at)),
        &app.owner,
        at,
    )
    .await;
    assert!(since
        .iter()
        .all(|e| e["occurred_at"].as_str().unwrap() >= renamed_at));
    assert!(since.iter().any(|e| e["action"] == "app.updated"));
    let before = all_pages(
        &s,
        &format!("{base}?to={}", urlencode(renamed_at)),
        &app.owner,
        at,
    )
    .await;
    assert_eq!(
        before.len() + since.len(),
        all.len(),
        "from and to split the history"
    );

    // Small pages, oldest first: the same entries, each once, in order.
    let oldest = all_pages(&s, &format!("{base}?order=oldest&limit=2"), &app.owner, at).await;
    let mut reversed = newest_first.clone();
    reversed.reverse();
    assert_eq!(positions(&oldest), reversed);

    // Bad filters are refused, an outsider sees nothing, staff see it all.
    let (status, problem, _) = s
        .call(
            Method::GET,
            &format!("{base}?type=api_key"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid-input")),
        "{problem}"
    );
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("{base}?order=sideways"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 422);
    // A NUL byte is no actor's id, and PostgreSQL refuses it in text: the
    // page and the export must answer 422 before reading, not fail midway.
    for path in [
        format!("{base}?actor=%00"),
        format!("{base}/export?actor=a%00b"),
    ] {
        let (status, problem, _) = s.call(Method::GET, &path, &app.owner, None, at).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some("invalid-input")),
            "{path}: {problem}"
        );
    }
    let (_, outsider, _) = s.user("outsider@example.com").await;
    let (status, _, _) = s.call(Method::GET, &base, &outsider, None, at).await;
    assert_eq!(status, 404);
    let staff = all_pages(
        &s,
        &format!("/v1/staff/audit?org={}&limit=200", app.org),
        &app.staff,
        at,
    )
    .await;
    assert_eq!(positions(&staff), newest_first);
    let (status, _, _) = s
        .call(Method::GET, "/v1/staff/audit", &app.owner, None, at)
        .await;
    assert_eq!(status, 403);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// Downloads an export to a file in `dir`.
async fn download(
    s: &TestServer,
    path: &str,
    token: &str,
    accept: &str,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let r = s
        .http
        .get(s.url(path))
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let file = dir.join(if accept == "text/csv" {
        "audit.csv"
    } else {
        "audit.jsonl"
    });
    std::fs::write(&file, r.bytes().await.unwrap()).unwrap();
    file
}

#[tokio::test]
async fn an_export_verifies_offline_and_one_changed_byte_is_caught() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let (app, _, _, at) = history(&s, &db, "audit-export").await;
    let key = public_key(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let _ = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/audit", app.org),
            &app.owner,
            None,
            at,
        )
        .await;

    for accept in ["application/x-ndjson", "text/csv"] {
        let file = download(
            &s,
            &format!("/v1/orgs/{}/audit/export", app.org),
            &app.owner,
            accept,
            dir.path(),
        )
        .await;
        let report =
            replay_tools::export::verify_export(&file, &key).expect("a fresh export verifies");
        let history = all_pages(
            &s,
            &format!("/v1/orgs/{}/audit?limit=200", app.org),
            &app.owner,
            at,
        )
        .await;
        assert!(
            report.entries >= history.len() as u64 - 1 && report.entries > 5,
            "{report:?}"
        );
        assert_eq!(report.scope, format!("org:{}", app.org));

        // One byte changed in the middle of an entry (the app's new name).
        let bytes = std::fs::read(&file).unwrap();
        let at_name = bytes
            .windows(10)
            .position(|w| w == b"Checkout 2")
            .expect("the rename is exported");
        let mut changed = bytes.clone();
        changed[at_name + 9] = b'3';
        std::fs::write(&file, &changed).unwrap();
        let err =
            replay_tools::export::verify_export(&file, &key).expect_err("a changed byte fails");
        assert!(
            err.to_string().contains("SHA-256") || err.to_string().contains("hash"),
            "{err}"
        );

        // The manifest cut off, as an interrupted download would.
        let cut = &bytes[..bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1];
        std::fs::write(&file, cut).unwrap();
        let err = replay_tools::export::verify_export(&file, &key).expect_err("no manifest fails");
        assert!(err.to_string().contains("manifest"), "{err}");

        // Another key does not verify it.
        std::fs::write(&file, &bytes).unwrap();
        let other = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert!(replay_tools::export::verify_export(&file, &other).is_err());
    }
    // Developers may not export; the platform export is staff's.
    let (status, _, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/audit/export", app.org),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 200);
    let file = download(
        &s,
        "/v1/staff/audit/export",
        &app.staff,
        "application/x-ndjson",
        dir.path(),
    )
    .await;
    let report =
        replay_tools::export::verify_export(&file, &key).expect("the platform export verifies");
    assert_eq!(report.scope, "platform");
    assert_eq!(
        report.first_position,
        Some(1),
        "the platform export starts at the genesis"
    );
}

/// Rewrites the payload of the event at `position` as a superuser would,
/// recomputing every later hash and moving the head, so the chain alone
/// verifies.
async fn rewrite_with_recomputed_chain(db: &TestDb, position: i64, data: &str) {
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete; \
             UPDATE events SET data = '{data}' WHERE global_position = {position};"
        ))
        .await
        .unwrap();
    rechain(db, position).await;
}

/// Recomputes the chain from `from` and moves the head to the last event.
async fn rechain(db: &TestDb, from: i64) {
    let pool = event_store::postgres::pool(&db.config, 1);
    let pc = pool.get().await.unwrap();
    let mut prev = if from > 1 {
        let row = pc
            .query_one(
                "SELECT hash FROM events WHERE global_position = $1",
                &[&(from - 1)],
            )
            .await
            .unwrap();
        row.get::<_, Vec<u8>>(0).try_into().unwrap()
    } else {
        event_schemas::GENESIS_HASH
    };
    let events = event_store::postgres::read_all_with(&pc, (from - 1) as u64, 1_000_000)
        .await
        .unwrap();
    for mut e in events {
        e.prev_hash = prev;
        e.hash = e.computed_hash();
        pc.execute(
            "UPDATE events SET prev_hash = $2, hash = $3 WHERE global_position = $1",
            &[
                &(e.global_position as i64),
                &e.prev_hash.as_slice(),
                &e.hash.as_slice(),
            ],
        )
        .await
        .unwrap();
        prev = e.hash;
    }
    pc.batch_execute(&format!(
        "UPDATE log_head SET position = (SELECT max(global_position) FROM events), \
         hash = '\\x{}'; \
         ALTER TABLE events ENABLE TRIGGER events_no_update_delete;",
        hex::encode(prev)
    ))
    .await
    .unwrap();
}

/// The checkpoints a witness fetched from the server.
async fn witnessed(s: &TestServer) -> Vec<event_schemas::audit::CheckpointSigned> {
    let page: Value = s
        .get("/v1/audit/checkpoints", None)
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::from_value(c.clone()).unwrap())
        .collect()
}

async fn verify(
    db: &TestDb,
    anchors: &replay_tools::Anchors,
) -> Result<replay_tools::VerifyReport, replay_tools::BadPosition> {
    let pool = event_store::postgres::pool(&db.config, 2);
    match replay_tools::verify(&pool, anchors, |_| {}).await {
        Ok(r) => Ok(r),
        Err(replay_tools::VerifyError::Bad(b)) => Err(b),
        Err(e) => panic!("verification could not run: {e}"),
    }
}

#[tokio::test]
async fn checkpoints_catch_a_superuser_rewrite_and_a_cut_tail_that_the_chain_alone_misses() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let (app, _, _, at) = history(&s, &db, "audit-tamper").await;
    // An export signs a checkpoint of the head.
    let dir = tempfile::tempdir().unwrap();
    download(
        &s,
        &format!("/v1/orgs/{}/audit/export", app.org),
        &app.owner,
        "application/x-ndjson",
        dir.path(),
    )
    .await;
    let _ = at;
    let witnesses = witnessed(&s).await;
    assert_eq!(witnesses.len(), 1);
    let signed = witnesses[0].position as i64;
    // The server kept the newest checkpoint outside the database too.
    let witness_file = s.data_dir().join("audit-checkpoint.json");
    let held: event_schemas::audit::CheckpointSigned =
        serde_json::from_str(&std::fs::read_to_string(&witness_file).unwrap()).unwrap();
    assert_eq!(held, witnesses[0]);
    s.stop().await;

    let key = ed25519_dalek::SigningKey::from_bytes(&base64_seed(TEST_AUDIT_KEY)).verifying_key();
    let anchors = replay_tools::Anchors {
        public_keys: vec![key],
        witnesses: witnesses.clone(),
    };
    let report = verify(&db, &anchors)
        .await
        .expect("the untouched log verifies");
    assert_eq!(report.checkpoints, 1);
    assert_eq!(report.newest_checkpoint, Some(signed as u64));
    // A forged checkpoint is refused.
    let mut forged = witnesses[0].clone();
    forged.hash = hex::encode([7u8; 32]);
    let forged_anchors = replay_tools::Anchors {
        public_keys: vec![key],
        witnesses: vec![forged],
    };
    assert!(verify(&db, &forged_anchors)
        .await
        .unwrap_err()
        .reason
        .contains("signature"));

    // The superuser rewrites the app's name in its creation and recomputes
    // the chain: the chain alone passes, the checkpoint does not.
    let created: i64 = db
        .client()
        .await
        .query_one(
            "SELECT global_position FROM events WHERE event_type = 'app.created'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let data: String = db
        .client()
        .await
        .query_one(
            "SELECT data::text FROM events WHERE global_position = $1",
            &[&created],
        )
        .await
        .unwrap()
        .get(0);
    rewrite_with_recomputed_chain(&db, created, &data.replace("Checkout", "Chekout")).await;
    verify(&db, &Default::default())
        .await
        .expect("the recomputed chain alone passes");
    let bad = verify(&db, &anchors)
        .await
        .expect_err("the checkpoint catches the rewrite");
    assert_eq!(bad.position, signed as u64, "{}", bad.reason);
    assert!(bad.reason.contains("rewritten"), "{}", bad.reason);
}

#[tokio::test]
async fn a_cut_tail_is_caught_by_a_checkpoint_kept_outside_the_database() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let (app, _, _, _) = history(&s, &db, "audit-cut").await;
    let dir = tempfile::tempdir().unwrap();
    download(
        &s,
        &format!("/v1/orgs/{}/audit/export", app.org),
        &app.owner,
        "application/x-ndjson",
        dir.path(),
    )
    .await;
    let witnesses = witnessed(&s).await;
    let signed = witnesses[0].position as i64;
    s.stop().await;
    let key = ed25519_dalek::SigningKey::from_bytes(&base64_seed(TEST_AUDIT_KEY)).verifying_key();

    // The superuser cuts the last events off, the checkpoint with them,
    // and moves the head back.
    let keep = signed - 3;
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete; \
             DELETE FROM events WHERE global_position > {keep};"
        ))
        .await
        .unwrap();
    rechain(&db, keep).await;
    let in_db_only = replay_tools::Anchors {
        public_keys: vec![key],
        witnesses: vec![],
    };
    verify(&db, &in_db_only)
        .await
        .expect("with the checkpoint gone from the log, the log alone passes");
    let anchors = replay_tools::Anchors {
        public_keys: vec![key],
        witnesses,
    };
    let bad = verify(&db, &anchors)
        .await
        .expect_err("the witnessed checkpoint catches the cut");
    assert!(bad.reason.contains("cut off"), "{}", bad.reason);
    assert_eq!(bad.position, keep as u64 + 1);
}

fn base64_seed(text: &str) -> [u8; 32] {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn erasure_leaves_the_facts_and_the_chain_and_removes_the_person_everywhere() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "audit-erase").await;
    let email = "erase-me-7f3a@example.com";
    let (user, token, at) = s.user(email).await;
    let at = s
        .join(&app.owner, &app.org, email, "manager", &token)
        .await
        .max(at);
    let (status, created, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{}/apps", app.org),
            &token,
            Some(json!({"name": "Erased's app", "slug": "erased-app"})),
            at,
        )
        .await;
    assert_eq!(status, 201, "{created}");

    // Before: their name and context are there.
    let (_, page, _) = s
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/audit?actor={user}", app.org),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(page["items"][0]["actor"]["name"], "Test User");
    assert_eq!(page["items"][0]["context"]["ip"], "127.0.0.1");

    let (status, _, erased_at) = s
        .call(
            Method::DELETE,
            &format!("/v1/users/{user}/personal-data"),
            &app.owner,
            None,
            at,
        )
        .await;
    assert_eq!(status, 403, "only staff erase");
    let (status, _, erased_at2) = s
        .call(
            Method::DELETE,
            &format!("/v1/users/{user}/personal-data"),
            &app.staff,
            None,
            at,
        )
        .await;
    assert_eq!(status, 204);
    let erased_at = erased_at.max(erased_at2);
    let (status, _, again) = s
        .call(
            Method::DELETE,
            &format!("/v1/users/{user}/personal-data"),
            &app.staff,
            None,
            at,
        )
        .await;
    assert_eq!(
        (status, again),
        (204, erased_at2),
        "erasing again changes nothing"
    );
    let (status, _, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/users/{}/personal-data", uuid::Uuid::new_v4()),
            &app.staff,
            None,
            at,
        )
        .await;
    assert_eq!(status, 404);

    let check_erased = |members: Value, audit: Value| {
        let me = members["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == user.as_str())
            .expect("still a member");
        assert_eq!(me["name"], "[erased]");
        let mine: Vec<&Value> = audit["items"].as_array().unwrap().iter().collect();
        assert!(
            mine.iter().any(|e| e["action"] == "app.created"),
            "the facts stay"
        );
        for e in &mine {
            assert_eq!(e["actor"]["name"], "[erased]");
            if e["context"].get("ip").is_some() {
                assert_eq!(e["context"]["ip"], "[erased]");
                assert_eq!(e["context"]["user_agent"], "[erased]");
            }
        }
    };
    let members_path = format!("/v1/orgs/{}/members", app.org);
    let audit_path = format!("/v1/orgs/{}/audit?actor={user}&limit=200", app.org);
    let (_, members, _) = s
        .call(Method::GET, &members_path, &app.owner, None, erased_at)
        .await;
    let (_, audit, _) = s
        .call(Method::GET, &audit_path, &app.owner, None, erased_at)
        .await;
    check_erased(members, audit);
    let (_, all, _) = s
        .call(
            Method::GET,
            "/v1/staff/audit?type=user.personal_data_erased",
            &app.staff,
            None,
            erased_at,
        )
        .await;
    assert_eq!(
        all["items"][0]["targets"][0]["id"],
        user.as_str(),
        "the erasure is itself an event"
    );
    assert_eq!(all["items"][0]["targets"][0]["name"], "[erased]");
    // They can no longer sign in.
    let r = s
        .post(
            "/v1/sessions",
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), 401);
    s.stop().await;

    // Rebuild every read model: still erased.
    let pool = event_store::postgres::pool(&db.config, 4);
    for p in projections::all() {
        projections::rebuild(&pool, p.as_ref(), |_| {})
            .await
            .unwrap();
    }
    let s = TestServer::start(&db).await;
    let (_, members, _) = s
        .call(Method::GET, &members_path, &app.owner, None, 0)
        .await;
    let (_, audit, _) = s.call(Method::GET, &audit_path, &app.owner, None, 0).await;
    check_erased(members, audit);
    s.stop().await;

    // The address is nowhere in the database, in any table or schema:
    // text and JSON as text, BYTEA as its decoded bytes (a plaintext in
    // `idempotency_keys.body` or any other BYTEA column would be found).
    let found = gatehouse_tests::search_every_table(
        &db,
        &[
            "erase-me-7f3a".to_owned(),
            "user.personal_data_erased".to_owned(),
        ],
    )
    .await;
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("\"user.personal_data_erased\" in ")),
        "the search reaches the log: {found:?}"
    );
    let holding: Vec<&String> = found
        .iter()
        .filter(|f| f.starts_with("\"erase-me-7f3a\" in "))
        .collect();
    assert!(
        holding.is_empty(),
        "the address is still stored: {holding:?}"
    );
    // The chain still verifies.
    verify(&db, &Default::default())
        .await
        .expect("erasure leaves the chain verifiable");
}

/// `t` moved by `micros` microseconds, RFC 3339, URL-encoded.
fn shifted(t: &str, micros: i64) -> String {
    let t =
        chrono::DateTime::parse_from_rfc3339(t).unwrap() + chrono::Duration::microseconds(micros);
    urlencode(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[tokio::test]
async fn as_of_answers_what_an_app_a_key_and_the_overview_were_then() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let (app, _, key_id, at) = history(&s, &db, "audit-asof").await;
    let all = all_pages(
        &s,
        &format!("/v1/orgs/{}/audit?limit=200", app.org),
        &app.owner,
        at,
    )
    .await;
    // The first time each happened (the history is newest first).
    let when = |action: &str| {
        all.iter()
            .rev()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action}"))["occurred_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (renamed, issued, rotated) = (
        when("app.updated"),
        when("api_key.issued"),
        when("api_key.rotated"),
    );
    let get = |path: String| {
        let s = &s;
        let token = app.owner.clone();
        async move { s.call(Method::GET, &path, &token, None, at).await }
    };

    // The app before and after its rename.
    let (status, then, _) = get(format!(
        "/v1/apps/{}?as_of={}",
        app.app,
        shifted(&renamed, -1)
    ))
    .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["name"], "Checkout");
    let (_, now, _) = get(format!(
        "/v1/apps/{}?as_of={}",
        app.app,
        shifted(&renamed, 0)
    ))
    .await;
    assert_eq!(now["name"], "Checkout 2");
    assert_eq!(
        now["version"].as_u64(),
        then["version"].as_u64().map(|v| v + 1)
    );
    let (status, _, _) = get(format!("/v1/apps/{}?as_of=2001-01-01T00:00:00Z", app.app)).await;
    assert_eq!(status, 404, "the app did not exist yet");

    // The key before and after its rotation.
    let key = |t: String| get(format!("/v1/keys/{key_id}?as_of={t}"));
    let (status, _, _) = key(shifted(&issued, -1)).await;
    assert_eq!(status, 404, "not issued yet");
    let (status, before, _) = key(shifted(&rotated, -1)).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["status"], "active");
    let (_, after, _) = key(shifted(&rotated, 0)).await;
    assert_eq!(after["status"], "expiring", "{after}");
    let (_, current, _) = get(format!("/v1/keys/{key_id}")).await;
    for field in [
        "id",
        "name",
        "prefix",
        "mode",
        "type",
        "scopes",
        "expires_at",
        "created_by",
        "created_at",
        "status",
    ] {
        assert_eq!(
            after[field], current[field],
            "{field} as of now is what the read model says"
        );
    }
    let (status, _, _) = get(format!("/v1/keys/{key_id}?as_of=yesterday")).await;
    assert_eq!(status, 400);

    // The overview: no key, one key, two during the rotation's overlap.
    let overview = |t: String| get(format!("/v1/orgs/{}/overview?as_of={t}", app.org));
    let (status, o, _) = overview(shifted(&issued, -1)).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(
        (o["api_key_count"].as_i64(), o["app_count"].as_i64()),
        (Some(0), Some(1))
    );
    let (_, o, _) = overview(shifted(&rotated, -1)).await;
    assert_eq!(o["api_key_count"], 1);
    assert_eq!(o["selected_app"]["name"], "Checkout 2");
    let (_, o_then, _) = overview(shifted(&rotated, 0)).await;
    let (_, o_now, _) = get(format!("/v1/orgs/{}/overview", app.org)).await;
    assert_eq!(o_then["api_key_count"], 2);
    for field in [
        "plan",
        "api_key_count",
        "app_count",
        "webhook_count",
        "monthly_call_limit",
    ] {
        assert_eq!(o_then[field], o_now[field], "{field}");
    }
    let (status, _, _) = overview("2001-01-01T00:00:00Z".into()).await;
    assert_eq!(status, 402, "no plan then");
}

/// Flips one base64 character of a sealed column, as a tamperer would.
async fn tamper(db: &TestDb, table: &str, column: &str, key: &str, id: &str) {
    let sql = format!(
        "UPDATE {table} SET {column} = overlay({column} placing \
         (CASE substr({column}, 20, 1) WHEN 'A' THEN 'B' ELSE 'A' END) from 20 for 1) \
         WHERE {key} = '{id}'"
    );
    let n = db.client().await.execute(&sql, &[]).await.unwrap();
    assert_eq!(n, 1, "{sql}");
}

/// Only a destroyed key reads `[erased]`: ciphertext that fails to open
/// under a key that exists is answered as an error, so tampering never
/// passes for a lawful erasure.
#[tokio::test]
async fn a_tampered_sealed_field_is_an_error_not_an_erasure() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "audit-tamper").await;
    let email = "tampered@example.com";
    let (user, token, at) = s.user(email).await;
    let at = s
        .join(&app.owner, &app.org, email, "manager", &token)
        .await
        .max(at);
    let members = format!("/v1/orgs/{}/members", app.org);
    let audit = format!("/v1/orgs/{}/audit?actor={user}", app.org);
    for (path, who) in [(&members, &app.owner), (&audit, &app.owner)] {
        let (status, body, _) = s.call(Method::GET, path, who, None, at).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    tamper(&db, "rm.users", "name_sealed", "user_id", &user).await;
    for (path, who) in [(&members, &app.owner), (&"/v1/me".to_owned(), &token)] {
        let (status, problem, _) = s.call(Method::GET, path, who, None, at).await;
        assert_eq!(status, 500, "{path}: {problem}");
        assert_eq!(problem["code"], "sealed-data-unreadable", "{problem}");
        assert!(!problem.to_string().contains("[erased]"));
    }
    tamper(&db, "rm.audit_entities", "name", "id", &user).await;
    let (status, problem, _) = s.call(Method::GET, &audit, &app.owner, None, at).await;
    assert_eq!(status, 500, "{problem}");
    assert_eq!(problem["code"], "sealed-data-unreadable", "{problem}");
}

/// Cuts the log's tail after `keep`, as a superuser (or a restored backup)
/// would: the events go, the chain and the head are made consistent again.
async fn cut_tail(db: &TestDb, keep: i64) {
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete; \
             DELETE FROM events WHERE global_position > {keep};"
        ))
        .await
        .unwrap();
    rechain(db, keep).await;
}

/// The log goes backwards under a running server: its next append is
/// refused (never written at positions it acknowledged for other events),
/// `/readyz` answers not ready with the reason, and the log says so as an
/// error. After a restart the checkpoint it witnessed (a file outside the
/// database) still holds the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_under_a_running_server_refuses_appends_and_readiness() {
    use gatehouse_tests::process::ServerProcess;
    let db = gatehouse_tests::fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_gatehouse-it-server");
    let env = [("GATEHOUSE_CHECKPOINT_INTERVAL_SECS", "1")];
    let mut server = ServerProcess::spawn_with(bin, &db.conninfo, dir.path(), "info", &env).await;
    let s = server.client();
    for n in 0..3 {
        s.user(&format!("before-{n}@example.com")).await;
    }
    let (head, _) = db.log_stats().await;
    // The signer has witnessed the head (in a file beside its key).
    let witness = dir.path().join("audit-checkpoint.json");
    let started = std::time::Instant::now();
    loop {
        let signed = std::fs::read_to_string(&witness)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|c| c["position"].as_i64());
        if signed.is_some_and(|p| p >= head) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no witness"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let keep = head - 4;
    cut_tail(&db, keep).await;

    let sign_up = |n: &str| json!({"email": format!("after-{n}@example.com"), "name": "After", "password": "correct horse battery"});
    let r = s.post("/v1/users", sign_up("1")).await;
    assert_eq!(r.status(), 503);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "unavailable", "{problem}");
    let r = s.get("/readyz", None).await;
    assert_eq!(r.status(), 503, "anyone sees it is not ready");
    let ready = s.readiness().await;
    assert_eq!(ready["status"], "not_ready");
    assert!(
        ready["reason"].as_str().unwrap().contains("went backwards"),
        "an operator sees why: {ready}"
    );
    assert_eq!(db.log_stats().await.0, keep, "nothing was appended");
    let log = server.stop();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("the log went backwards")),
        "{log}"
    );

    // Restarted, the node remembers through its witness.
    let server = ServerProcess::spawn_with(bin, &db.conninfo, dir.path(), "info", &env).await;
    let s = server.client();
    let started = std::time::Instant::now();
    loop {
        let ready: Value = s.readiness().await;
        if ready["reason"]
            .as_str()
            .is_some_and(|r| r.contains("went backwards"))
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{ready}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s.post("/v1/users", sign_up("2")).await.status(), 503);
    assert_eq!(db.log_stats().await.0, keep, "nothing was appended");
}

/// The checkpoints the server publishes, newest first.
async fn published_checkpoints(s: &TestServer) -> Vec<Value> {
    let page: Value = s
        .get("/v1/audit/checkpoints?limit=100", None)
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

/// Waits (15 s at most) for a published checkpoint that covers `position`;
/// answers the newest.
async fn checkpoint_covering(s: &TestServer, position: i64) -> Value {
    let started = std::time::Instant::now();
    loop {
        let all = published_checkpoints(s).await;
        if let Some(c) = all
            .first()
            .filter(|c| c["position"].as_i64() >= Some(position))
        {
            return c.clone();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "no checkpoint covers {position}: {all:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The newest position of anything but a checkpoint.
async fn head_but_checkpoints(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT max(global_position) FROM events \
             WHERE event_type <> 'audit.checkpoint_signed'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// With `checkpoint_interval_secs = 1` (`GATEHOUSE_CHECKPOINT_INTERVAL_SECS`)
/// the server signs the head into a checkpoint as it moves, with no export
/// asked for; while the head stays, it signs nothing. The proof of that
/// absence is a later marker: after a few quiet intervals, one event, and
/// the checkpoint that covers it comes right after the one of the quiet
/// head, with none in between.
#[tokio::test]
async fn checkpoints_are_signed_on_the_interval_as_the_head_moves_and_not_while_it_stays() {
    let db = gatehouse_tests::fresh_db().await;
    let options = gatehouse_tests::server::Options {
        checkpoint_interval_secs: 1,
        ..Default::default()
    };
    let s = TestServer::start_with(&db, options).await;
    let key = public_key(&s).await;
    let (_, token, _) = s.user("interval@example.com").await;
    let head = head_but_checkpoints(&db).await;
    let first = checkpoint_covering(&s, head).await;
    let signed: event_schemas::audit::CheckpointSigned =
        serde_json::from_value(first.clone()).unwrap();
    signed
        .verify(&key)
        .expect("signed with the published audit key");
    assert_eq!(
        first["key_id"],
        event_schemas::audit::key_id(&key),
        "{first}"
    );

    // Quiet: three intervals with the head where it is.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(
        head_but_checkpoints(&db).await,
        head,
        "nothing else was appended while quiet"
    );
    // The marker: one event; the signer is still at work and covers it.
    let (status, body, _) = s
        .call(
            Method::POST,
            "/v1/orgs",
            &token,
            Some(json!({"slug": "interval-co", "name": "Interval"})),
            0,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let moved = head_but_checkpoints(&db).await;
    assert!(moved > head);
    let second = checkpoint_covering(&s, moved).await;
    let all = published_checkpoints(&s).await;
    let i = all
        .iter()
        .position(|c| c["signature"] == second["signature"])
        .unwrap();
    assert_eq!(
        all.get(i + 1).map(|c| &c["signature"]),
        Some(&first["signature"]),
        "no checkpoint was signed while the head stayed: {all:?}"
    );
    // And none ever signs only the checkpoint before it.
    for pair in all.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert!(
            newer["position"].as_i64() > older["recorded_at_position"].as_i64(),
            "a checkpoint of nothing new: {newer} after {older}"
        );
    }
}

/// The rewind watcher never mistakes a busy log for a rewound one: with
/// many appends committing while it reads the head every millisecond, a
/// head read from a snapshot taken before a commit is not "behind" that
/// commit. (It was: the floor was read after the snapshot.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_log_is_never_taken_for_a_rewound_one() {
    let options = gatehouse_tests::server::Options {
        log_poll_ms: 1,
        ..Default::default()
    };
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start_with(&db, options).await;
    let k = KeyedApp::new(&s, &db, "busy-log").await;
    let path = format!("/v1/apps/{}/events", k.app);
    let writers = (0..16).map(|w| {
        let (http, url, token) = (s.http.clone(), s.url(&path), k.owner.clone());
        tokio::spawn(async move {
            for n in 0..150 {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"type": "order.placed", "payload": {"w": w, "n": n}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202, "writer {w}, message {n}");
            }
        })
    });
    for w in futures::future::join_all(writers).await {
        w.unwrap();
    }
    let ready = s.readiness().await;
    assert!(ready.get("reason").is_none(), "{ready}");
}
