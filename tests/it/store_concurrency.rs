//! Concurrency against real PostgreSQL: optimistic concurrency on one
//! stream, and a live subscriber over many concurrent writers.

use std::collections::HashSet;
use std::sync::Arc;

use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{AppendError, EventStoreExt, SharedStore};
use serde_json::json;
use tokio::sync::Barrier;

fn ev(task: usize, n: usize) -> NewEvent {
    NewEvent::raw(
        "test.happened",
        json!({ "task": task, "n": n }),
        Metadata::by(Actor::system()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_stream_lose_no_update() {
    let db = gatehouse_tests::fresh_db().await;
    let store: SharedStore = Arc::new(
        PgStore::connect(db.config.clone(), PgStoreOptions::default())
            .await
            .unwrap(),
    );
    store
        .append("app-1", ExpectedVersion::NoStream, vec![ev(99, 0)])
        .await
        .unwrap();

    // One round: all 16 expect version 1; exactly one wins.
    let barrier = Arc::new(Barrier::new(16));
    let round = (0..16).map(|task| {
        let (store, barrier) = (store.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            store
                .append("app-1", ExpectedVersion::Exact(1), vec![ev(task, 0)])
                .await
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(round)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    for o in outcomes.iter().filter(|o| o.is_err()) {
        assert!(
            matches!(o, Err(AppendError::Conflict { actual: 2, .. })),
            "every loser gets the conflict error: {o:?}"
        );
    }

    // Then each task appends 10 events with read-decide-append retries.
    const PER_TASK: usize = 10;
    let writers = (0..16).map(|task| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut conflicts = 0;
            for n in 1..=PER_TASK {
                loop {
                    let version = store.read_stream("app-1", 1, 10_000).await.unwrap().len() as u64;
                    match store
                        .append("app-1", ExpectedVersion::Exact(version), vec![ev(task, n)])
                        .await
                    {
                        Ok(_) => break,
                        Err(AppendError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
            conflicts
        })
    });
    let conflicts: usize = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert!(conflicts > 0, "the writers really raced");

    let events = store.read_stream("app-1", 1, 100_000).await.unwrap();
    assert_eq!(events.len(), 2 + 16 * PER_TASK, "no lost update");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.stream_version, i as u64 + 1, "versions are contiguous");
    }
    let written: HashSet<(u64, u64)> = events
        .iter()
        .skip(2)
        .map(|e| {
            let d: serde_json::Value = serde_json::from_str(e.data.get()).unwrap();
            (d["task"].as_u64().unwrap(), d["n"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        written.len(),
        16 * PER_TASK,
        "every acknowledged append is there, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_sees_every_event_of_concurrent_writers_exactly_once_in_order() {
    let db = gatehouse_tests::fresh_db().await;
    let store: SharedStore = Arc::new(
        PgStore::connect(db.config.clone(), PgStoreOptions::default())
            .await
            .unwrap(),
    );
    const TASKS: usize = 16;
    const PER_TASK: usize = 100;
    let total = (TASKS * PER_TASK) as u64;

    let mut sub = event_store::subscribe(store.clone(), 0);
    let subscriber = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < total as usize {
            let e = tokio::time::timeout(std::time::Duration::from_secs(30), sub.next())
                .await
                .expect("the subscriber keeps up")
                .unwrap();
            seen.push((e.global_position, e.event_id));
        }
        seen
    });
    let writers = (0..TASKS).map(|task| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..PER_TASK {
                let e = ev(task, n);
                ids.push(e.event_id);
                let expected = if n == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(n as u64)
                };
                store
                    .append(&format!("app-{task}"), expected, vec![e])
                    .await
                    .unwrap();
            }
            ids
        })
    });
    let written: HashSet<uuid::Uuid> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let seen = subscriber.await.unwrap();
    let positions: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<_>>(),
        "strictly increasing, no gap"
    );
    let seen_ids: HashSet<uuid::Uuid> = seen.iter().map(|s| s.1).collect();
    assert_eq!(seen_ids.len(), seen.len(), "no event twice");
    assert_eq!(seen_ids, written, "every event seen");

    let pool = event_store::postgres::pool(&db.config, 2);
    let report = replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .expect("gatehouse-replay verify passes");
    assert_eq!(report.events, total);
    assert_eq!(report.streams, TASKS as u64);
}

#[tokio::test]
async fn a_tampered_payload_fails_verification_at_its_position() {
    let db = gatehouse_tests::fresh_db().await;
    let store = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    for i in 0..5 {
        store
            .append(&format!("app-{i}"), ExpectedVersion::Any, vec![ev(i, 0)])
            .await
            .unwrap();
    }
    let pool = event_store::postgres::pool(&db.config, 2);
    assert_eq!(
        replay_tools::verify(&pool, &Default::default(), |_| {})
            .await
            .unwrap()
            .events,
        5
    );

    let client = db.client().await;
    let refused = client
        .batch_execute(
            "UPDATE events SET data = '{\"task\": 0, \"n\": 666}' WHERE global_position = 3",
        )
        .await;
    assert!(refused.is_err(), "the trigger refuses updates");
    assert!(client
        .batch_execute("DELETE FROM events WHERE global_position = 5")
        .await
        .is_err());
    assert!(client.batch_execute("TRUNCATE events").await.is_err());

    // An attacker with superuser rights gets past the trigger; the chain
    // still catches it.
    client
        .batch_execute(
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete; \
             UPDATE events SET data = '{\"task\": 2, \"n\": 666}' WHERE global_position = 3; \
             ALTER TABLE events ENABLE TRIGGER events_no_update_delete;",
        )
        .await
        .unwrap();
    match replay_tools::verify(&pool, &Default::default(), |_| {}).await {
        Err(replay_tools::VerifyError::Bad(bad)) => {
            assert_eq!(bad.position, 3);
            assert!(bad.reason.contains("hash"), "{}", bad.reason);
        }
        other => panic!("verification must fail at position 3, got {other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_event_fails_verification_at_the_gap() {
    let db = gatehouse_tests::fresh_db().await;
    let store = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    for i in 0..4 {
        store
            .append("app-1", ExpectedVersion::Any, vec![ev(i, 0)])
            .await
            .unwrap();
    }
    db.client()
        .await
        .batch_execute(
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete; \
             DELETE FROM events WHERE global_position = 2;",
        )
        .await
        .unwrap();
    let pool = event_store::postgres::pool(&db.config, 2);
    let Err(replay_tools::VerifyError::Bad(bad)) =
        replay_tools::verify(&pool, &Default::default(), |_| {}).await
    else {
        panic!("verification must fail")
    };
    assert_eq!(bad.position, 2);
}

#[tokio::test]
async fn two_processes_appending_to_one_log_see_each_others_writes() {
    // Each store has its own appender and its own idea of the head; every
    // decision must still be made against the truth.
    let db = gatehouse_tests::fresh_db().await;
    let a = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    let b = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    a.append("app-1", ExpectedVersion::NoStream, vec![ev(0, 1)])
        .await
        .unwrap();
    b.append("app-1", ExpectedVersion::Exact(1), vec![ev(1, 2)])
        .await
        .unwrap();
    let stale = a
        .append("app-1", ExpectedVersion::Exact(1), vec![ev(0, 3)])
        .await;
    assert!(
        matches!(stale, Err(AppendError::Conflict { actual: 2, .. })),
        "a stale expectation is refused: {stale:?}"
    );
    a.append("app-1", ExpectedVersion::Exact(2), vec![ev(0, 4)])
        .await
        .unwrap();

    b.append("app-2", ExpectedVersion::NoStream, vec![ev(1, 5)])
        .await
        .unwrap();
    let exists = a
        .append("app-2", ExpectedVersion::NoStream, vec![ev(0, 6)])
        .await;
    assert!(
        matches!(exists, Err(AppendError::Conflict { actual: 1, .. })),
        "a stream created elsewhere is not created twice: {exists:?}"
    );
    let any = a
        .append("app-2", ExpectedVersion::Any, vec![ev(0, 7)])
        .await
        .unwrap();
    assert_eq!(any.stream_versions, vec![2]);

    // Interleaved writers on both stores: positions stay gap-free and the
    // chain verifies.
    let writers = (0..8).map(|w| {
        let store = if w % 2 == 0 { &a } else { &b };
        async move {
            for n in 0..25 {
                store
                    .append(&format!("app-w{w}"), ExpectedVersion::Any, vec![ev(w, n)])
                    .await
                    .unwrap();
            }
        }
    });
    futures::future::join_all(writers).await;
    let pool = event_store::postgres::pool(&db.config, 2);
    let report = replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.events, 5 + 200);
}
