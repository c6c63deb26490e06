//! Typed queries over the `keys` read model (the views `rm.<table>`), for the API, the console and the tools.
//!
//! API keys (metadata only: no query here reads material), OAuth clients,
//! mass rotation jobs and the organisations' calls per billing window.

pub mod index;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;
use tokio_postgres::{Error, Row};
use uuid::Uuid;

use crate::read_models::{keyset, Keyset, TimeKey};

/// A row of the key table.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Key id.
    pub key_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// Name.
    pub name: String,
    /// The public start of the key.
    pub prefix: String,
    /// `live` or `test`.
    pub mode: String,
    /// `secret` or `restricted`.
    pub kind: String,
    /// Scopes of a restricted key.
    pub scopes: Vec<String>,
    /// Verifications counted.
    pub usage_count: i64,
    /// The last verification counted.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When a rotation's overlap ends it.
    pub stops_at: Option<DateTime<Utc>>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Who issued it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

const KEY_COLUMNS: &str = "key_id, name, prefix, mode, kind, scopes, usage_count, last_used_at, \
     expires_at, stops_at, revoked_at IS NOT NULL AS revoked, created_by, created_at, app_id";

fn key_row(r: &Row) -> KeyRow {
    let Json(scopes) = r.get("scopes");
    KeyRow {
        key_id: r.get("key_id"),
        app_id: r.get("app_id"),
        name: r.get("name"),
        prefix: r.get("prefix"),
        mode: r.get("mode"),
        kind: r.get("kind"),
        scopes,
        usage_count: r.get("usage_count"),
        last_used_at: r.get("last_used_at"),
        expires_at: r.get("expires_at"),
        stops_at: r.get("stops_at"),
        revoked: r.get("revoked"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
    }
}

/// A page of the app's keys, oldest first.
pub async fn app_keys(
    client: &impl GenericClient,
    app: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, KeyRow)>, Error> {
    let select = format!("SELECT {KEY_COLUMNS} FROM rm.api_keys WHERE app_id = $1");
    let key = ("created_at", "key_id");
    keyset(client, &select, key, &[&app], page, key_row).await
}

/// One key.
pub async fn key(client: &impl GenericClient, key: Uuid) -> Result<Option<KeyRow>, Error> {
    Ok(client
        .query_opt(
            &format!("SELECT {KEY_COLUMNS} FROM rm.api_keys WHERE key_id = $1"),
            &[&key],
        )
        .await?
        .as_ref()
        .map(key_row))
}

/// The key whose SHA-256 (hex) is `hash`.
pub async fn key_by_hash(client: &impl GenericClient, hash: &str) -> Result<Option<Uuid>, Error> {
    Ok(client
        .query_opt("SELECT key_id FROM rm.api_keys WHERE hash = $1", &[&hash])
        .await?
        .map(|r| r.get(0)))
}

/// The organisation's keys that still verify: not revoked, not expired,
/// not past a rotation's overlap.
pub async fn live_key_count(client: &impl GenericClient, org: Uuid) -> Result<i64, Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM rm.api_keys WHERE org_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > now()) \
             AND (stops_at IS NULL OR stops_at > now())",
            &[&org],
        )
        .await?
        .get(0))
}

/// A mass rotation job and how far it got.
#[derive(Debug, Clone)]
pub struct RotationJobRow {
    /// Its criteria (`org_id`, `app_id`, `mode`), as requested.
    pub criteria: serde_json::Value,
    /// Criteria: keys issued before.
    pub created_before: DateTime<Utc>,
    /// The overlap each key gets.
    pub grace_period_secs: i64,
    /// Why.
    pub reason: String,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// When every matching key had its rotation required.
    pub completed_at: Option<DateTime<Utc>>,
    /// Keys required to rotate so far.
    pub keys_required: i64,
}

/// The rotation job `job`.
pub async fn rotation_job(
    client: &impl GenericClient,
    job: Uuid,
) -> Result<Option<RotationJobRow>, Error> {
    Ok(client
        .query_opt(
            "SELECT criteria, created_before, grace_period_secs, reason, requested_by, requested_at, \
                    completed_at, (SELECT count(*) FROM rm.api_keys WHERE rotation_job = $1) \
             FROM rm.key_rotations WHERE job_id = $1",
            &[&job],
        )
        .await?
        .map(|row| {
            let Json(criteria) = row.get(0);
            RotationJobRow {
                criteria,
                created_before: row.get(1),
                grace_period_secs: row.get(2),
                reason: row.get(3),
                requested_by: row.get(4),
                requested_at: row.get(5),
                completed_at: row.get(6),
                keys_required: row.get(7),
            }
        }))
}

/// A rotation job not completed yet.
#[derive(Debug, Clone)]
pub struct OpenRotationRow {
    /// The job.
    pub job_id: Uuid,
    /// Its criteria (`org_id`, `app_id`, `mode`), as requested.
    pub criteria: serde_json::Value,
    /// Criteria: keys issued before.
    pub created_before: DateTime<Utc>,
    /// The overlap each key gets.
    pub grace_period_secs: i64,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// The oldest rotation job not completed yet.
pub async fn oldest_open_rotation(
    client: &impl GenericClient,
) -> Result<Option<OpenRotationRow>, Error> {
    Ok(client
        .query_opt(
            "SELECT job_id, criteria, created_before, grace_period_secs, requested_by, requested_at \
             FROM rm.key_rotations WHERE completed_at IS NULL ORDER BY requested_at, job_id LIMIT 1",
            &[],
        )
        .await?
        .map(|job| {
            let Json(criteria) = job.get(1);
            OpenRotationRow {
                job_id: job.get(0),
                criteria,
                created_before: job.get(2),
                grace_period_secs: job.get(3),
                requested_by: job.get(4),
                requested_at: job.get(5),
            }
        }))
}

/// Up to `limit` keys a rotation job still has to require, by id: issued
/// before `created_before`, neither revoked, replaced nor in a job, and of
/// `org`, `app` and `mode` when given.
pub async fn keys_to_rotate(
    client: &impl GenericClient,
    created_before: DateTime<Utc>,
    org: Option<Uuid>,
    app: Option<Uuid>,
    mode: Option<&str>,
    limit: i64,
) -> Result<Vec<Uuid>, Error> {
    Ok(client
        .query(
            "SELECT key_id FROM rm.api_keys WHERE created_at < $1 AND revoked_at IS NULL \
               AND replaced_by IS NULL AND rotation_job IS NULL \
               AND ($2::uuid IS NULL OR org_id = $2) AND ($3::uuid IS NULL OR app_id = $3) \
               AND ($4::text IS NULL OR mode = $4) ORDER BY key_id LIMIT $5",
            &[&created_before, &org, &app, &mode, &limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The keys the rotation job `job` has required so far.
pub async fn rotation_key_count(client: &impl GenericClient, job: Uuid) -> Result<i64, Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM rm.api_keys WHERE rotation_job = $1",
            &[&job],
        )
        .await?
        .get(0))
}

/// A row of an app's OAuth clients (never their secrets).
#[derive(Debug, Clone)]
pub struct OAuthClientRow {
    /// The client id.
    pub client_id: Uuid,
    /// Name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// Scopes its tokens may carry.
    pub scopes: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When the secret was last rotated.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// When the previous secret stops (stopped) working.
    pub previous_secret_stops_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A page of the app's OAuth clients, oldest first.
pub async fn app_clients(
    client: &impl GenericClient,
    app: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, OAuthClientRow)>, Error> {
    let select = "SELECT client_id, name, mode, scopes, revoked_at IS NOT NULL AS revoked, \
         secret_rotated_at, previous_secret_stops_at, created_by, created_at \
         FROM rm.oauth_clients WHERE app_id = $1";
    keyset(
        client,
        select,
        ("created_at", "client_id"),
        &[&app],
        page,
        |r| {
            let Json(scopes) = r.get("scopes");
            OAuthClientRow {
                client_id: r.get("client_id"),
                name: r.get("name"),
                mode: r.get("mode"),
                scopes,
                revoked: r.get("revoked"),
                secret_rotated_at: r.get("secret_rotated_at"),
                previous_secret_stops_at: r.get("previous_secret_stops_at"),
                created_by: r.get("created_by"),
                created_at: r.get("created_at"),
            }
        },
    )
    .await
}

/// The OAuth client whose current secret, or previous one still in its
/// overlap, hashes (SHA-256, hex) to `hash`.
pub async fn client_by_secret(
    client: &impl GenericClient,
    hash: &str,
) -> Result<Option<Uuid>, Error> {
    Ok(client
        .query_opt(
            "SELECT client_id FROM rm.oauth_clients WHERE secret_hash = $1 \
             UNION ALL SELECT client_id FROM rm.oauth_clients \
             WHERE previous_secret_hash = $1 AND previous_secret_stops_at > now() LIMIT 1",
            &[&hash],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The calls the organisation made in the billing window starting at
/// `window_start`, if any were counted.
pub async fn org_window_calls(
    client: &impl GenericClient,
    org: Uuid,
    window_start: DateTime<Utc>,
) -> Result<Option<i64>, Error> {
    Ok(client
        .query_opt(
            "SELECT calls FROM rm.org_usage WHERE org_id = $1 AND window_start = $2",
            &[&org, &window_start],
        )
        .await?
        .map(|r| r.get(0)))
}
