//! Endpoints: create (the secret shown once), list and read; the bodies
//! and views the other endpoint commands share.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/apps/{app}/webhooks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// Where deliveries go: `https://` (or `http://`), at most 2,048
    /// characters, not a private, loopback or metadata address.
    #[schema(max_length = 2048, example = "https://example.com/webhooks")]
    pub url: String,
    /// Types (`app.created`), families (`api_key.*`) or `*`; 1 to 100.
    pub event_types: Vec<String>,
    /// `live` or `test`.
    #[schema(example = "test")]
    pub mode: String,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Messages per second at most (1 to 10,000).
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<u32>,
    /// `v1` (HMAC-SHA256, the default) or `v1a` (Ed25519).
    #[schema(example = "v1")]
    pub signature: Option<String>,
}

/// `PATCH /v1/webhooks/{id}` body: the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    /// New URL.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// New type filters.
    pub event_types: Option<Vec<String>>,
    /// New description.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// New rate limit; `0` removes it.
    #[schema(minimum = 0, maximum = 10000)]
    pub rate_limit: Option<u32>,
}

/// `POST /v1/webhooks/{id}/rotate-secret` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateEndpointSecretRequest {
    /// How long the old secret keeps signing beside the new one, in
    /// seconds (default 86,400; 0 to 604,800).
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_secs: Option<u64>,
}

/// An endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// Endpoint id.
    pub id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// Type filters.
    pub event_types: Vec<String>,
    /// `live` or `test`.
    pub mode: String,
    /// Description.
    pub description: String,
    /// Messages per second at most.
    pub rate_limit: Option<u32>,
    /// `v1` or `v1a`.
    pub signature: String,
    /// For `v1a`: the public key (`whpk_...`) receivers verify with.
    pub public_key: Option<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Why it is disabled: `manual`, `gone` (the receiver answered 410) or
    /// `failing` (failing for days).
    pub disabled_reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An endpoint just created or given a new secret: the secret, once.
#[derive(Serialize, ToSchema)]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_...` (v1), the shared secret, shown only in this answer; or,
    /// for v1a, `whpk_...`, the public key that verifies its signatures
    /// (the private key never leaves Gatehouse).
    pub secret: String,
    /// After a rotation: when the previous secret stops signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

crate::redacted_debug!(EndpointWithSecret);

impl EndpointView {
    pub(super) fn of(e: &Endpoint, created_at: DateTime<Utc>) -> Self {
        let s = e.settings.clone().unwrap_or_default();
        EndpointView {
            id: e.id,
            app_id: e.app_id,
            url: s.url,
            event_types: s.event_types,
            mode: e.mode.map(Mode::as_str).unwrap_or_default().into(),
            description: s.description,
            rate_limit: s.rate_limit,
            signature: e
                .scheme
                .map(webhooks::Scheme::as_str)
                .unwrap_or_default()
                .into(),
            public_key: e.secret.as_ref().and_then(|s| s.public_key.clone()),
            status: e.status.as_str().into(),
            disabled_reason: e.disabled_reason.clone(),
            created_at,
        }
    }

    /// An endpoint as the dispatcher's copy holds it.
    pub(super) fn from_row(r: delivery::read::EndpointRow) -> Self {
        EndpointView {
            id: r.endpoint_id,
            app_id: r.app_id,
            url: r.url,
            event_types: r.event_types,
            mode: r.mode,
            description: r.description,
            rate_limit: r.rate_limit.map(|r| r as u32),
            signature: r.scheme,
            public_key: r
                .secrets
                .first()
                .and_then(|s| s.get("public_key"))
                .and_then(|p| p.as_str())
                .map(str::to_owned),
            status: r.status,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
        }
    }
}

/// Checks a destination against the SSRF policy: 422 at `/url` if it
/// does not parse or may not be reached.
/// Checks a destination: an absolute http(s) URL without credentials,
/// `https` when `live` (unless private destinations are allowed, for
/// development), whose host resolves only to addresses webhooks may reach.
pub(crate) async fn check_destination(
    state: &AppState,
    url: &str,
    live: bool,
) -> Result<(), ApiError> {
    let invalid = |detail: String| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: "/url".into(),
            detail,
        }]))
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid("must be an absolute URL".into()))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(invalid("must be an http(s) URL with a host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("must not carry credentials".into()));
    }
    let policy = state.webhooks.policy;
    if live && parsed.scheme() != "https" && !policy.allow_private {
        return Err(invalid(
            "must be an https URL for live deliveries (test endpoints may use http)".into(),
        ));
    }
    state
        .webhooks
        .policy
        .check_url(&parsed)
        .await
        .map_err(|e| invalid(e.to_string()))
}

fn scheme(value: Option<&str>) -> Result<webhooks::Scheme, ApiError> {
    match value {
        None => Ok(webhooks::Scheme::Hmac),
        Some(s) => wire(s, "/signature", webhooks::Scheme::parse, "v1 or v1a"),
    }
}

/// Create an endpoint. The answer's `secret` is the only time it is shown.
#[utoipa::path(post, path = "/v1/apps/{app}/webhooks", tag = "webhooks",
    params(("app" = Uuid, Path, description = "App id")),
    request_body = CreateEndpointRequest,
    responses((status = 201, body = EndpointWithSecret), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<CreateEndpointRequest>,
) -> Result<Committed<EndpointWithSecret>, ApiError> {
    let mode = wire(&body.mode, "/mode", Mode::parse, "live or test")?;
    let scheme = scheme(body.signature.as_deref())?;
    let ids = meta.ids();
    let endpoint_id = ids.entity("webhook");
    let (secret, sealed) = new_secret(&state, &ids, endpoint_id, scheme, "webhook-secret");
    let cmd = webhooks::CreateEndpoint {
        endpoint_id,
        mode,
        scheme,
        settings: event_schemas::webhook::EndpointSettings {
            url: body.url.trim().to_owned(),
            event_types: body.event_types,
            description: body.description,
            rate_limit: body.rate_limit,
        },
        secret: sealed,
    };
    let (state_ref, cmd_ref, meta_ref) = (&state, &cmd, &meta);
    let executed = state
        .commands
        .execute::<Endpoint, _>(
            &webhook_stream(endpoint_id),
            &ids,
            move |loaded| async move {
                let (app, org) =
                    super::super::keys::app_and_org(state_ref, app_id, session.user_id).await?;
                let metadata = meta_ref.in_org(session.actor(), app.org_id);
                if loaded.version > 0 {
                    return Ok(Plan::new(Vec::new(), metadata));
                }
                let events = webhooks::create(&org, &app, session.user_id, cmd_ref.clone())?;
                // Checked after the rules, so a refused caller learns nothing
                // of how the address resolves.
                check_destination(state_ref, &cmd_ref.settings.url, cmd_ref.mode == Mode::Live)
                    .await?;
                Ok(Plan::new(events, metadata))
            },
        )
        .await?;
    let endpoint = EndpointView::of(executed.state(), created_at(&state, endpoint_id).await?);
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(EndpointWithSecret {
            endpoint,
            secret: secret.shown_to_subscriber(),
            previous_secret_expires_at: None,
        }),
    })
}

/// An app's endpoints, oldest first.
#[utoipa::path(get, path = "/v1/apps/{app}/webhooks", tag = "webhooks",
    params(("app" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = Page<EndpointView>), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    _reader: AppReader,
    paging: Paging<TimeKey>,
) -> Result<Json<Page<EndpointView>>, ApiError> {
    fed(&state, min).await?;
    let client = state.pool.get().await?;
    let rows = delivery::read::app_endpoints(&client, app, paging.after, paging.fetch()).await?;
    Ok(Json(paging.page(rows, EndpointView::from_row)))
}

/// One endpoint, as its stream holds it.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    session: Session,
) -> Result<Json<EndpointView>, ApiError> {
    let (endpoint, _, _) = load_endpoint(&state, id, session.user_id).await?;
    Ok(Json(EndpointView::of(
        &endpoint,
        created_at(&state, id).await?,
    )))
}
