//! The key table: list an app's keys and read one, from the `keys` read
//! model. Metadata only: no role ever reads material.

#[allow(unused_imports)]
use super::*;

/// A row of the key table.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Key id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The public start of the key.
    pub prefix: String,
    /// `live` or `test`.
    #[schema(example = "test")]
    pub mode: String,
    /// `secret` or `restricted`.
    #[serde(rename = "type")]
    #[schema(example = "secret")]
    pub kind: String,
    /// Scopes of a restricted key (empty: a secret key carries its app's).
    pub scopes: Vec<String>,
    /// Verifications counted (written from usage aggregates, so up to one
    /// metering interval behind).
    pub usage_count: i64,
    /// The last verification counted.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// `active`, `expiring` (a rotation's overlap), `expired` or `revoked`.
    #[schema(example = "active")]
    pub status: String,
    /// Who issued it (a user id).
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl KeyView {
    /// A key as the read model holds it, its status as of now.
    fn from_row(r: projections::keys::read::KeyRow) -> Self {
        let status = keys::status_at(r.revoked, r.expires_at, r.stops_at, crate::command::now());
        KeyView {
            id: r.key_id,
            name: r.name,
            prefix: r.prefix,
            mode: r.mode,
            kind: r.kind,
            scopes: r.scopes,
            usage_count: r.usage_count,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            status: status.as_str().into(),
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// An app's keys, oldest first.
#[utoipa::path(get, path = "/v1/apps/{app}/keys", tag = "keys",
    params(("app" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = Page<KeyView>), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    _reader: AppReader,
    paging: Paging<TimeKey>,
) -> Result<Json<Page<KeyView>>, ApiError> {
    min.wait(&state, &["keys"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::keys::read::app_keys(&client, app, paging.keyset()).await?;
    Ok(Json(paging.page(rows, KeyView::from_row)))
}

/// One key's row of the key table.
#[utoipa::path(get, path = "/v1/keys/{key}", tag = "keys",
    params(("key" = Uuid, Path, description = "Key id"), crate::routes::as_of::AsOf),
    responses((status = 200, body = KeyView), (status = 400, body = Problem), (status = 402, body = Problem),
        (status = 404, description = "No such key (or none yet at `as_of`)", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_key(
    State(state): State<AppState>,
    Path(key): Path<Uuid>,
    min: MinPosition,
    session: Session,
    axum::extract::Query(t): axum::extract::Query<crate::routes::as_of::AsOf>,
) -> Result<Json<KeyView>, ApiError> {
    if let Some(as_of) = t.as_of {
        min.wait(&state, &["orgs", "apps"]).await?;
        // Authorised before anything is folded: a stranger's `as_of` costs
        // one cached load, not a fold of the key's stream and its usage.
        let now = state
            .commands
            .load::<domain::keys::Key>(&event_schemas::key::key_stream(key))
            .await?;
        if !now.exists {
            return Err(ApiError::NotFound);
        }
        crate::authorize::app_org_for(&state, now.app_id, session.user_id).await?;
        let (_, view) = crate::routes::as_of::key_then(&state, key, as_of)
            .await?
            .ok_or(ApiError::NotFound)?;
        return Ok(Json(view));
    }
    min.wait(&state, &["orgs", "apps", "keys"]).await?;
    let client = state.read_models.client().await?;
    let row = projections::keys::read::key(&client, key)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    // Only someone who may read the app learns the key exists.
    crate::authorize::app_org_for(&state, row.app_id, session.user_id).await?;
    Ok(Json(KeyView::from_row(row)))
}
