//! The index's verdicts, fed the log's events, at instants the test sets.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::apps::Mode;
use domain::keys::format::{self, Minted};
use domain::keys::KeyKind;
use event_schemas::app::{
    AccessApproved, AccessRequested, AppCreated, AppDeleted, AppEvent, AppStatusChanged,
};
use event_schemas::key::{KeyEvent, KeyIssued, KeyRevoked, KeyRotated, UsageEvent};
use event_schemas::org::{OrgEvent, PlanSet};
use event_schemas::{Actor, DomainEvent, Metadata, RecordedEvent, GENESIS_HASH};
use uuid::Uuid;
use verifier::{Index, ManualClock, Reason};

const T0: i64 = 1_800_000_000_000;
const ORG: Uuid = Uuid::from_u128(1);
const APP: Uuid = Uuid::from_u128(2);

struct Log {
    index: Arc<Index>,
    clock: Arc<ManualClock>,
    position: u64,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("valid")
}

impl Log {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::at(T0));
        let index = Arc::new(Index::new("gh", clock.clone()));
        index.mark_ready();
        let mut log = Log {
            index,
            clock,
            position: 0,
        };
        log.app(AppEvent::Created(AppCreated {
            app_id: APP,
            org_id: ORG,
            team_id: None,
            name: "a".into(),
            slug: "a".into(),
            description: String::new(),
            origins: vec![],
            callback_urls: vec![],
            attributes: Default::default(),
            sandbox_tenant_id: None,
        }));
        log.app(AppEvent::AccessRequested(AccessRequested {
            request_id: Uuid::from_u128(3),
            product_id: Uuid::from_u128(4),
            mode: "test".into(),
        }));
        log.app(AppEvent::AccessApproved(AccessApproved {
            request_id: Uuid::from_u128(3),
            scopes: vec!["read".into(), "write".into()],
            automatic: true,
        }));
        log
    }

    fn push<E: DomainEvent>(&mut self, stream: String, e: &E) -> Uuid {
        self.position += 1;
        let id = Uuid::now_v7();
        let recorded = RecordedEvent {
            global_position: self.position,
            stream_id: stream,
            stream_version: 1,
            event_id: id,
            event_type: e.event_type().into(),
            schema_version: 1,
            data: serde_json::value::to_raw_value(e).expect("json"),
            metadata: serde_json::value::to_raw_value(&Metadata::by(Actor::system()))
                .expect("json"),
            recorded_at: at(self.clock_ms()),
            prev_hash: GENESIS_HASH,
            hash: GENESIS_HASH,
        };
        self.index.apply(&[recorded]).expect("applies");
        id
    }

    fn clock_ms(&self) -> i64 {
        use verifier::Clock;
        self.clock.now_ms()
    }

    fn app(&mut self, e: AppEvent) {
        self.push(format!("app-{APP}"), &e);
    }

    fn key(
        &mut self,
        id: u128,
        kind: KeyKind,
        scopes: &[&str],
        expires_ms: Option<i64>,
        rate: Option<(u32, u32)>,
    ) -> String {
        let Minted {
            plaintext,
            prefix,
            hash,
        } = format::mint("gh", Mode::Test, kind, &[id as u8; 32]);
        let e = KeyEvent::Issued(KeyIssued {
            key_id: Uuid::from_u128(id),
            app_id: APP,
            org_id: ORG,
            name: "k".into(),
            mode: "test".into(),
            kind: kind.as_str().into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            prefix,
            hash: format::hash_hex(&hash),
            expires_at: expires_ms.map(at),
            rate_limit: rate.map(|r| r.0),
            rate_limit_window_secs: rate.map(|r| r.1),
            rotated_from: None,
            imported: false,
        });
        self.push(format!("api_key-{}", Uuid::from_u128(id)), &e);
        plaintext
    }

    fn key_event(&mut self, id: u128, e: KeyEvent) {
        self.push(format!("api_key-{}", Uuid::from_u128(id)), &e);
    }

    fn plan(&mut self, limit: u64) {
        let e = OrgEvent::PlanSet(PlanSet {
            plan: "pro".into(),
            modules: vec!["platform.api".into()],
            monthly_call_limit: limit,
            subscription_state: "active".into(),
            billing_window_start: at(T0 - 1000),
            billing_window_end: at(T0 + 30 * 86_400_000),
            by: Uuid::nil(),
        });
        self.push(format!("org-{ORG}"), &e);
    }

    fn reason(&self, key: &str, scope: Option<&str>) -> Option<Reason> {
        self.index.verify(key, scope).reason
    }
}

#[test]
fn a_secret_key_verifies_with_its_apps_scopes() {
    let mut log = Log::new();
    let key = log.key(10, KeyKind::Secret, &[], None, None);
    let v = log.index.verify(&key, None);
    assert!(v.valid(), "{v:?}");
    let facts = v.key.expect("known");
    assert_eq!(
        (facts.key_id, facts.app_id, facts.org_id),
        (Uuid::from_u128(10), APP, ORG)
    );
    assert_eq!(&*facts.scopes, ["read".to_string(), "write".to_string()]);
    assert_eq!(v.remaining, None, "no plan, no quota");
}

#[test]
fn malformed_keys_are_unknown_without_a_lookup() {
    let mut log = Log::new();
    let key = log.key(10, KeyKind::Secret, &[], None, None);
    let typo = format!("{}x", &key[..key.len() - 1]);
    for bad in ["", "nope", typo.as_str(), &key.replace("gh_", "xx_")] {
        assert_eq!(log.reason(bad, None), Some(Reason::Unknown));
    }
    let stats = log.index.stats();
    assert_eq!((stats.malformed, stats.lookups), (4, 0));
    // A well-formed key nobody issued is looked up, and unknown.
    let stranger = format::mint("gh", Mode::Test, KeyKind::Secret, &[200; 32]).plaintext;
    assert_eq!(log.reason(&stranger, None), Some(Reason::Unknown));
    assert_eq!(log.index.stats().lookups, 1);
}

#[test]
fn expiry_is_exact_to_the_millisecond() {
    let mut log = Log::new();
    let key = log.key(10, KeyKind::Secret, &[], Some(T0 + 5000), None);
    log.clock.set(T0 + 4999);
    assert_eq!(log.reason(&key, None), None);
    log.clock.set(T0 + 5000);
    assert_eq!(log.reason(&key, None), Some(Reason::Expired));
}

#[test]
fn a_rotated_key_verifies_until_its_overlap_ends_and_a_revoked_one_never() {
    let mut log = Log::new();
    let old = log.key(10, KeyKind::Secret, &[], None, None);
    let new = log.key(11, KeyKind::Secret, &[], None, None);
    log.key_event(
        10,
        KeyEvent::Rotated(KeyRotated {
            replaced_by: Uuid::from_u128(11),
            stops_at: at(T0 + 1000),
        }),
    );
    assert_eq!(log.reason(&old, None), None);
    log.clock.set(T0 + 1000);
    assert_eq!(log.reason(&old, None), Some(Reason::Expired));
    assert_eq!(log.reason(&new, None), None);
    log.key_event(11, KeyEvent::Revoked(KeyRevoked { reason: None }));
    assert_eq!(log.reason(&new, None), Some(Reason::Revoked));
}

#[test]
fn restricted_keys_answer_scope_denied_outside_their_scopes() {
    let mut log = Log::new();
    let key = log.key(10, KeyKind::Restricted, &["read"], None, None);
    assert_eq!(log.reason(&key, Some("read")), None);
    assert_eq!(log.reason(&key, Some("write")), Some(Reason::ScopeDenied));
    let secret = log.key(11, KeyKind::Secret, &[], None, None);
    assert_eq!(log.reason(&secret, Some("write")), None);
    assert_eq!(
        log.reason(&secret, Some("admin")),
        Some(Reason::ScopeDenied)
    );
}

#[test]
fn the_apps_status_decides_first() {
    let mut log = Log::new();
    let key = log.key(10, KeyKind::Secret, &[], None, None);
    log.app(AppEvent::Suspended(AppStatusChanged { reason: "x".into() }));
    assert_eq!(log.reason(&key, None), Some(Reason::AppSuspended));
    log.app(AppEvent::Reinstated(AppStatusChanged {
        reason: "x".into(),
    }));
    assert_eq!(log.reason(&key, None), None);
    log.app(AppEvent::AccessRequested(AccessRequested {
        request_id: Uuid::from_u128(5),
        product_id: Uuid::from_u128(6),
        mode: "live".into(),
    }));
    assert_eq!(
        log.reason(&key, None),
        None,
        "an approved product keeps the app active"
    );
    log.app(AppEvent::Deleted(AppDeleted { reason: None }));
    assert_eq!(log.reason(&key, None), Some(Reason::AppDeleted));
}

#[test]
fn a_pending_app_has_keys_that_wait() {
    let clock = Arc::new(ManualClock::at(T0));
    let mut log = Log {
        index: Arc::new(Index::new("gh", clock.clone())),
        clock,
        position: 0,
    };
    log.app(AppEvent::Created(AppCreated {
        app_id: APP,
        org_id: ORG,
        team_id: None,
        name: "a".into(),
        slug: "a".into(),
        description: String::new(),
        origins: vec![],
        callback_urls: vec![],
        attributes: Default::default(),
        sandbox_tenant_id: None,
    }));
    log.app(AppEvent::AccessRequested(AccessRequested {
        request_id: Uuid::from_u128(3),
        product_id: Uuid::from_u128(4),
        mode: "test".into(),
    }));
    let key = log.key(10, KeyKind::Secret, &[], None, None);
    assert_eq!(log.reason(&key, None), Some(Reason::AppPending));
    log.app(AppEvent::AccessApproved(AccessApproved {
        request_id: Uuid::from_u128(3),
        scopes: vec!["read".into()],
        automatic: false,
    }));
    assert_eq!(log.reason(&key, None), None);
}

#[test]
fn a_rate_limit_holds_under_parallel_callers_and_resets_with_the_window() {
    let mut log = Log::new();
    let key = log.key(10, KeyKind::Secret, &[], None, Some((100, 1)));
    let index = log.index.clone();
    let valid: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| (0..50).filter(|_| index.verify(&key, None).valid()).count()))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(valid, 100, "exactly the limit, across 8 threads");
    let v = log.index.verify(&key, None);
    assert_eq!(v.reason, Some(Reason::RateLimited));
    assert_eq!(v.retry_at_ms, Some((T0 / 1000 + 1) * 1000));
    log.clock.set(T0 + 1000);
    assert_eq!(log.reason(&key, None), None);
}

#[test]
fn a_quota_holds_under_parallel_callers() {
    let mut log = Log::new();
    log.plan(300);
    let key = log.key(10, KeyKind::Secret, &[], None, None);
    let index = log.index.clone();
    let valid: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..100)
                        .filter(|_| index.verify(&key, None).valid())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(valid, 300);
    let v = log.index.verify(&key, None);
    assert_eq!(
        (v.reason, v.remaining),
        (Some(Reason::QuotaExceeded), Some(0))
    );
}

#[test]
fn usage_is_drained_once_per_key_and_other_nodes_usage_counts_toward_the_quota() {
    let mut log = Log::new();
    log.plan(1000);
    let a = log.key(10, KeyKind::Secret, &[], None, None);
    let b = log.key(11, KeyKind::Restricted, &["read"], None, None);
    for _ in 0..500 {
        log.index.verify(&a, None);
    }
    log.index.verify(&b, Some("write"));
    log.index.verify(&b, None);
    log.clock.set(T0 + 60_000);
    let drained = log.index.drain_usage(Uuid::now_v7);
    let mut usage: Vec<_> = drained
        .usage
        .iter()
        .map(|(_, u)| (u.key_id, u.calls, u.errors))
        .collect();
    usage.sort();
    assert_eq!(
        usage,
        [(Uuid::from_u128(10), 500, 0), (Uuid::from_u128(11), 1, 1)]
    );
    assert!(
        log.index.drain_usage(Uuid::now_v7).usage.is_empty(),
        "nothing twice"
    );
    // Our own events coming back through the log are not counted again...
    for (id, u) in &drained.usage {
        log.position += 1;
        let recorded = RecordedEvent {
            global_position: log.position,
            stream_id: format!("usage-{}", u.key_id),
            stream_version: 1,
            event_id: *id,
            event_type: "usage.recorded".into(),
            schema_version: 1,
            data: serde_json::value::to_raw_value(&UsageEvent::Recorded(u.clone())).expect("json"),
            metadata: serde_json::value::to_raw_value(&Metadata::by(Actor::system()))
                .expect("json"),
            recorded_at: at(T0),
            prev_hash: GENESIS_HASH,
            hash: GENESIS_HASH,
        };
        log.index.apply(&[recorded]).expect("applies");
    }
    assert_eq!(log.index.verify(&a, None).remaining, Some(1000 - 501 - 1));
    // ...but another node's are.
    let (_, mut other) = drained.usage[0].clone();
    other.calls = 400;
    log.push(
        format!("usage-{}", other.key_id),
        &UsageEvent::Recorded(other),
    );
    assert_eq!(
        log.index.verify(&a, None).remaining,
        Some(1000 - 502 - 1 - 400)
    );
}

#[test]
fn a_restored_batch_is_drained_again() {
    let mut log = Log::new();
    let a = log.key(10, KeyKind::Secret, &[], None, None);
    log.index.verify(&a, None);
    let drained = log.index.drain_usage(Uuid::now_v7);
    log.index.restore(drained);
    let again = log.index.drain_usage(Uuid::now_v7);
    assert_eq!(again.usage.len(), 1);
    assert_eq!(again.usage[0].1.calls, 1);
}
