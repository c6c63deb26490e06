//! What a node's key-verification index starts from: the `keys` read model
//! read in one snapshot (the transaction the caller opens, `REPEATABLE
//! READ`), together with the position it reflects.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures::{Stream, TryStreamExt};
use tokio_postgres::types::Json;
use tokio_postgres::Error;
use uuid::Uuid;

/// The position the active generation of `keys` reached (0 before any).
pub async fn position(client: &impl GenericClient) -> Result<u64, Error> {
    let position: i64 = client
        .query_opt(
            "SELECT position FROM projection_generations WHERE name = 'keys' AND state = 'active'",
            &[],
        )
        .await?
        .map_or(0, |r| r.get(0));
    Ok(u64::try_from(position).unwrap_or(0))
}

/// How many keys there are (to size the index).
pub async fn key_count(client: &impl GenericClient) -> Result<i64, Error> {
    Ok(client
        .query_one("SELECT count(*) FROM rm.api_keys", &[])
        .await?
        .get(0))
}

/// An organisation's plan window and the calls counted in its latest
/// window.
#[derive(Debug, Clone)]
pub struct OrgQuotaRow {
    /// The organisation.
    pub org_id: Uuid,
    /// Calls a billing window allows.
    pub monthly_call_limit: Option<i64>,
    /// The plan's first window start.
    pub window_start: Option<DateTime<Utc>>,
    /// The plan's first window end.
    pub window_end: Option<DateTime<Utc>>,
    /// Calls counted in the latest window (0 if none).
    pub calls: i64,
    /// That window's start.
    pub counted_from: Option<DateTime<Utc>>,
}

/// Every organisation's quota.
pub async fn org_quotas(client: &impl GenericClient) -> Result<Vec<OrgQuotaRow>, Error> {
    Ok(client
        .query(
            "SELECT o.org_id, o.monthly_call_limit, o.window_start, o.window_end, \
                    COALESCE(u.calls, 0), u.window_start \
             FROM rm.key_orgs o LEFT JOIN LATERAL ( \
                 SELECT calls, window_start FROM rm.org_usage \
                 WHERE org_usage.org_id = o.org_id ORDER BY window_start DESC LIMIT 1) u ON true",
            &[],
        )
        .await?
        .iter()
        .map(|r| OrgQuotaRow {
            org_id: r.get(0),
            monthly_call_limit: r.get(1),
            window_start: r.get(2),
            window_end: r.get(3),
            calls: r.get(4),
            counted_from: r.get(5),
        })
        .collect())
}

/// An app as verification needs it.
#[derive(Debug, Clone)]
pub struct KeyAppRow {
    /// The app.
    pub app_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Deleted.
    pub deleted: bool,
    /// Suspended.
    pub suspended: bool,
    /// Its product access requests by id (`{mode, product_id, state, scopes?}`).
    pub access: serde_json::Value,
    /// Its browser origins.
    pub origins: serde_json::Value,
}

/// Every app.
pub async fn apps(client: &impl GenericClient) -> Result<Vec<KeyAppRow>, Error> {
    Ok(client
        .query(
            "SELECT app_id, org_id, deleted, suspended, access, origins FROM rm.key_apps",
            &[],
        )
        .await?
        .iter()
        .map(|r| KeyAppRow {
            app_id: r.get(0),
            org_id: r.get(1),
            deleted: r.get(2),
            suspended: r.get(3),
            access: r.get(4),
            origins: r.get(5),
        })
        .collect())
}

/// An OAuth client as verification needs it.
#[derive(Debug, Clone)]
pub struct IndexClientRow {
    /// The client.
    pub client_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// `test` or `live`.
    pub mode: String,
    /// Revoked.
    pub revoked: bool,
}

/// Every OAuth client.
pub async fn clients(client: &impl GenericClient) -> Result<Vec<IndexClientRow>, Error> {
    Ok(client
        .query(
            "SELECT client_id, app_id, org_id, mode, revoked_at IS NOT NULL FROM rm.oauth_clients",
            &[],
        )
        .await?
        .iter()
        .map(|r| IndexClientRow {
            client_id: r.get(0),
            app_id: r.get(1),
            org_id: r.get(2),
            mode: r.get(3),
            revoked: r.get(4),
        })
        .collect())
}

/// A token signing key.
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    /// Its key id.
    pub kid: String,
    /// The public key.
    pub public_key: String,
    /// When it stops verifying, once a newer one replaced it.
    pub retires_at: Option<DateTime<Utc>>,
}

/// Every token signing key, oldest first.
pub async fn signing_keys(client: &impl GenericClient) -> Result<Vec<SigningKeyRow>, Error> {
    Ok(client
        .query(
            "SELECT kid, public_key, retires_at FROM rm.signing_keys ORDER BY position",
            &[],
        )
        .await?
        .iter()
        .map(|r| SigningKeyRow {
            kid: r.get(0),
            public_key: r.get(1),
            retires_at: r.get(2),
        })
        .collect())
}

/// An API key as verification needs it.
#[derive(Debug, Clone)]
pub struct IndexKeyRow {
    /// The key.
    pub key_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Its keyed hash.
    pub hash: String,
    /// `test` or `live`.
    pub mode: String,
    /// Its kind.
    pub kind: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// When a rotation stops it.
    pub stops_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked: bool,
    /// Calls per window.
    pub rate_limit: Option<i32>,
    /// The window, in seconds.
    pub rate_window_secs: Option<i32>,
    /// Imported from another gateway.
    pub imported: bool,
    /// Its visible prefix.
    pub prefix: String,
}

/// Every API key, streamed (the index may hold millions).
pub async fn keys(
    client: &impl GenericClient,
) -> Result<impl Stream<Item = Result<IndexKeyRow, Error>>, Error> {
    let rows = client
        .query_raw(
            "SELECT key_id, app_id, org_id, hash, mode, kind, scopes, expires_at, stops_at, \
                    revoked_at IS NOT NULL, rate_limit, rate_window_secs, imported, prefix \
             FROM rm.api_keys",
            std::iter::empty::<i32>(),
        )
        .await?;
    Ok(rows.map_ok(|r| {
        let scopes: Json<Vec<String>> = r.get(6);
        IndexKeyRow {
            key_id: r.get(0),
            app_id: r.get(1),
            org_id: r.get(2),
            hash: r.get(3),
            mode: r.get(4),
            kind: r.get(5),
            scopes: scopes.0,
            expires_at: r.get(7),
            stops_at: r.get(8),
            revoked: r.get(9),
            rate_limit: r.get(10),
            rate_window_secs: r.get(11),
            imported: r.get(12),
            prefix: r.get(13),
        }
    }))
}
