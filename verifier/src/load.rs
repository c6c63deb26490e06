//! Starting an index from the `keys` read model: every key, app status and
//! organisation quota, read in one snapshot together with the position the
//! read model reached, so following the log from there misses nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::apps::Mode;
use domain::keys::format;
use domain::keys::KeyKind;
use event_schemas::app::{
    AccessApproved, AccessRejected, AccessRequested, AppCreated, AppDeleted, AppEvent,
    AppStatusChanged,
};
use event_schemas::org::PlanSet;
use futures_util::{pin_mut, TryStreamExt};
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
    let position: i64 = tx
        .query_opt(
            "SELECT position FROM projection_generations WHERE name = 'keys' AND state = 'active'",
            &[],
        )
        .await?
        .map_or(0, |r| r.get(0));
    let count: i64 = tx
        .query_one("SELECT count(*) FROM rm.api_keys", &[])
        .await?
        .get(0);
    index.reserve(usize::try_from(count).unwrap_or(0));

    for row in tx
        .query(
            "SELECT o.org_id, o.monthly_call_limit, o.window_start, o.window_end, \
                    COALESCE(u.calls, 0), u.window_start \
             FROM rm.key_orgs o LEFT JOIN LATERAL ( \
                 SELECT calls, window_start FROM rm.org_usage \
                 WHERE org_usage.org_id = o.org_id ORDER BY window_start DESC LIMIT 1) u ON true",
            &[],
        )
        .await?
    {
        let org_id: Uuid = row.get(0);
        let limit: Option<i64> = row.get(1);
        let start: Option<DateTime<Utc>> = row.get(2);
        let end: Option<DateTime<Utc>> = row.get(3);
        let calls: i64 = row.get(4);
        let counted: Option<DateTime<Utc>> = row.get(5);
        let plan = match (limit, start, end) {
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
        let counted = counted.map_or(0, |c| c.timestamp_millis());
        index.load_org(
            org_id,
            plan.as_ref(),
            counted,
            u64::try_from(calls).unwrap_or(0),
        );
    }

    for row in tx
        .query(
            "SELECT app_id, org_id, deleted, suspended, access, origins FROM rm.key_apps",
            &[],
        )
        .await?
    {
        let app_id: Uuid = row.get(0);
        let org_id: Uuid = row.get(1);
        let access: tokio_postgres::types::Json<BTreeMap<Uuid, AccessRow>> = row.get(4);
        let origins: tokio_postgres::types::Json<Vec<String>> = row.get(5);
        let events = app_events(app_id, org_id, row.get(2), row.get(3), access.0, origins.0);
        index
            .load_app(app_id, org_id, &events)
            .map_err(LoadError::Row)?;
    }

    for row in tx
        .query(
            "SELECT client_id, app_id, org_id, mode, revoked_at IS NOT NULL FROM rm.oauth_clients",
            &[],
        )
        .await?
    {
        let mode: String = row.get(3);
        let mode =
            Mode::parse(&mode).ok_or_else(|| LoadError::Row(format!("client mode {mode:?}")))?;
        index.load_client(row.get(0), row.get(1), row.get(2), mode, row.get(4));
    }
    for row in tx
        .query(
            "SELECT kid, public_key, retires_at FROM rm.signing_keys ORDER BY position",
            &[],
        )
        .await?
    {
        let retires: Option<DateTime<Utc>> = row.get(2);
        index
            .load_signing_key(
                row.get(0),
                row.get(1),
                retires.map(|t| t.timestamp_millis()),
            )
            .map_err(LoadError::Row)?;
    }

    let rows = tx
        .query_raw(
            "SELECT key_id, app_id, org_id, hash, mode, kind, scopes, expires_at, stops_at, \
                    revoked_at IS NOT NULL, rate_limit, rate_window_secs, imported, prefix \
             FROM rm.api_keys",
            std::iter::empty::<i32>(),
        )
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        let bad = |what: &str| LoadError::Row(format!("api key {}: {what}", row.get::<_, Uuid>(0)));
        let hash: String = row.get(3);
        let mode: String = row.get(4);
        let kind: String = row.get(5);
        let scopes: tokio_postgres::types::Json<Vec<String>> = row.get(6);
        let expires: Option<DateTime<Utc>> = row.get(7);
        let stops: Option<DateTime<Utc>> = row.get(8);
        let limit: Option<i32> = row.get(10);
        let window: Option<i32> = row.get(11);
        index.load_key(LoadedKey {
            key_id: row.get(0),
            app_id: row.get(1),
            org_id: row.get(2),
            hash: format::parse_hash(&hash).ok_or_else(|| bad("hash"))?,
            mode: Mode::parse(&mode).ok_or_else(|| bad("mode"))?,
            kind: KeyKind::parse(&kind).ok_or_else(|| bad("kind"))?,
            scopes: scopes.0,
            expires_ms: expires.map(|t| t.timestamp_millis()),
            stops_ms: stops.map(|t| t.timestamp_millis()),
            revoked: row.get(9),
            rate_limit: match (limit, window) {
                (Some(l), Some(w)) => Some((
                    u32::try_from(l).map_err(|_| bad("rate limit"))?,
                    u8::try_from(w).map_err(|_| bad("rate window"))?,
                )),
                _ => None,
            },
            imported_prefix: row.get::<_, bool>(12).then(|| row.get(13)),
        });
    }
    tx.commit().await?;
    let position = u64::try_from(position).unwrap_or(0);
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
