//! Messages other services publish to an app's endpoints, and the catalog
//! of what can be subscribed to.

#[allow(unused_imports)]
use super::*;

/// The largest payload a published message may carry.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// Families the platform itself publishes: no one else may use them.
const PLATFORM_FAMILIES: &[&str] = &[
    "app",
    "app_version",
    "product_access",
    "api_key",
    "usage",
    "webhook",
];

/// `POST /v1/apps/{app}/events` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishMessageRequest {
    /// `family.verb_past` (such as `invoice.paid`), not a platform family.
    #[serde(rename = "type")]
    #[schema(example = "invoice.paid", max_length = 100)]
    pub kind: String,
    /// The message's `data`: a JSON object up to 256 KiB.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Only endpoints of this mode (`live` or `test`); both when absent.
    pub mode: Option<String>,
}

/// A published message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// Message id (the `webhook-id` is `msg_` and its 32 hex digits).
    pub id: Uuid,
    /// The `webhook-id` header receivers see.
    pub webhook_id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its app.
    pub app_id: Uuid,
    /// Mode filter.
    pub mode: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// The retention key of the day `at` falls on: every payload of one day
/// is sealed under it, so retention purges a day by destroying one key.
pub(super) fn retention_key(vault: &Vault, day: chrono::NaiveDate) -> Uuid {
    let day = day.format("%Y-%m-%d").to_string();
    let print = vault.fingerprint("webhook-retention-day", &[day.as_bytes()]);
    let bytes: [u8; 16] = print[..16].try_into().expect("16 of 32 bytes");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Publish a message to the app's endpoints that subscribe to its type.
/// Deliveries carry the payload as `data`, signed like every webhook.
#[utoipa::path(post, path = "/v1/apps/{app}/events", tag = "webhooks",
    params(("app" = Uuid, Path, description = "App id")),
    request_body = PublishMessageRequest,
    responses((status = 202, body = MessageView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem),
        (status = 429, description = "The organisation's publish quota (messages or payload bytes a minute) is spent; retry after Retry-After", body = Problem)),
    security(("bearer" = [])))]
pub async fn publish_message(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<PublishMessageRequest>,
) -> Result<Committed<MessageView>, ApiError> {
    let invalid = |pointer: &str, detail: &str| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }]))
    };
    if !webhooks::is_type_name(&body.kind) || body.kind.len() > 100 {
        return Err(invalid(
            "/type",
            "must be family.verb_past: lowercase letters, digits and _, up to 100 characters",
        ));
    }
    let family = body.kind.split('.').next().unwrap_or_default();
    if PLATFORM_FAMILIES.contains(&family) {
        return Err(invalid("/type", "this family is the platform's own"));
    }
    if !body.payload.is_object() {
        return Err(invalid("/payload", "must be a JSON object"));
    }
    let payload = serde_json::to_vec(&body.payload).map_err(ApiError::internal)?;
    if payload.len() > MAX_PAYLOAD {
        return Err(ApiError::BadBody {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload-too-large",
            detail: format!(
                "the payload is {} bytes; at most {MAX_PAYLOAD}",
                payload.len()
            ),
        });
    }
    let mode = body
        .mode
        .as_deref()
        .map(|m| wire(m, "/mode", Mode::parse, "live or test"))
        .transpose()?;
    let (app, org) = super::super::keys::app_and_org(&state, app_id, session.user_id).await?;
    app.access_of(&org, session.user_id)?;
    org.authorize(session.user_id, domain::roles::Permission::ManageWebhooks)
        .map_err(domain::apps::AppError::Org)?;
    if app.suspended.is_some() {
        return Err(domain::apps::AppError::Suspended.into());
    }
    // Reserved before anything is sealed or appended, given back if the
    // append fails: parallel publishers cannot pass the quota together.
    let reservation = state
        .publish_quota
        .reserve(app.org_id, payload.len())
        .map_err(|wait| ApiError::TooManyRequests {
            retry_after: wait.as_secs().max(1),
        })?;
    let ids = meta.ids();
    let message_id = ids.entity("message");
    let now = crate::command::now();
    let key_id = retention_key(&state.vault, now.date_naive());
    let key = state
        .webhook_keys
        .get(&state.vault, &state.pool, (key_id, Some(now.date_naive())))
        .await?
        .ok_or_else(|| ApiError::Internal("a retention key just made is missing".into()))?;
    let sealed = key.seal_bytes(&payload_context(message_id), &payload);
    let event = event_schemas::webhook::MessageEvent::Published(MessagePublished {
        message_id,
        app_id,
        org_id: app.org_id,
        message_type: body.kind.clone(),
        mode: mode.map(|m| m.as_str().to_owned()),
        retention_key: key_id,
        payload: base64::engine::general_purpose::STANDARD.encode(sealed),
    });
    let stream = event_schemas::webhook::message_stream(message_id);
    let metadata = meta.in_org(session.actor(), app.org_id);
    use event_store::EventStoreExt;
    let appended = state
        .store
        .append(
            &stream,
            event_store::ExpectedVersion::NoStream,
            ids.new_events(&stream, &[event], &metadata),
        )
        .await;
    let position = match appended {
        Ok(a) => {
            reservation.keep();
            a.last_position
        }
        // The same Idempotency-Key again: the message is already recorded.
        Err(event_store::AppendError::Conflict { .. }) => state
            .store
            .read_stream(&stream, 1, 1)
            .await?
            .first()
            .map(|e| e.global_position)
            .ok_or(ApiError::NotFound)?,
        Err(e) => return Err(e.into()),
    };
    let recorded = state.store.read_stream(&stream, 1, 1).await?;
    let first = recorded.first().ok_or(ApiError::NotFound)?;
    let published = event_schemas::webhook::MessageEvent::decode(first)
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    let event_schemas::webhook::MessageEvent::Published(m) = published;
    Ok(Committed {
        status: StatusCode::ACCEPTED,
        position,
        body: Some(MessageView {
            id: m.message_id,
            webhook_id: delivery::sign::webhook_id(m.message_id),
            kind: m.message_type,
            app_id: m.app_id,
            mode: m.mode,
            created_at: first.recorded_at,
        }),
    })
}

/// A type that can be subscribed to.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    /// The type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its family (`app.*` subscribes to all of it).
    pub family: String,
    /// What happened.
    pub description: String,
    /// The payload's version.
    pub version: u32,
    /// JSON Schema of the message body.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

/// The platform's deliverable event types, each with its versioned schema.
/// Published messages add their own types.
#[utoipa::path(get, path = "/v1/event-types", tag = "webhooks",
    responses((status = 200, body = [EventTypeView])))]
pub async fn event_types() -> Json<Vec<EventTypeView>> {
    Json(
        delivery::catalog::CATALOG
            .iter()
            .map(|t| EventTypeView {
                kind: t.name.into(),
                family: t.name.split('.').next().unwrap_or_default().into(),
                description: t.description.into(),
                version: t.version,
                schema: t.schema(),
            })
            .collect(),
    )
}
