//! The operator tools behind `gatehouse-replay`, against a real log: read
//! models compared with a fresh rebuild (and a hand edit caught), an
//! interrupted rebuild resumed, state at a point, selections for export.

use gatehouse_tests::keys::KeyedApp;
use gatehouse_tests::server::TestServer;
use replay_tools::log::{page, Selection};
use replay_tools::state_at::{state_at, Point};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn read_models_match_a_fresh_rebuild_until_one_is_edited_by_hand() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "rm-check").await;
    app.test_key(&s).await;
    s.stop().await;
    let pool = event_store::postgres::pool(&db.config, 4);
    for p in projections::all() {
        let c = replay_tools::read_models::check(&pool, p.as_ref(), 5000)
            .await
            .unwrap();
        assert!(c.tables > 0 && c.position > 0, "{c:?}");
        assert_eq!(c.differences, vec![], "{} matches", c.name);
    }
    db.client()
        .await
        .batch_execute(&format!(
            "UPDATE rm.apps SET name = 'edited' WHERE app_id = '{}'",
            app.app
        ))
        .await
        .unwrap();
    let apps = projections::by_name("apps").unwrap();
    let c = replay_tools::read_models::check(&pool, apps.as_ref(), 5000)
        .await
        .unwrap();
    assert_eq!(c.differences.len(), 1, "{c:?}");
    assert_eq!(c.differences[0].0, "apps");
    // The scratch schema is gone.
    let left: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'rm_check_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn an_interrupted_rebuild_resumes_its_generation_where_it_stopped() {
    let db = gatehouse_tests::fresh_db().await;
    let store = event_store::postgres::PgStore::connect(db.config.clone(), Default::default())
        .await
        .unwrap();
    use event_store::EventStoreExt;
    for chunk in 0..3 {
        let events = (0..10_000)
            .map(|i| {
                event_schemas::NewEvent::raw(
                    "demo.counted",
                    json!({"n": chunk * 10_000 + i}),
                    event_schemas::Metadata::by(event_schemas::Actor::system()),
                )
            })
            .collect();
        store
            .append(
                &format!("demo-{chunk}"),
                event_schemas::ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap();
    }
    let pool = event_store::postgres::pool(&db.config, 4);
    let counts = projections::by_name("event_counts").unwrap();
    // The first run dies after its first batch (as a killed process would).
    let (p, pool2) = (counts.clone(), pool.clone());
    let first = tokio::spawn(async move {
        projections::rebuild(&pool2, p.as_ref(), |progress| {
            if progress.position >= 10_000 {
                panic!("interrupted at {}", progress.position);
            }
        })
        .await
    });
    assert!(first.await.is_err(), "the first run was interrupted");
    let row = db
        .client()
        .await
        .query_one(
            "SELECT generation, position FROM projection_generations \
             WHERE name = 'event_counts' AND state = 'building'",
            &[],
        )
        .await
        .unwrap();
    let (generation, stopped_at): (i32, i64) = (row.get(0), row.get(1));
    assert!((10_000..30_000).contains(&stopped_at), "{stopped_at}");
    projections::release(&pool, "event_counts", generation)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let (rebuilt, at) = projections::rebuild(&pool, counts.as_ref(), |p| {
        seen.push((p.generation, p.position))
    })
    .await
    .unwrap();
    assert_eq!(rebuilt, generation, "the same generation was resumed");
    assert_eq!(at, 30_000);
    assert!(
        seen[0].1 > stopped_at as u64,
        "it went on from its checkpoint: {seen:?}"
    );
    let n: i64 = db
        .client()
        .await
        .query_one(
            "SELECT events FROM rm.event_counts WHERE event_type = 'demo.counted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 30_000, "every event counted exactly once");
}

#[tokio::test]
async fn state_at_folds_a_stream_to_a_point_and_export_selects_what_it_is_asked() {
    let db = gatehouse_tests::fresh_db().await;
    let s = TestServer::start(&db).await;
    let app = KeyedApp::new(&s, &db, "state-at").await;
    let (status, _, renamed) = s
        .call(
            Method::PATCH,
            &format!("/v1/apps/{}", app.app),
            &app.owner,
            Some(json!({"name": "Renamed"})),
            app.at,
        )
        .await;
    assert_eq!(status, 200);
    s.stop().await;
    let pool = event_store::postgres::pool(&db.config, 4);
    let stream = format!("app-{}", app.app);
    let before = state_at(&pool, &stream, Point::Position(renamed - 1))
        .await
        .unwrap();
    assert_eq!(before.aggregate, "App");
    assert!(
        before.state.contains("name: \"Checkout\""),
        "{}",
        before.state
    );
    let after = state_at(&pool, &stream, "99999999".parse().unwrap())
        .await
        .unwrap();
    assert!(after.state.contains("name: \"Renamed\""), "{}", after.state);
    assert_eq!(after.version, before.version + 1);
    let by_time = state_at(&pool, &stream, Point::Time(after.recorded_at.unwrap()))
        .await
        .unwrap();
    assert_eq!(by_time.version, after.version);
    assert!("yesterday".parse::<Point>().is_err());

    let sel = Selection {
        types: vec!["app.*".into()],
        ..Default::default()
    };
    let apps = page(&pool, &sel, 0).await.unwrap();
    assert!(!apps.is_empty() && apps.iter().all(|e| e.event_type.starts_with("app.")));
    let sel = Selection {
        stream: Some(stream.clone()),
        after: 0,
        upto: Some(renamed - 1),
        ..Default::default()
    };
    let upto = page(&pool, &sel, 0).await.unwrap();
    assert!(upto
        .iter()
        .all(|e| e.stream_id == stream && e.global_position < renamed));
    assert_eq!(upto.len() as u64, before.events);
    let sel = Selection {
        category: Some("api_key".into()),
        ..Default::default()
    };
    assert!(
        page(&pool, &sel, 0).await.unwrap().is_empty(),
        "no keys were issued"
    );
}
