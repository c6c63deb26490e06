//! One contract suite for every event store backend: each check runs against
//! the in-memory store and against PostgreSQL, and, in a build with the
//! `kurrentdb` feature and `KURRENTDB_URL` set, against KurrentDB (each
//! test on a log stream of its own). Also the mirror that copies a foreign
//! log into PostgreSQL for the read models.

use std::sync::Arc;

use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::memory::MemoryStore;
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{AppendError, EventStore, EventStoreExt, SharedStore, StreamAppend};
use serde_json::json;

fn ev(n: u64) -> NewEvent {
    NewEvent::raw(
        "test.happened",
        json!({ "n": n }),
        Metadata::by(Actor::system()),
    )
}

async fn pg() -> SharedStore {
    let db = gatehouse_tests::fresh_db().await;
    Arc::new(
        PgStore::connect(db.config, PgStoreOptions::default())
            .await
            .unwrap(),
    )
}

/// Says that `test` checked nothing, on stderr and on stdout (so that
/// `--nocapture` shows it whichever stream is read): without
/// `KURRENTDB_URL` a KurrentDB test returns at once and passes.
#[cfg(feature = "kurrentdb")]
fn skipped(test: &str) {
    let line = format!("skipped: {test} did not run against KurrentDB (set KURRENTDB_URL to run)");
    eprintln!("{line}");
    println!("{line}");
}

/// A KurrentDB store on a fresh log stream, when `KURRENTDB_URL` is set;
/// without it, `test` is reported skipped.
#[cfg(feature = "kurrentdb")]
async fn kurrent(test: &str) -> Option<SharedStore> {
    let Ok(url) = std::env::var("KURRENTDB_URL") else {
        skipped(&format!("kurrentdb::{test}"));
        return None;
    };
    let log = format!("gatehouse-test-{}", uuid::Uuid::new_v4().simple());
    let store = event_store::kurrent::KurrentStore::connect(&url, Some(&log))
        .await
        .unwrap();
    Some(store)
}

fn mem() -> SharedStore {
    Arc::new(MemoryStore::new())
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(super::mem()).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::pg().await).await } )*
        }
        #[cfg(feature = "kurrentdb")]
        mod kurrentdb {
            $( #[tokio::test] async fn $name() {
                if let Some(store) = super::kurrent(stringify!($name)).await {
                    super::$name(store).await
                }
            } )*
        }
    };
}

contract!(
    appends_and_reads_back_a_stream,
    a_wrong_expected_version_is_a_conflict_and_appends_nothing,
    no_stream_refuses_an_existing_stream,
    global_positions_are_contiguous_and_chained,
    a_multi_stream_append_is_atomic,
    a_retried_append_is_idempotent,
    reusing_an_event_id_in_another_append_is_refused,
    malformed_appends_are_refused,
    a_subscription_catches_up_then_follows,
    read_all_pages_from_a_position,
);

async fn appends_and_reads_back_a_stream(store: SharedStore) {
    let a = store
        .append("app-1", ExpectedVersion::NoStream, vec![ev(1), ev(2)])
        .await
        .unwrap();
    assert_eq!((a.first_position, a.last_position), (1, 2));
    assert_eq!(a.stream_versions, vec![2]);
    let b = store
        .append("app-1", ExpectedVersion::Exact(2), vec![ev(3)])
        .await
        .unwrap();
    assert_eq!(b.stream_versions, vec![3]);
    let events = store.read_stream("app-1", 1, 100).await.unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3]);
    assert_eq!(events[2].data.get(), r#"{"n":3}"#);
    assert_eq!(store.read_stream("app-1", 3, 100).await.unwrap().len(), 1);
    assert!(store.read_stream("app-2", 1, 100).await.unwrap().is_empty());
    assert_eq!(store.head().await.unwrap(), 3);
}

async fn a_wrong_expected_version_is_a_conflict_and_appends_nothing(store: SharedStore) {
    store
        .append("s-1", ExpectedVersion::NoStream, vec![ev(1)])
        .await
        .unwrap();
    let err = store
        .append("s-1", ExpectedVersion::Exact(5), vec![ev(2)])
        .await
        .unwrap_err();
    match err {
        AppendError::Conflict {
            stream_id, actual, ..
        } => {
            assert_eq!(stream_id, "s-1");
            assert_eq!(actual, 1);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), 1);
    let any = store
        .append("s-1", ExpectedVersion::Any, vec![ev(3)])
        .await
        .unwrap();
    assert_eq!(any.stream_versions, vec![2]);
}

async fn no_stream_refuses_an_existing_stream(store: SharedStore) {
    store
        .append("s-1", ExpectedVersion::NoStream, vec![ev(1)])
        .await
        .unwrap();
    let err = store
        .append("s-1", ExpectedVersion::NoStream, vec![ev(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::Conflict { actual: 1, .. }),
        "{err:?}"
    );
    let err = store
        .append("s-2", ExpectedVersion::Exact(1), vec![ev(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::Conflict { actual: 0, .. }),
        "{err:?}"
    );
}

async fn global_positions_are_contiguous_and_chained(store: SharedStore) {
    for i in 0..5 {
        store
            .append(
                &format!("s-{i}"),
                ExpectedVersion::Any,
                vec![ev(i), ev(i + 100)],
            )
            .await
            .unwrap();
    }
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 10);
    let mut prev = event_schemas::GENESIS_HASH;
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.global_position, i as u64 + 1);
        assert_eq!(e.prev_hash, prev, "chain link at {}", e.global_position);
        assert_eq!(e.hash, e.computed_hash(), "hash at {}", e.global_position);
        prev = e.hash;
    }
}

async fn a_multi_stream_append_is_atomic(store: SharedStore) {
    store
        .append("email-x", ExpectedVersion::NoStream, vec![ev(0)])
        .await
        .unwrap();
    let err = store
        .append_all(vec![
            StreamAppend::new("user-1", ExpectedVersion::NoStream, vec![ev(1)]),
            StreamAppend::new("email-x", ExpectedVersion::NoStream, vec![ev(2)]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Conflict { .. }));
    assert!(store.read_stream("user-1", 1, 10).await.unwrap().is_empty());
    let ok = store
        .append_all(vec![
            StreamAppend::new("user-1", ExpectedVersion::NoStream, vec![ev(1)]),
            StreamAppend::new("email-y", ExpectedVersion::NoStream, vec![ev(2)]),
        ])
        .await
        .unwrap();
    assert_eq!(ok.stream_versions, vec![1, 1]);
    assert_eq!((ok.first_position, ok.last_position), (2, 3));
}

async fn a_retried_append_is_idempotent(store: SharedStore) {
    let events = vec![ev(1), ev(2)];
    let first = store
        .append("s-1", ExpectedVersion::NoStream, events.clone())
        .await
        .unwrap();
    let again = store
        .append("s-1", ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(store.head().await.unwrap(), 2);
}

async fn reusing_an_event_id_in_another_append_is_refused(store: SharedStore) {
    let e = ev(1);
    store
        .append("s-1", ExpectedVersion::Any, vec![e.clone()])
        .await
        .unwrap();
    let err = store
        .append("s-2", ExpectedVersion::Any, vec![ev(2), e.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::DuplicateEventId(id) if id == e.event_id),
        "{err:?}"
    );
    assert_eq!(store.head().await.unwrap(), 1);
}

async fn malformed_appends_are_refused(store: SharedStore) {
    let err = store
        .append("s-1", ExpectedVersion::Any, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid(_)));
    let err = store
        .append("", ExpectedVersion::Any, vec![ev(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid(_)));
    let err = store
        .append_all(vec![
            StreamAppend::new("s-1", ExpectedVersion::Any, vec![ev(1)]),
            StreamAppend::new("s-1", ExpectedVersion::Any, vec![ev(2)]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid(_)));
    assert_eq!(store.head().await.unwrap(), 0);
}

async fn a_subscription_catches_up_then_follows(store: SharedStore) {
    store
        .append("s-1", ExpectedVersion::Any, vec![ev(1), ev(2)])
        .await
        .unwrap();
    let mut sub = event_store::subscribe(store.clone(), 0);
    assert_eq!(sub.next().await.unwrap().global_position, 1);
    assert_eq!(sub.next().await.unwrap().global_position, 2);
    let writer = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        writer
            .append("s-2", ExpectedVersion::Any, vec![ev(3)])
            .await
            .unwrap();
    });
    let third = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
        .await
        .expect("the subscription is woken by the new event")
        .unwrap();
    assert_eq!(third.global_position, 3);
    assert_eq!(third.stream_id, "s-2");
}

async fn read_all_pages_from_a_position(store: SharedStore) {
    for i in 0..7 {
        store
            .append("s-1", ExpectedVersion::Any, vec![ev(i)])
            .await
            .unwrap();
    }
    let page = store.read_all(3, 2).await.unwrap();
    let positions: Vec<u64> = page.iter().map(|e| e.global_position).collect();
    assert_eq!(positions, vec![4, 5]);
    assert!(store.read_all(7, 10).await.unwrap().is_empty());
}

/// The mirror's half in PostgreSQL: a log recorded elsewhere is copied
/// with its positions and hashes, only where it continues the table.
#[tokio::test]
async fn an_imported_log_continues_the_table_or_writes_nothing() {
    let source = pg().await;
    for n in 0..5 {
        source
            .append(&format!("s-{}", n % 2), ExpectedVersion::Any, vec![ev(n)])
            .await
            .unwrap();
    }
    let events = source.read_all(0, 100).await.unwrap();
    let db = gatehouse_tests::fresh_db().await;
    let mirror = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    let client = mirror.pool().get().await.unwrap();
    assert!(
        !event_store::postgres::import(&client, &events[2..])
            .await
            .unwrap(),
        "a gap is refused"
    );
    assert_eq!(mirror.head().await.unwrap(), 0);
    assert!(event_store::postgres::import(&client, &events[..3])
        .await
        .unwrap());
    assert!(
        !event_store::postgres::import(&client, &events[1..])
            .await
            .unwrap(),
        "an overlap is refused"
    );
    let mut forged = events[3..].to_vec();
    forged[0].prev_hash = [9u8; 32];
    assert!(
        !event_store::postgres::import(&client, &forged)
            .await
            .unwrap(),
        "a broken seam is refused"
    );
    assert!(event_store::postgres::import(&client, &events[3..])
        .await
        .unwrap());
    let copied = mirror.read_all(0, 100).await.unwrap();
    assert_eq!(copied.len(), events.len());
    for (a, b) in events.iter().zip(&copied) {
        assert_eq!(
            (
                a.global_position,
                &a.stream_id,
                a.stream_version,
                a.event_id,
                a.hash,
                a.prev_hash
            ),
            (
                b.global_position,
                &b.stream_id,
                b.stream_version,
                b.event_id,
                b.hash,
                b.prev_hash
            )
        );
        assert_eq!(a.data.get(), b.data.get());
    }
    drop(client);
    let report = replay_tools::verify(mirror.pool(), &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.events, events.len() as u64, "{report:?}");
}

/// The KurrentDB log copied into PostgreSQL by the mirror, which the read
/// models follow.
#[cfg(feature = "kurrentdb")]
#[tokio::test]
async fn the_kurrentdb_log_is_mirrored_into_postgres() {
    let Ok(url) = std::env::var("KURRENTDB_URL") else {
        skipped("the_kurrentdb_log_is_mirrored_into_postgres");
        return;
    };
    let log = format!("gatehouse-test-{}", uuid::Uuid::new_v4().simple());
    let source = event_store::kurrent::KurrentStore::connect(&url, Some(&log))
        .await
        .unwrap();
    for n in 0..700 {
        source
            .append(&format!("s-{}", n % 7), ExpectedVersion::Any, vec![ev(n)])
            .await
            .unwrap();
    }
    let db = gatehouse_tests::fresh_db().await;
    let mirror = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    while event_store::kurrent::mirror::step(&source, mirror.pool())
        .await
        .unwrap()
        > 0
    {}
    assert_eq!(mirror.head().await.unwrap(), 700);
    let report = replay_tools::verify(mirror.pool(), &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.events, 700, "{report:?}");
}
