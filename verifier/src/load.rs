//! Starting an index from the `keys` read model (through its
//! `read::index` queries): every key, app status and organisation quota,
//! read in one snapshot together with the position the read model reached,
//! so following the log from there misses nothing.

use std::collections::BTreeMap;

use domain::apps::Mode;
use domain::keys::format;
use domain::keys::KeyKind;
use event_schemas::app::{
    AccessApproved, AccessRejected, AccessRequested, AppCreated, AppDeleted, AppEvent,
    AppStatusChanged,
};
use event_schemas::org::PlanSet;
use futures_util::{pin_mut, TryStreamExt};
use projections::keys::read::index as snapshot;
use serde::Deserialize;
use uuid::Uuid;

use crate::feed::LoadedKey;
use crate::state::Index;

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database failed.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection.
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A row the code cannot read.
    #[error("read model row: {0}")]
    Row(String),
}

/// One product access request as `rm.key_apps.access` keeps it.
#[derive(Debug, Deserialize)]
struct AccessRow {
    mode: String,
    product_id: Uuid,
    state: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// Loads the read model into `index` (which should be empty) and returns
/// the position it reflects.
pub async fn from_read_model(
    index: &Index,
    pool: &deadpool_postgres::Pool,
) -> Result<u64, LoadError> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let position = snapshot::position(&tx).await?;
    index.reserve(usize::try_from(snapshot::key_count(&tx).await?).unwrap_or(0));

    for o in snapshot::org_quotas(&tx).await? {
        let plan = match (o.monthly_call_limit, o.window_start, o.window_end) {
            (Some(limit), Some(start), Some(end)) => Some(PlanSet {
                plan: String::new(),
                modules: Vec::new(),
                monthly_call_limit: u64::try_from(limit).unwrap_or(0),
                subscription_state: String::new(),
                billing_window_start: start,
                billing_window_end: end,
                by: Uuid::nil(),
            }),
            _ => None,
        };
        let counted = o.counted_from.map_or(0, |c| c.timestamp_millis());
        index.load_org(
            o.org_id,
            plan.as_ref(),
            counted,
            u64::try_from(o.calls).unwrap_or(0),
        );
    }

    for a in snapshot::apps(&tx).await? {
        let access: BTreeMap<Uuid, AccessRow> = serde_json::from_value(a.access)
            .map_err(|e| LoadError::Row(format!("app {} access: {e}", a.app_id)))?;
        let origins: Vec<String> = serde_json::from_value(a.origins)
            .map_err(|e| LoadError::Row(format!("app {} origins: {e}", a.app_id)))?;
        let events = app_events(a.app_id, a.org_id, a.deleted, a.suspended, access, origins);
        index
            .load_app(a.app_id, a.org_id, &events)
            .map_err(LoadError::Row)?;
    }

    for c in snapshot::clients(&tx).await? {
        let mode = Mode::parse(&c.mode)
            .ok_or_else(|| LoadError::Row(format!("client mode {:?}", c.mode)))?;
        index.load_client(c.client_id, c.app_id, c.org_id, mode, c.revoked);
    }
    for k in snapshot::signing_keys(&tx).await? {
        index
            .load_signing_key(
                &k.kid,
                &k.public_key,
                k.retires_at.map(|t| t.timestamp_millis()),
            )
            .map_err(LoadError::Row)?;
    }

    let rows = snapshot::keys(&tx).await?;
    pin_mut!(rows);
    while let Some(k) = rows.try_next().await? {
        let bad = |what: &str| LoadError::Row(format!("api key {}: {what}", k.key_id));
        index.load_key(LoadedKey {
            key_id: k.key_id,
            app_id: k.app_id,
            org_id: k.org_id,
            hash: format::parse_hash(&k.hash).ok_or_else(|| bad("hash"))?,
            mode: Mode::parse(&k.mode).ok_or_else(|| bad("mode"))?,
            kind: KeyKind::parse(&k.kind).ok_or_else(|| bad("kind"))?,
            expires_ms: k.expires_at.map(|t| t.timestamp_millis()),
            stops_ms: k.stops_at.map(|t| t.timestamp_millis()),
            revoked: k.revoked,
            rate_limit: match (k.rate_limit, k.rate_window_secs) {
                (Some(l), Some(w)) => Some((
                    u32::try_from(l).map_err(|_| bad("rate limit"))?,
                    u8::try_from(w).map_err(|_| bad("rate window"))?,
                )),
                _ => None,
            },
            imported_prefix: k.imported.then(|| k.prefix.clone()),
            scopes: k.scopes,
        });
    }
    tx.commit().await?;
    index.set_position(position);
    Ok(position)
}

/// The status events an app row stands for, in an order the domain folds
/// to the same status and scopes.
fn app_events(
    app_id: Uuid,
    org_id: Uuid,
    deleted: bool,
    suspended: bool,
    access: BTreeMap<Uuid, AccessRow>,
    origins: Vec<String>,
) -> Vec<AppEvent> {
    let mut events = vec![AppEvent::Created(AppCreated {
        app_id,
        org_id,
        team_id: None,
        name: String::new(),
        slug: String::new(),
        description: String::new(),
        origins,
        callback_urls: vec![],
        attributes: Default::default(),
        sandbox_tenant_id: None,
    })];
    for (request_id, a) in access {
        events.push(AppEvent::AccessRequested(AccessRequested {
            request_id,
            product_id: a.product_id,
            mode: a.mode,
        }));
        match a.state.as_str() {
            "approved" => events.push(AppEvent::AccessApproved(AccessApproved {
                request_id,
                scopes: a.scopes,
                automatic: false,
            })),
            "rejected" => events.push(AppEvent::AccessRejected(AccessRejected {
                request_id,
                reason: String::new(),
            })),
            _ => {}
        }
    }
    if suspended {
        events.push(AppEvent::Suspended(AppStatusChanged {
            reason: String::new(),
        }));
    }
    if deleted {
        events.push(AppEvent::Deleted(AppDeleted { reason: None }));
    }
    events
}
