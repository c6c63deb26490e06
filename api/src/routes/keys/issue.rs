//! Issuing a key: the one answer that carries its plaintext.

#[allow(unused_imports)]
use super::*;

/// A per-key rate limit.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    /// Verifications allowed per window.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub limit: u32,
    /// `second` or `minute`.
    #[schema(example = "second")]
    pub per: String,
}

/// `POST /v1/apps/{app}/keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// 1 to 100 characters, no control characters. Avoid secrets, emails
    /// and people's names (a `warnings` entry says so).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `live` or `test`.
    #[schema(example = "test")]
    pub mode: String,
    /// `secret` or `restricted`.
    #[serde(rename = "type")]
    #[schema(example = "secret")]
    pub kind: String,
    /// Restricted keys only: scopes among those the app's approved
    /// products grant in this mode.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When it stops verifying (RFC 3339, in the future).
    pub expires_at: Option<DateTime<Utc>>,
    /// Optional per-key rate limit, enforced per node.
    pub rate_limit: Option<RateLimitBody>,
}

/// A key just issued: the plaintext, in this answer only.
#[derive(Serialize, ToSchema)]
pub struct KeyCreated {
    /// Key id.
    pub id: Uuid,
    /// The key itself. Shown once: Gatehouse keeps only its SHA-256.
    pub key: String,
    /// The public start of the key.
    pub prefix: String,
    /// Name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// `secret` or `restricted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Scopes of a restricted key.
    pub scopes: Vec<String>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// `active` (or `expired`, for a rotation's replacement of a key that
    /// expired meanwhile).
    pub status: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// Who issued it (a user id).
    pub created_by: String,
    /// The key this one replaces (rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<Uuid>,
    /// When the replaced key stops verifying (rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_key_stops_at: Option<DateTime<Utc>>,
    /// Advice about the name: `name_looks_like_secret`,
    /// `name_looks_like_email`, `name_looks_like_person_name`.
    pub warnings: Vec<String>,
}

crate::redacted_debug!(KeyCreated);

impl KeyCreated {
    /// The answer for `key` as the log holds it, with its plaintext.
    pub(super) async fn of(
        state: &AppState,
        key: &Key,
        plaintext: String,
    ) -> Result<Self, ApiError> {
        let (created_at, created_by) = issued_record(state, key.id).await?;
        Ok(KeyCreated {
            id: key.id,
            key: plaintext,
            prefix: key.prefix.clone(),
            name: key.name.clone(),
            mode: key.mode.map(Mode::as_str).unwrap_or_default().into(),
            kind: key.kind.map(KeyKind::as_str).unwrap_or_default().into(),
            scopes: key.scopes.clone(),
            expires_at: key.expires_at,
            status: key.status(crate::command::now()).as_str().into(),
            created_at,
            created_by,
            rotated_from: None,
            previous_key_stops_at: None,
            warnings: keys::name_warnings(&key.name)
                .into_iter()
                .map(String::from)
                .collect(),
        })
    }
}

impl RateLimitBody {
    /// The domain's rate limit, or 422 naming `per`.
    fn parse(self, pointer: &str) -> Result<keys::RateLimit, ApiError> {
        let window_secs = wire(
            &self.per,
            &format!("{pointer}/per"),
            |s| match s {
                "second" => Some(1),
                "minute" => Some(60),
                _ => None,
            },
            "second or minute",
        )?;
        Ok(keys::RateLimit {
            limit: self.limit,
            window_secs,
        })
    }
}

/// Loads the app and its organisation for a key command, checking the
/// caller against the workspace paywall. 404 for an app that is gone.
pub(crate) async fn app_and_org(
    state: &AppState,
    app_id: Uuid,
    user: Uuid,
) -> Result<(std::sync::Arc<crate::command::Loaded<App>>, Org), ApiError> {
    let app = state
        .commands
        .load::<App>(&event_schemas::app::app_stream(app_id))
        .await?;
    if !app.exists || app.deleted {
        return Err(ApiError::NotFound);
    }
    let (org, _, _) = load_org(state, app.org_id).await?;
    app.access_of(&org, user)?;
    require_workspace(&org, user)?;
    Ok((app, org))
}

/// Issue an API key for an app. The answer's `key` is the only time the
/// plaintext is ever shown.
#[utoipa::path(post, path = "/v1/apps/{app}/keys", tag = "keys",
    params(("app" = Uuid, Path, description = "App id")),
    request_body = CreateKeyRequest,
    responses((status = 201, body = KeyCreated), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> Result<Committed<KeyCreated>, ApiError> {
    let mode = mode(&body.mode, "/mode")?;
    let kind = wire(&body.kind, "/type", KeyKind::parse, "secret or restricted")?;
    let rate_limit = body
        .rate_limit
        .map(|r| r.parse("/rate_limit"))
        .transpose()?;
    let ids = meta.ids();
    let key_id = ids.entity("api_key");
    let minted = format::mint(state.index.prefix(), mode, kind, &ids.secret("api_key"));
    let cmd = keys::IssueKey {
        key_id,
        name: body.name.trim().to_owned(),
        mode,
        kind,
        scopes: body.scopes,
        expires_at: body.expires_at,
        rate_limit,
        prefix: minted.prefix.clone(),
        hash: minted.hash,
        imported: false,
    };
    let (state_ref, cmd, meta_ref) = (&state, &cmd, &meta);
    let executed = state
        .commands
        .execute::<Key, _>(&key_stream(key_id), &ids, move |loaded| async move {
            let (app, org) = app_and_org(state_ref, app_id, session.user_id).await?;
            let metadata = meta_ref.in_org(session.actor(), app.org_id);
            if loaded.version > 0 {
                // A retry of a command the log holds: the executor answers it.
                return Ok(Plan::new(Vec::new(), metadata));
            }
            let events = keys::issue(
                &org,
                &app,
                session.user_id,
                cmd.clone(),
                crate::command::now(),
            )?;
            Ok(Plan::new(events, metadata))
        })
        .await?;
    let body = KeyCreated::of(&state, executed.state(), minted.plaintext).await?;
    state.verifiable(executed.position).await;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(body),
    })
}

/// One key to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKey {
    /// SHA-256 of the key, 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub hash: String,
    /// The key's visible start, 4 to 32 characters (`sk_live_4eC3`): keys
    /// starting like it are looked up even though they are not in this
    /// deployment's format.
    #[schema(min_length = 4, max_length = 32)]
    pub prefix: String,
    /// Name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// `secret` or `restricted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Restricted keys only.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When it stops verifying.
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/apps/{app}/keys/import` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeysRequest {
    /// 1 to 1000 keys, imported all or none.
    pub keys: Vec<ImportKey>,
}

/// An imported key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedKey {
    /// Its id in Gatehouse.
    pub id: Uuid,
    /// Its visible start.
    pub prefix: String,
    /// Name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// `secret` or `restricted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Scopes of a restricted key.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What an import recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysImported {
    /// The keys, in the request's order.
    pub keys: Vec<ImportedKey>,
}

/// Import keys a platform already issued, by their SHA-256, so its
/// customers' keys keep working on Gatehouse. All or none.
#[utoipa::path(post, path = "/v1/apps/{app}/keys/import", tag = "keys",
    params(("app" = Uuid, Path, description = "App id")),
    request_body = ImportKeysRequest,
    responses((status = 201, body = KeysImported), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn import_keys(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<ImportKeysRequest>,
) -> Result<Committed<KeysImported>, ApiError> {
    use event_schemas::key::{key_hash_stream, KeyHashClaimed, KeyHashEvent};
    let ids = meta.ids();
    let mut cmds = Vec::with_capacity(body.keys.len());
    for (i, k) in body.keys.into_iter().enumerate() {
        let at = |field: &str| format!("/keys/{i}/{field}");
        let hash = format::parse_hash(&k.hash).ok_or_else(|| {
            ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
                pointer: at("hash"),
                detail: "must be the key's SHA-256, 64 hex digits".into(),
            }]))
        })?;
        if state.index.contains_hash(&hash) {
            return Err(ApiError::Conflict {
                code: "key-hash-taken",
                detail: format!("keys/{i}: a key with this hash is already in Gatehouse"),
            });
        }
        cmds.push(keys::IssueKey {
            key_id: ids.entity(&format!("api_key/{i}")),
            name: k.name.trim().to_owned(),
            mode: mode(&k.mode, &at("mode"))?,
            kind: wire(&k.kind, &at("type"), KeyKind::parse, "secret or restricted")?,
            scopes: k.scopes,
            expires_at: k.expires_at,
            rate_limit: None,
            prefix: k.prefix,
            hash,
            imported: true,
        });
    }
    let (app, org) = app_and_org(&state, app_id, session.user_id).await?;
    let decided = keys::import(
        &org,
        &app,
        session.user_id,
        cmds.clone(),
        crate::command::now(),
    )?;
    let metadata = meta.in_org(session.actor(), app.org_id);
    let mut appends = Vec::new();
    for (cmd, events) in cmds.iter().zip(&decided) {
        let stream = key_stream(cmd.key_id);
        appends.push(StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            ids.new_events(&stream, events, &metadata),
        ));
        let claim = key_hash_stream(&format::hash_hex(&cmd.hash));
        let claimed = [KeyHashEvent::Claimed(KeyHashClaimed { key_id: cmd.key_id })];
        appends.push(StreamAppend::new(
            claim.clone(),
            ExpectedVersion::NoStream,
            ids.new_events(&claim, &claimed, &metadata),
        ));
    }
    let position = match state.store.append_all(appends).await {
        Ok(done) => done.last_position,
        Err(event_store::AppendError::Conflict { stream_id, .. })
            if stream_id.starts_with("api_key_hash-") =>
        {
            return Err(ApiError::Conflict {
                code: "key-hash-taken",
                detail: format!(
                    "a key with hash {} is already in Gatehouse",
                    stream_id.trim_start_matches("api_key_hash-")
                ),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let keys = cmds
        .into_iter()
        .map(|c| ImportedKey {
            id: c.key_id,
            prefix: c.prefix,
            name: c.name,
            mode: c.mode.as_str().into(),
            kind: c.kind.as_str().into(),
            scopes: c.scopes,
            expires_at: c.expires_at,
        })
        .collect();
    state.verifiable(position).await;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(KeysImported { keys }),
    })
}
