//! The projection runner against real PostgreSQL: exactly-once effects with
//! competing runners, blue/green rebuilds that reproduce the read models byte
//! for byte, poison events that stop a projection loudly, and version
//! upgrades.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent, RecordedEvent};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{EventStoreExt, SharedStore};
use gatehouse_tests::server::TestServer;
use gatehouse_tests::{fresh_db, TestDb};
use projections::{Projection, ProjectionError, ProjectionState, Runner, Statuses};
use serde_json::json;
use tokio::sync::watch;

fn ev(t: &str, n: u64) -> NewEvent {
    NewEvent::raw(t, json!({ "n": n }), Metadata::by(Actor::system()))
}

/// Starts a runner (a stand-in for one process) with its own pool.
fn start_runner(
    db: &TestDb,
    store: SharedStore,
    projection: Arc<dyn Projection>,
    stop: &watch::Receiver<bool>,
) -> (Statuses, tokio::task::JoinHandle<()>) {
    let pool = event_store::postgres::pool(&db.config, 4);
    let statuses = Statuses::new(&[projection.name()]);
    let runner = Runner::new(pool, store, projection, statuses.clone());
    let mut stop = stop.clone();
    let task = tokio::spawn(async move {
        runner
            .run(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
    (statuses, task)
}

async fn counted(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT coalesce(sum(events), 0)::bigint FROM rm.event_counts",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_runners_apply_every_event_exactly_once() {
    let db = fresh_db().await;
    let store: SharedStore = Arc::new(
        PgStore::connect(db.config.clone(), PgStoreOptions::default())
            .await
            .unwrap(),
    );
    let (stop_tx, stop) = watch::channel(false);
    let runners: Vec<_> = (0..3)
        .map(|_| {
            start_runner(
                &db,
                store.clone(),
                Arc::new(projections::event_counts::EventCounts),
                &stop,
            )
        })
        .collect();
    let writers = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..50 {
                store
                    .append(
                        &format!("app-{w}"),
                        ExpectedVersion::Any,
                        vec![ev("test.happened", n)],
                    )
                    .await
                    .unwrap();
            }
        })
    });
    futures::future::join_all(writers).await;
    let head = store.head().await.unwrap();
    assert_eq!(head, 400);
    for (statuses, _) in &runners {
        statuses
            .wait_for(&["event_counts"], head, Duration::from_secs(20))
            .await
            .expect("every runner sees the projection reach the head");
    }
    assert_eq!(counted(&db).await, 400, "each event applied exactly once");
    stop_tx.send(true).unwrap();
    for (_, task) in runners {
        task.await.unwrap();
    }
}

async fn dump(db: &TestDb) -> String {
    let client = db.client().await;
    let mut out = String::new();
    for (table, order) in [
        ("rm.users", "user_id"),
        ("rm.sessions", "session_id"),
        ("rm.staff", "user_id"),
        ("rm.event_counts", "event_type, category"),
        ("rm.orgs", "org_id"),
        ("rm.members", "org_id, user_id"),
        ("rm.invitations", "invitation_id"),
        ("rm.review_steps", "org_id, step"),
        ("rm.teams", "team_id"),
        ("rm.team_members", "team_id, user_id"),
        ("rm.apps", "app_id"),
        ("rm.app_members", "app_id, user_id"),
        ("rm.app_versions", "version_id"),
        ("rm.install_links", "link_id"),
        ("rm.installations", "app_id, org_id"),
        ("rm.access_requests", "request_id"),
        ("rm.distribution_requests", "request_id"),
        ("rm.products", "product_id"),
        ("rm.notifications", "position"),
        ("rm.developer_terms", "position"),
    ] {
        let row = client
            .query_one(
                &format!("SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '') FROM {table} t"),
                &[],
            )
            .await
            .unwrap();
        out.push_str(table);
        out.push('\n');
        out.push_str(&row.get::<_, String>(0));
        out.push('\n');
    }
    out
}

/// Apps, versions, installs, products and staff decisions; returns the
/// position reached.
async fn apps_activity(s: &TestServer, db: &TestDb, owner: &str) -> u64 {
    use reqwest::Method;
    use serde_json::json;
    let staff = s.staff(db, "ops@example.com").await;
    let (org, at) = s.workspace(owner, &staff, "apps-rebuilt").await;
    let body = json!({"name": "Rebuilt", "slug": "rebuilt-app", "attributes": {"k": "v"},
        "origins": ["https://rebuilt.example.com"]});
    let (_, app, at) = s
        .call(
            Method::POST,
            &format!("/v1/orgs/{org}/apps"),
            owner,
            Some(body),
            at,
        )
        .await;
    let app = app["id"].as_str().unwrap().to_owned();
    let manifest = json!({"name": "Rebuilt", "scopes": ["a.read"]});
    let (_, v, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/versions"),
            owner,
            Some(json!({"label": "1.0.0", "manifest": manifest})),
            at,
        )
        .await;
    let v_path = format!("/v1/apps/{app}/versions/{}", v["id"].as_str().unwrap());
    let (_, _, at) = s
        .call(Method::POST, &format!("{v_path}/publish"), owner, None, at)
        .await;
    let (_, link, at) = s
        .call(
            Method::POST,
            &format!("{v_path}/install-links"),
            owner,
            Some(json!({"single_use": false})),
            at,
        )
        .await;
    let (status, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/install/{}", link["token"].as_str().unwrap()),
            owner,
            Some(json!({"workspace_id": org})),
            at,
        )
        .await;
    assert_eq!(status, 201);
    let (_, product, at) = s
        .call(
            Method::POST,
            "/v1/staff/products",
            &staff,
            Some(json!({"name": "P", "scopes": ["p.read"], "approval": {"mode": "manual"}})),
            at,
        )
        .await;
    let (_, request, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/products"),
            owner,
            Some(json!({"product_id": product["id"], "mode": "test"})),
            at,
        )
        .await;
    let (_, _, at) = s
        .call(
            Method::POST,
            &format!(
                "/v1/staff/apps/{app}/access/{}/reject",
                request["id"].as_str().unwrap()
            ),
            &staff,
            Some(json!({"reason": "not now"})),
            at,
        )
        .await;
    let (_, _, at) = s
        .call(
            Method::POST,
            &format!("/v1/apps/{app}/visibility"),
            owner,
            Some(json!({"visibility": "unlisted"})),
            at,
        )
        .await;
    let (status, _, at) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{app}"),
            owner,
            Some(json!({"attributes": {"k": null, "j": "w"}})),
            at,
        )
        .await;
    assert_eq!(status, 200);
    // New terms put every organisation back to accepting them.
    let (status, _, at) = s
        .call(
            Method::POST,
            "/v1/staff/developer-terms",
            &staff,
            Some(json!({"version": "2027-01"})),
            at,
        )
        .await;
    assert_eq!(status, 201);
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blue_green_rebuild_reproduces_every_read_model_byte_for_byte() {
    let db = fresh_db().await;
    let s = TestServer::start(&db).await;
    for i in 0..5 {
        let (_, token, _) = s.user(&format!("user{i}@example.com")).await;
        if i % 2 == 0 {
            let r = s
                .http
                .delete(s.url("/v1/sessions/current"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    }
    let (_, token, _) = s.user("last@example.com").await;
    s.verify_email("user1@example.com").await;
    gatehouse_tests::make_staff(&db, "user1@example.com").await;
    let r = s
        .http
        .post(s.url("/v1/orgs"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"slug": "rebuilt", "name": "Rebuilt"}))
        .send()
        .await
        .unwrap();
    let org = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .http
        .post(s.url(&format!("/v1/orgs/{org}/invitations")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"email": "user1@example.com", "role": "finance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .post(s.url(&format!("/v1/orgs/{org}/teams")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Platform"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .post(s.url(&format!("/v1/orgs/{org}/developer-terms/accept")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"version": "2026-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let position = apps_activity(&s, &db, &token).await;
    // Wait for every projection to reach the head before the snapshot.
    let pool = event_store::postgres::pool(&db.config, 4);
    wait_caught_up(&s, position).await;
    let before = dump(&db).await;
    assert!(
        before.matches('\n').count() > 10,
        "the read models hold rows: {before}"
    );
    for expected in [
        "rebuilt-app",
        "not now",
        "product_access.rejected",
        "p.read",
        "unlisted",
    ] {
        assert!(
            before.contains(expected),
            "{expected} in the app read models"
        );
    }

    // The live runner applied these in small batches as commands came; a
    // rebuild in batches of any size gives the same rows, table by table.
    for batch in [1, 7, 10_000] {
        for p in projections::all() {
            let c = replay_tools::read_models::check(&pool, p.as_ref(), batch)
                .await
                .unwrap();
            assert!(c.tables > 0 && c.position >= position, "{c:?}");
            assert_eq!(c.differences, vec![], "{} in batches of {batch}", c.name);
        }
    }

    for p in projections::all() {
        let (generation, at) = projections::rebuild(&pool, p.as_ref(), |_| {})
            .await
            .unwrap();
        assert_eq!(
            generation,
            2,
            "{} rebuilt into a second generation",
            p.name()
        );
        assert_eq!(at, position);
    }
    assert_eq!(
        dump(&db).await,
        before,
        "the rebuilt read models are identical"
    );
    // A second swap of the generation already active (a racing node, a
    // retry after a lost reply) changes nothing.
    for p in projections::all() {
        let again = projections::runner::swap(&pool, p.as_ref(), 2)
            .await
            .unwrap();
        assert_eq!(again, position);
    }
    assert_eq!(
        dump(&db).await,
        before,
        "a repeated swap keeps the read models"
    );
    // And so does one pass over the log for every read model at once.
    let rebuilt = projections::rebuild_all(&pool, &projections::all(), Default::default(), |_| {})
        .await
        .unwrap();
    for r in rebuilt {
        assert_eq!(r.outcome.unwrap(), (3, position), "{} in one pass", r.name);
    }
    assert_eq!(dump(&db).await, before, "the one pass gives the same rows");
    let old_schemas: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rm\\_%\\_g1' \
             OR nspname LIKE 'rm\\_%\\_g2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old_schemas, 0, "the old generations are dropped");

    // The live server follows the new generation.
    let (_, token2, position2) = s.user("after@example.com").await;
    let r = s.get_at("/v1/me", &token2, position2).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/v1/me", Some(&token)).await.status(), 200);
}

async fn wait_caught_up(s: &TestServer, position: u64) {
    for _ in 0..200 {
        let ready: serde_json::Value = s.readiness().await;
        if ready["projections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["position"].as_u64().unwrap() >= position)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("projections did not catch up to {position}");
}

/// Counts events, and cannot apply `test.poison`.
struct Fragile {
    version: u32,
}

#[async_trait]
impl Projection for Fragile {
    fn name(&self) -> &'static str {
        "fragile"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn schema(&self) -> &'static str {
        if self.version == 1 {
            "CREATE TABLE fragile (position BIGINT PRIMARY KEY)"
        } else {
            "CREATE TABLE fragile (position BIGINT PRIMARY KEY, event_type TEXT NOT NULL)"
        }
    }
    fn tables(&self) -> &'static [&'static str] {
        &["fragile"]
    }
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            if e.event_type == "test.poison" {
                return Err(ProjectionError::Invariant {
                    position: e.global_position,
                    reason: "cannot digest poison".into(),
                });
            }
            if self.version == 1 {
                tx.execute(
                    "INSERT INTO fragile (position) VALUES ($1)",
                    &[&(e.global_position as i64)],
                )
                .await?;
            } else {
                tx.execute(
                    "INSERT INTO fragile (position, event_type) VALUES ($1, $2)",
                    &[&(e.global_position as i64), &e.event_type],
                )
                .await?;
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_stops_the_projection_loudly_and_is_never_skipped() {
    let db = fresh_db().await;
    let store: SharedStore = Arc::new(
        PgStore::connect(db.config.clone(), PgStoreOptions::default())
            .await
            .unwrap(),
    );
    for t in ["test.fine", "test.fine", "test.poison", "test.fine"] {
        store
            .append("s-1", ExpectedVersion::Any, vec![ev(t, 0)])
            .await
            .unwrap();
    }
    let (stop_tx, stop) = watch::channel(false);
    let (statuses, task) =
        start_runner(&db, store.clone(), Arc::new(Fragile { version: 1 }), &stop);
    let mut failed = None;
    for _ in 0..200 {
        let (_, status) = statuses.snapshot().pop().unwrap();
        if let ProjectionState::Failed { position, error } = status.state {
            failed = Some((position, error, status.position));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (position, error, applied) = failed.expect("the projection reports failure");
    assert_eq!(position, 3, "the poison event is named");
    assert!(error.contains("poison"), "{error}");
    assert_eq!(applied, 2, "the events before it are applied");
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT position, error_position, error FROM projection_generations WHERE name = 'fragile'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        2,
        "the checkpoint stays before the poison event"
    );
    assert_eq!(row.get::<_, i64>(1), 3);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM rm.fragile", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "nothing after the poison event was applied");
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_projection_version_fills_a_new_generation_then_swaps() {
    let db = fresh_db().await;
    let store: SharedStore = Arc::new(
        PgStore::connect(db.config.clone(), PgStoreOptions::default())
            .await
            .unwrap(),
    );
    for n in 0..20 {
        store
            .append("s-1", ExpectedVersion::Any, vec![ev("test.fine", n)])
            .await
            .unwrap();
    }
    let (stop_tx, stop) = watch::channel(false);
    let (v1, task) = start_runner(&db, store.clone(), Arc::new(Fragile { version: 1 }), &stop);
    v1.wait_for(&["fragile"], 20, Duration::from_secs(10))
        .await
        .unwrap();
    stop_tx.send(true).unwrap();
    task.await.unwrap();

    let (stop_tx, stop) = watch::channel(false);
    let (v2, task) = start_runner(&db, store.clone(), Arc::new(Fragile { version: 2 }), &stop);
    // Until the swap, reads are served by version 1, which is at 20.
    v2.wait_for(&["fragile"], 20, Duration::from_secs(10))
        .await
        .unwrap();
    let client = db.client().await;
    let mut active = (0, 0);
    for _ in 0..400 {
        let row = client
            .query_one(
                "SELECT generation, version FROM projection_generations \
                 WHERE name = 'fragile' AND state = 'active'",
                &[],
            )
            .await
            .unwrap();
        active = (row.get::<_, i32>(0), row.get::<_, i32>(1));
        if active.1 == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(active, (2, 2), "version 2 swapped in as generation 2");
    let typed: i64 = client
        .query_one(
            "SELECT count(*) FROM rm.fragile WHERE event_type = 'test.fine'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        typed, 20,
        "the view shows the new version's tables, filled from position 0"
    );
    stop_tx.send(true).unwrap();
    task.await.unwrap();

    // A node still on version 1 (a rolling deploy) stands by: it neither
    // rebuilds backwards nor touches version 2's tables.
    let (stop_tx, stop) = watch::channel(false);
    let (v1_again, task) =
        start_runner(&db, store.clone(), Arc::new(Fragile { version: 1 }), &stop);
    v1_again
        .wait_for(&["fragile"], 20, Duration::from_secs(10))
        .await
        .unwrap();
    let (_, status) = v1_again.snapshot().pop().unwrap();
    assert_eq!(status.state, ProjectionState::Standby);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let generations: i64 = client
        .query_one(
            "SELECT count(*) FROM projection_generations WHERE name = 'fragile'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(generations, 2, "no new generation was built");
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

/// [`Fragile`] that fails until told it may succeed, as a projection
/// meeting a passing fault does: its runner waits to retry, holding no lock.
struct Stumbling {
    inner: Fragile,
    healthy: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Projection for Stumbling {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn schema(&self) -> &'static str {
        self.inner.schema()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if !self.healthy.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ProjectionError::Invariant {
                position: events[0].global_position,
                reason: "a passing fault".into(),
            });
        }
        self.inner.apply(tx, events).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_never_drops_a_generation_a_live_server_is_filling() {
    let db = fresh_db().await;
    let store: SharedStore = Arc::new(
        PgStore::connect(db.config.clone(), PgStoreOptions::default())
            .await
            .unwrap(),
    );
    for n in 0..20 {
        store
            .append("s-1", ExpectedVersion::Any, vec![ev("test.fine", n)])
            .await
            .unwrap();
    }
    let (stop_tx, stop) = watch::channel(false);
    let (v1, task) = start_runner(&db, store.clone(), Arc::new(Fragile { version: 1 }), &stop);
    v1.wait_for(&["fragile"], 20, Duration::from_secs(10))
        .await
        .unwrap();
    stop_tx.send(true).unwrap();
    task.await.unwrap();

    // A server deploys version 2 and starts filling a new generation; its
    // first batch fails and it waits to retry, between batches.
    let stumbling = Arc::new(Stumbling {
        inner: Fragile { version: 2 },
        healthy: false.into(),
    });
    let (stop_tx, stop) = watch::channel(false);
    let (_v2, task) = start_runner(&db, store.clone(), stumbling.clone(), &stop);
    let client = db.client().await;
    let mut filling = None;
    for _ in 0..400 {
        let row = client
            .query_opt(
                "SELECT generation FROM projection_generations \
                 WHERE name = 'fragile' AND state = 'building' AND error IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            filling = Some(r.get::<_, i32>(0));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let filling = filling.expect("the server's generation met its fault");

    // Meanwhile an operator rebuilds. The server's generation is not the
    // debris of a dead rebuild: it must survive.
    let pool = event_store::postgres::pool(&db.config, 2);
    let (rebuilt, _) = projections::runner::rebuild(&pool, &Fragile { version: 2 }, |_| {})
        .await
        .unwrap();
    assert_ne!(rebuilt, filling);
    let state: Option<String> = client
        .query_opt(
            "SELECT state FROM projection_generations WHERE name = 'fragile' AND generation = $1",
            &[&filling],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    assert_eq!(
        state.as_deref(),
        Some("building"),
        "the live server's generation is kept"
    );

    // A generation whose filler died (its lease lapsed) is no one's any
    // more. Of the version being rebuilt, it is resumed from its checkpoint
    // (an interrupted rebuild goes on where it stopped)...
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let lapse = |g: i32| {
        let client = &client;
        async move {
            client
                .execute(
                    "UPDATE projection_generations SET lease_until = now() - interval '1 minute' \
                     WHERE name = 'fragile' AND generation = $1",
                    &[&g],
                )
                .await
                .unwrap();
        }
    };
    lapse(filling).await;
    let (resumed, _) = projections::runner::rebuild(&pool, &Fragile { version: 2 }, |_| {})
        .await
        .unwrap();
    assert_eq!(
        resumed, filling,
        "a lapsed generation of this version is resumed"
    );

    // ...of any other version (an abandoned upgrade), it is debris.
    let (stop_tx, stop) = watch::channel(false);
    let stumbling = Arc::new(Stumbling {
        inner: Fragile { version: 3 },
        healthy: false.into(),
    });
    let (_v3, task) = start_runner(&db, store.clone(), stumbling, &stop);
    let mut abandoned = None;
    for _ in 0..400 {
        abandoned = client
            .query_opt(
                "SELECT generation FROM projection_generations \
                 WHERE name = 'fragile' AND state = 'building' AND version = 3 AND error IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, i32>(0));
        if abandoned.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let abandoned = abandoned.expect("the upgrade's generation met its fault");
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    lapse(abandoned).await;
    projections::runner::rebuild(&pool, &Fragile { version: 2 }, |_| {})
        .await
        .unwrap();
    // (Its generation number may be reused by the rebuild; its version not.)
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM projection_generations WHERE name = 'fragile' AND version = 3",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "a lapsed generation of another version is debris");
}
