//! Schema evolution: a type moved to a new version reads its old events
//! through its upcaster, straight from the log, without rewriting them;
//! and the schema check refuses a published version changed
//! incompatibly (on a fixture, never the real schemas).

use event_schemas::schemas::{check, Finding, TypeSchema};
use event_schemas::{DomainEvent, ExpectedVersion, Metadata, NewEvent};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{EventStore, EventStoreExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `demo.greeted` v2: v1 was `{"name": ...}`; v2 renamed it and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Greeted {
    /// Who was greeted.
    pub who: String,
    /// How many times.
    pub times: u32,
}

/// `demo.greeted` as v1 wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GreetedV1 {
    /// Who was greeted.
    pub name: String,
}

fn upcast(version: u32, old: Value) -> Result<Value, String> {
    match version {
        1 => {
            let v1: GreetedV1 = serde_json::from_value(old).map_err(|e| e.to_string())?;
            Ok(json!({"who": v1.name, "times": 1}))
        }
        v => Err(format!("no upcaster from v{v}")),
    }
}

event_schemas::event_family! {
    /// A fixture family at version 2.
    pub enum DemoEvent {
        /// `demo.greeted`
        Greeted(Greeted) = "demo.greeted" @ v 2 from upcast,
    }
}

#[tokio::test]
async fn v1_events_in_the_log_read_as_the_current_version_through_the_upcaster() {
    let db = gatehouse_tests::fresh_db().await;
    let store = PgStore::connect(db.config.clone(), PgStoreOptions::default())
        .await
        .unwrap();
    let meta = Metadata::by(event_schemas::Actor::system());
    let old = NewEvent::raw("demo.greeted", json!({"name": "Ada"}), meta.clone());
    assert_eq!(old.schema_version, 1);
    let current = DemoEvent::Greeted(Greeted {
        who: "Grace".into(),
        times: 3,
    });
    assert_eq!(current.schema_version(), 2);
    store
        .append("demo-1", ExpectedVersion::NoStream, vec![old])
        .await
        .unwrap();
    store
        .append(
            "demo-1",
            ExpectedVersion::Exact(1),
            vec![NewEvent::from_domain(&current, meta)],
        )
        .await
        .unwrap();

    let events = store.read_stream("demo-1", 1, 10).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.schema_version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let decoded: Vec<DemoEvent> = events
        .iter()
        .map(|e| DemoEvent::decode(e).unwrap().unwrap())
        .collect();
    assert_eq!(
        decoded,
        vec![
            DemoEvent::Greeted(Greeted {
                who: "Ada".into(),
                times: 1
            }),
            current
        ]
    );
    // The stored v1 event is untouched: the chain still covers it as written.
    assert_eq!(events[0].data.get(), r#"{"name":"Ada"}"#);
    let pool = event_store::postgres::pool(&db.config, 1);
    replay_tools::verify(&pool, &Default::default(), |_| {})
        .await
        .expect("the log verifies");

    // A version from the future, or a v1 the upcaster cannot read, is refused.
    let mut future = events[1].clone();
    future.schema_version = 3;
    assert!(DemoEvent::decode(&future).is_err());
    let mut broken = events[0].clone();
    broken.data = serde_json::value::RawValue::from_string(r#"{"nom": 1}"#.into()).unwrap();
    let err = DemoEvent::decode(&broken).unwrap_err();
    assert!(err.to_string().contains("upcast"), "{err}");
}

#[test]
fn the_schema_check_refuses_a_published_version_changed_incompatibly() {
    let dir = tempfile::tempdir().unwrap();
    let code = DemoEvent::schemas();
    assert_eq!(code.len(), 1);
    assert_eq!((code[0].version, code[0].upcasts), (2, true));
    std::fs::write(dir.path().join("demo.greeted.v2.json"), code[0].text()).unwrap();
    let v1 = TypeSchema::of::<GreetedV1>("demo.greeted", 1, false);
    std::fs::write(dir.path().join("demo.greeted.v1.json"), v1.text()).unwrap();
    assert_eq!(
        check(&code, dir.path()).unwrap(),
        vec![],
        "v1 is published and upcast"
    );

    // The same v1 file, but the code lost its upcaster.
    let mut no_upcaster = code.clone();
    no_upcaster[0].upcasts = false;
    assert_eq!(
        check(&no_upcaster, dir.path()).unwrap(),
        vec![Finding::NoUpcaster {
            file: "demo.greeted.v1.json".into()
        }]
    );

    // Published v2 had a required `greeting` and `times` as a string: the
    // code removed a field and changed a type under the same version.
    let mut published: Value = code[0].schema.clone();
    published["properties"]["greeting"] = json!({"type": "string"});
    published["properties"]["times"] = json!({"type": "string"});
    published["required"] = json!(["who", "greeting"]);
    std::fs::write(
        dir.path().join("demo.greeted.v2.json"),
        serde_json::to_string_pretty(&published).unwrap(),
    )
    .unwrap();
    let findings = check(&code, dir.path()).unwrap();
    let [Finding::Incompatible { file, changes }] = findings.as_slice() else {
        panic!("{findings:?}")
    };
    assert_eq!(file, "demo.greeted.v2.json");
    assert!(
        changes.contains(&"field `greeting` removed".to_owned()),
        "{changes:?}"
    );
    assert!(
        changes.contains(&"field `times` changed type".to_owned()),
        "{changes:?}"
    );
    // Nor will `schemas write` paper over it.
    let (written, refused) = event_schemas::schemas::write(&code, dir.path()).unwrap();
    assert!(written.is_empty() && refused.len() == 1);

    // Code that adds a required field to a published version.
    let mut stricter = code.clone();
    stricter[0].schema["properties"]["mood"] = json!({"type": "string"});
    stricter[0].schema["required"] = json!(["who", "times", "mood"]);
    std::fs::write(dir.path().join("demo.greeted.v2.json"), code[0].text()).unwrap();
    let findings = check(&stricter, dir.path()).unwrap();
    assert!(
        matches!(&findings[..], [Finding::Incompatible { changes, .. }] if changes == &vec!["required field `mood` added".to_owned()]),
        "{findings:?}"
    );

    // An optional field added is compatible: only out of date.
    let mut looser = code.clone();
    looser[0].schema["properties"]["note"] = json!({"type": ["string", "null"]});
    assert_eq!(
        check(&looser, dir.path()).unwrap(),
        vec![Finding::OutOfDate {
            file: "demo.greeted.v2.json".into()
        }]
    );
}
