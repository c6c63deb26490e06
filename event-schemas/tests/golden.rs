//! Golden fixtures: one stored payload per event type and schema version.
//! A stored event never changes; if one of these fails, the change needs a
//! new schema version and an upcaster, not an edited fixture.

use chrono::{DateTime, Utc};
use event_schemas::sealed::Sealed;
use event_schemas::user::{
    AccountEvent, EmailClaimed, SessionEnded, SessionStarted, StaffGranted, UserSignedUp,
};
use event_schemas::{DomainEvent, RecordedEvent, GENESIS_HASH};
use uuid::Uuid;

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

fn recorded(event_type: &str, data: &str) -> RecordedEvent {
    RecordedEvent {
        global_position: 1,
        stream_id: "x-1".into(),
        stream_version: 1,
        event_id: Uuid::nil(),
        event_type: event_type.into(),
        schema_version: 1,
        data: serde_json::value::RawValue::from_string(data.into()).expect("fixture is JSON"),
        metadata: serde_json::value::RawValue::from_string("{}".into()).expect("JSON"),
        recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        prev_hash: GENESIS_HASH,
        hash: GENESIS_HASH,
    }
}

fn check(event: AccountEvent) {
    let name = format!("{}.v{}", event.event_type(), AccountEvent::SCHEMA_VERSION);
    let golden = fixture(&name);
    assert_eq!(
        serde_json::to_string(&event).expect("serialises"),
        golden,
        "{name} is written as before"
    );
    let decoded = AccountEvent::decode(&recorded(event.event_type(), &golden)).expect("decodes");
    assert_eq!(decoded, Some(event), "{name} reads back");
}

#[test]
fn account_events_keep_their_stored_shape() {
    let user_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let session_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    check(AccountEvent::UserSignedUp(UserSignedUp {
        user_id,
        email_index: "ab".repeat(32),
        email: Sealed("c2VhbGVkLWVtYWls".into()),
        name: Sealed("c2VhbGVkLW5hbWU=".into()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }));
    check(AccountEvent::EmailClaimed(EmailClaimed { user_id }));
    check(AccountEvent::SessionStarted(SessionStarted {
        session_id,
        user_id,
        token_hash: "cd".repeat(32),
        expires_at: DateTime::<Utc>::UNIX_EPOCH,
    }));
    check(AccountEvent::SessionEnded(SessionEnded {
        session_id,
        reason: "signed_out".into(),
    }));
    check(AccountEvent::StaffGranted(StaffGranted { user_id }));
}

#[test]
fn an_unknown_schema_version_is_refused_not_guessed() {
    let mut e = recorded("session.ended", &fixture("session.ended.v1"));
    e.schema_version = 2;
    assert!(AccountEvent::decode(&e).is_err());
}
