//! A generated history across every kind of event, for the rebuild and
//! audit scenarios: a base of real commands through a server in this
//! process (organisations with members, invitations, teams, terms,
//! plans, sandbox granted and production requested; apps renamed,
//! suspended, reinstated and granted products; keys issued, rotated and
//! revoked; webhook endpoints and messages; OAuth clients), then
//! copies of that base with every id remapped (UUIDs, keyed hashes, slugs),
//! each a consistent organisation of its own, until the log holds the
//! events asked for. Seeded once per size and kept between runs.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use event_schemas::{NewEvent, RecordedEvent};
use event_store::postgres::{PgStore, PgStoreOptions};
use event_store::{EventStore, StreamAppend};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::command::{create_app, workspace_named};
use crate::server::BenchServer;

/// Bumped whenever the base scenario changes, so a history seeded from an
/// older base is never reused.
const BASE_VERSION: u32 = 2;

/// Organisations in the base history.
const BASE_ORGS: usize = 4;

/// Runs the base scenario through a server over `config`.
async fn base(config: &tokio_postgres::Config, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let server = BenchServer::start(config.clone(), data_dir).await?;
    let (product, _) = server
        .call(
            Method::POST,
            "/v1/staff/products",
            Some(json!({"name": "Payments", "scopes": ["pay.read", "pay.write"], "approval": {"mode": "auto"}})),
            0,
        )
        .await?;
    let product = product["id"].as_str().context("a product id")?.to_owned();
    for o in 0..BASE_ORGS {
        let org = workspace_named(&server, &format!("hist{o}")).await?;
        server
            .call(
                Method::POST,
                &format!("/v1/orgs/{org}/invitations"),
                Some(json!({"email": format!("member{o}@example.com"), "role": "developer"})),
                0,
            )
            .await?;
        server
            .call(
                Method::POST,
                &format!("/v1/orgs/{org}/teams"),
                Some(json!({"name": "Core"})),
                0,
            )
            .await?;
        // The way to production: sandbox asked for and granted, then
        // production asked for (its review steps wait for staff).
        for step in [
            "sandbox-access",
            "sandbox-access/grant",
            "production-access",
        ] {
            server
                .call(Method::POST, &format!("/v1/orgs/{org}/{step}"), None, 0)
                .await?;
        }
        for a in 0..5 {
            let app = create_app(&server, &org, &format!("hist{o}-app{a}")).await?;
            for n in 0..3 {
                server
                    .call(
                        Method::PATCH,
                        &format!("/v1/apps/{app}"),
                        Some(json!({"description": format!("Revision {n}")})),
                        0,
                    )
                    .await?;
            }
            server
                .call(
                    Method::POST,
                    &format!("/v1/staff/apps/{app}/suspend"),
                    Some(json!({"reason": "a routine check"})),
                    0,
                )
                .await?;
            server
                .call(
                    Method::POST,
                    &format!("/v1/staff/apps/{app}/reinstate"),
                    Some(json!({"reason": "checked"})),
                    0,
                )
                .await?;
            server
                .call(
                    Method::POST,
                    &format!("/v1/apps/{app}/products"),
                    Some(json!({"product_id": product, "mode": "test"})),
                    0,
                )
                .await?;
            let mut keys = Vec::new();
            for k in 0..4 {
                let (key, _) = server
                    .call(
                        Method::POST,
                        &format!("/v1/apps/{app}/keys"),
                        Some(json!({"name": format!("key {k}"), "mode": "test", "type": "secret"})),
                        0,
                    )
                    .await?;
                keys.push(key["id"].as_str().context("a key id")?.to_owned());
            }
            server
                .call(
                    Method::POST,
                    &format!("/v1/keys/{}/rotate", keys[0]),
                    Some(json!({})),
                    0,
                )
                .await?;
            server
                .call(
                    Method::POST,
                    &format!("/v1/keys/{}/revoke", keys[1]),
                    Some(json!({})),
                    0,
                )
                .await?;
            let body = json!({"url": "http://127.0.0.1:9/hook", "mode": "test", "event_types": ["api_key.*"]});
            server
                .call(
                    Method::POST,
                    &format!("/v1/apps/{app}/webhooks"),
                    Some(body),
                    0,
                )
                .await?;
            for m in 0..5 {
                server
                    .call(
                        Method::POST,
                        &format!("/v1/apps/{app}/events"),
                        Some(json!({"type": "invoice.paid", "payload": {"n": m}})),
                        0,
                    )
                    .await?;
            }
            server
                .call(
                    Method::POST,
                    &format!("/v1/apps/{app}/oauth-clients"),
                    Some(json!({"name": "backend", "mode": "test", "scopes": ["pay.read"]})),
                    0,
                )
                .await?;
        }
    }
    // Stopping flushes the counted usage as usage.recorded events.
    server.stop().await
}

/// Remaps every id of the base into copy `copy`'s own.
struct Remap {
    namespace: Uuid,
    suffix: String,
}

impl Remap {
    fn new(copy: u64) -> Self {
        Remap {
            namespace: Uuid::from_u128(0x6761_7465_686f_7573_6500_0000_0000_0000 | copy as u128),
            suffix: format!("c{copy}"),
        }
    }

    fn uuid(&self, id: Uuid) -> Uuid {
        if id.is_nil() {
            id
        } else {
            let digest =
                Sha256::digest([&self.namespace.as_bytes()[..], &id.as_bytes()[..]].concat());
            uuid::Builder::from_random_bytes(digest[..16].try_into().expect("16 bytes")).into_uuid()
        }
    }

    fn hex(&self, h: &str) -> String {
        hex::encode(Sha256::digest(format!("{}{h}", self.suffix)))
    }

    fn token(&self, s: &str) -> Option<String> {
        if s.len() == 36 {
            if let Ok(id) = s.parse::<Uuid>() {
                return Some(self.uuid(id).to_string());
            }
        }
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(self.hex(s));
        }
        None
    }

    fn value(&self, v: &mut Value, key: Option<&str>) {
        match v {
            Value::String(s) => {
                if let Some(mapped) = self.token(s) {
                    *s = mapped;
                } else if matches!(key, Some("slug" | "prefix")) {
                    s.push_str(&self.suffix);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i, None)),
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    self.value(v, Some(k));
                }
            }
            _ => {}
        }
    }

    fn stream(&self, stream: &str) -> String {
        let Some((category, rest)) = stream.split_once('-') else {
            return stream.to_owned();
        };
        // Uuids (36 characters) and hashes (64) inside the rest keep their
        // places; a slug's stream gets the copy's suffix.
        let mut out = String::new();
        let mut i = 0;
        while i < rest.len() {
            let mapped = [36usize, 64].iter().find_map(|&n| {
                rest.get(i..i + n)
                    .and_then(|t| self.token(t))
                    .map(|m| (m, n))
            });
            match mapped {
                Some((m, n)) => {
                    out.push_str(&m);
                    i += n;
                }
                None => {
                    out.push_str(&rest[i..i + 1]);
                    i += 1;
                }
            }
        }
        if category.contains("slug") {
            out.push_str(&self.suffix);
        }
        format!("{category}-{out}")
    }

    fn event(&self, e: &RecordedEvent) -> anyhow::Result<(String, NewEvent)> {
        let mut data: Value = serde_json::from_str(e.data.get())?;
        self.value(&mut data, None);
        let mut metadata: Value = serde_json::from_str(e.metadata.get())?;
        self.value(&mut metadata, None);
        Ok((
            self.stream(&e.stream_id),
            NewEvent {
                event_id: Uuid::now_v7(),
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                data: serde_json::value::to_raw_value(&data)?,
                metadata: serde_json::from_value(metadata)?,
            },
        ))
    }
}

/// Appends copy `copy` of `base`, keeping the global order: consecutive
/// events of one stream go in one append, and a call never names a stream
/// twice.
async fn append_copy(store: &PgStore, base: &[RecordedEvent], copy: u64) -> anyhow::Result<()> {
    let remap = Remap::new(copy);
    let mut call: Vec<StreamAppend> = Vec::new();
    let mut named: HashSet<String> = HashSet::new();
    let mut events = 0usize;
    for e in base {
        let (stream, event) = remap.event(e)?;
        if let Some(last) = call.last_mut() {
            if last.stream_id == stream {
                last.events.push(event);
                events += 1;
                continue;
            }
        }
        if named.contains(&stream) || events >= 2000 {
            store.append_all(std::mem::take(&mut call)).await?;
            named.clear();
            events = 0;
        }
        named.insert(stream.clone());
        call.push(StreamAppend::new(
            stream,
            event_schemas::ExpectedVersion::Any,
            vec![event],
        ));
        events += 1;
    }
    if !call.is_empty() {
        store.append_all(call).await?;
    }
    Ok(())
}

/// The history of at least `events` events, seeded once (a table
/// `bench_history` records the base's end and the copies appended, so an
/// interrupted seeding goes on where it stopped).
pub async fn seeded(
    admin: &tokio_postgres::Config,
    data_dir: &std::path::Path,
    events: u64,
) -> anyhow::Result<(tokio_postgres::Config, Arc<PgStore>)> {
    let name = format!("gatehouse_bench_history_v{BASE_VERSION}_{events}");
    let mut config = crate::database(admin, &name, false).await?;
    let (store, base_end, mut copies) = loop {
        let store = Arc::new(PgStore::connect(config.clone(), PgStoreOptions::default()).await?);
        let client = store.pool().get().await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS bench_history \
                 (id INT PRIMARY KEY, base BIGINT NOT NULL, copies BIGINT NOT NULL)",
            )
            .await?;
        let row = client
            .query_opt("SELECT base, copies FROM bench_history WHERE id = 1", &[])
            .await?;
        if let Some(r) = row {
            break (store, r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64);
        }
        if store.head().await? > 0 {
            // A base seeding that died part-way: start again.
            drop(client);
            drop(store);
            config = crate::database(admin, &name, true).await?;
            continue;
        }
        eprintln!("seeding the base history through a server (once)...");
        base(&config, &data_dir.join("history-server")).await?;
        let end = store.head().await?;
        client
            .execute(
                "INSERT INTO bench_history (id, base, copies) VALUES (1, $1, 0)",
                &[&(end as i64)],
            )
            .await?;
        break (store, end, 0);
    };
    let client = store.pool().get().await?;
    if store.head().await? >= events {
        return Ok((config, store));
    }
    // Signed checkpoints belong to the original only.
    let base: Vec<RecordedEvent> =
        event_store::postgres::read_all_with(&client, 0, base_end as usize)
            .await?
            .into_iter()
            .filter(|e| !e.event_type.starts_with("audit."))
            .collect();
    eprintln!(
        "copying a base of {} events until the log holds {events} (once)...",
        base.len()
    );
    while store.head().await? < events {
        copies += 1;
        append_copy(&store, &base, copies).await?;
        client
            .execute(
                "UPDATE bench_history SET copies = $1 WHERE id = 1",
                &[&(copies as i64)],
            )
            .await?;
    }
    drop(client);
    Ok((config, store))
}
