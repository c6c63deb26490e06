//! Rotating a key with an overlap, and revoking one.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/keys/{key}/rotate` body: at most one of the two.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the old key keeps verifying, in seconds (default 86400;
    /// 0: it stops now; at most 30 days).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_period_secs: Option<u64>,
    /// Schedule the old key's end for this instant instead (RFC 3339).
    pub at: Option<DateTime<Utc>>,
}

/// `POST /v1/keys/{key}/revoke` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKeyRequest {
    /// Why, for the history (up to 500 characters).
    pub reason: Option<String>,
}

/// A key as its stream holds it (404 if none).
async fn load_key(
    state: &AppState,
    key_id: Uuid,
) -> Result<std::sync::Arc<crate::command::Loaded<Key>>, ApiError> {
    let key = state.commands.load::<Key>(&key_stream(key_id)).await?;
    if !key.exists {
        return Err(ApiError::NotFound);
    }
    Ok(key)
}

/// Rotate a key: a new key (answered once) takes over its name, type,
/// scopes, expiry and rate limit; the old one verifies until the grace
/// period ends or the scheduled instant.
#[utoipa::path(post, path = "/v1/keys/{key}/rotate", tag = "keys",
    params(("key" = Uuid, Path, description = "Key id")),
    request_body(content = Option<RotateKeyRequest>),
    responses((status = 201, body = KeyCreated), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Path(key_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    OptionalJson(body): OptionalJson<RotateKeyRequest>,
) -> Result<Committed<KeyCreated>, ApiError> {
    let body = body.unwrap_or_default();
    if body.grace_period_secs.is_some() && body.at.is_some() {
        return Err(domain::Invalid(vec![domain::FieldError {
            pointer: "/at".into(),
            detail: "give grace_period_secs or at, not both".into(),
        }])
        .into());
    }
    let grace = match body.grace_period_secs {
        Some(s) if s > keys::max_grace().num_seconds() as u64 => {
            return Err(domain::Invalid(vec![domain::FieldError {
                pointer: "/grace_period_secs".into(),
                detail: "the overlap may last at most 30 days (2592000 s)".into(),
            }])
            .into())
        }
        Some(s) => chrono::Duration::seconds(s as i64),
        None => keys::default_grace(),
    };
    let old = load_key(&state, key_id).await?;
    let (app_id, mode, kind) = match (old.mode, old.kind) {
        (Some(m), Some(k)) => (old.app_id, m, k),
        _ => return Err(ApiError::NotFound),
    };
    let ids = meta.ids();
    let new_key_id = ids.entity("api_key");
    // Minted from the command's ids: a retry mints the same key.
    let minted = format::mint(state.index.prefix(), mode, kind, &ids.secret("api_key"));
    let now = crate::command::now();
    let stops_at = body.at.unwrap_or(now + grace);
    let old_stream = key_stream(key_id);
    let new_stream = key_stream(new_key_id);
    let (state_ref, ids_ref, meta_ref, new_stream_ref) = (&state, &ids, &meta, &new_stream);
    let (prefix, hash) = (&minted.prefix, minted.hash);
    let executed = state
        .commands
        .execute::<Key, _>(&old_stream, &ids, move |loaded| async move {
            let (app, org) = app_and_org(state_ref, app_id, session.user_id).await?;
            let cmd = keys::RotateKey {
                new_key_id,
                prefix: prefix.clone(),
                hash,
                stops_at,
            };
            // Decided at the instant the overlap was computed from, so a grace
            // of 0 is "now", not a moment in the past.
            let rotation = keys::rotate(&org, &app, &loaded, session.user_id, cmd, now)?;
            let metadata = meta_ref.in_org(session.actor(), app.org_id);
            let also = vec![StreamAppend::new(
                new_stream_ref.clone(),
                ExpectedVersion::NoStream,
                ids_ref.new_events(new_stream_ref, &rotation.new, &metadata),
            )];
            Ok(Plan {
                events: rotation.old,
                metadata,
                also,
            })
        })
        .await?;
    let old = executed.state();
    let Some((replaced_by, stops_at)) = old.rotated else {
        return Err(ApiError::Internal(
            "a rotation left no rotation behind".into(),
        ));
    };
    if replaced_by != new_key_id {
        return Err(domain::keys::KeyError::AlreadyRotated.into());
    }
    let new = state.commands.load::<Key>(&new_stream).await?;
    let mut body = KeyCreated::of(&state, &new, minted.plaintext).await?;
    body.rotated_from = Some(key_id);
    body.previous_key_stops_at = Some(stops_at);
    state.verifiable(executed.position).await;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(body),
    })
}

/// What a revoke answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRevokedView {
    /// Key id.
    pub id: Uuid,
    /// `revoked`.
    pub status: String,
    /// The reason recorded, if any.
    pub reason: Option<String>,
}

/// Revoke a key, irreversibly: every node refuses it within a second.
#[utoipa::path(post, path = "/v1/keys/{key}/revoke", tag = "keys",
    params(("key" = Uuid, Path, description = "Key id")),
    request_body(content = Option<RevokeKeyRequest>),
    responses((status = 200, body = KeyRevokedView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Path(key_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    OptionalJson(body): OptionalJson<RevokeKeyRequest>,
) -> Result<Committed<KeyRevokedView>, ApiError> {
    let reason = body.and_then(|b| b.reason);
    let app_id = load_key(&state, key_id).await?.app_id;
    let ids = meta.ids();
    let (state_ref, meta_ref, reason) = (&state, &meta, &reason);
    let executed = state
        .commands
        .execute::<Key, _>(&key_stream(key_id), &ids, move |loaded| async move {
            let (app, org) = app_and_org(state_ref, app_id, session.user_id).await?;
            let events = keys::revoke(&org, &app, &loaded, session.user_id, reason.clone())?;
            Ok(Plan::new(
                events,
                meta_ref.in_org(session.actor(), app.org_id),
            ))
        })
        .await?;
    let key = executed.state();
    state.verifiable(executed.position).await;
    Ok(Committed {
        status: StatusCode::OK,
        position: executed.position,
        body: Some(KeyRevokedView {
            id: key.id,
            status: key.status(crate::command::now()).as_str().into(),
            reason: key.revoked.clone().flatten(),
        }),
    })
}
