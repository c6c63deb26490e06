//! Replaying messages to an endpoint, by id or by a window of failures
//! (recover): each request is a `webhook.replay_requested` event the
//! feeder turns into new deliveries with the original `webhook-id`.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/webhooks/{id}/replay` body: message ids, or a window whose
/// failed messages to recover.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// 1 to 1,000 messages to send again, each by its id or by the
    /// `webhook-id` its receiver saw (`msg_` and 32 hex digits).
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 1000)]
    pub message_ids: Vec<String>,
    /// Recover: messages created since (RFC 3339) that failed to this
    /// endpoint and were never delivered.
    pub since: Option<DateTime<Utc>>,
    /// Recover up to (exclusive; default now).
    pub until: Option<DateTime<Utc>>,
}

/// A replay, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayView {
    /// Replay id.
    pub replay_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The messages named.
    pub message_ids: Vec<Uuid>,
    /// The recovery window's start.
    pub since: Option<DateTime<Utc>>,
    /// Its end.
    pub until: Option<DateTime<Utc>>,
}

/// Send messages to this endpoint again (with their original `webhook-id`),
/// or recover those that failed in a window. Each replay is an event.
#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = ReplayRequest,
    responses((status = 202, body = ReplayView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<Committed<ReplayView>, ApiError> {
    let (_, app, _) = load_endpoint(&state, id, session.user_id).await?;
    let message_ids = body
        .message_ids
        .iter()
        .enumerate()
        .map(|(i, text)| {
            delivery::sign::parse_message_id(text).ok_or_else(|| domain::FieldError {
                pointer: format!("/message_ids/{i}"),
                detail: "a message id is its UUID or its webhook-id (msg_ and 32 hex digits)"
                    .into(),
            })
        })
        .collect::<Result<Vec<Uuid>, _>>()
        .map_err(|e| ApiError::from(domain::Invalid(vec![e])))?;
    if !message_ids.is_empty() && message_ids.len() <= 1000 {
        let client = state.pool.get().await?;
        let known = delivery::read::known_messages(&client, &message_ids, app.id).await?;
        if let Some(i) = message_ids.iter().position(|m| !known.contains(m)) {
            return Err(domain::Invalid(vec![domain::FieldError {
                pointer: format!("/message_ids/{i}"),
                detail: "no message with this id was sent to this app's endpoints".into(),
            }])
            .into());
        }
    }
    let ids = meta.ids();
    let replay_id = ids.entity("replay");
    let request = event_schemas::webhook::ReplayRequested {
        replay_id,
        message_ids,
        since: body.since,
        until: body.until,
    };
    let done = endpoint_command(&state, id, &meta, session, |org, app, e| {
        Ok(webhooks::replay(
            org,
            app,
            e,
            session.user_id,
            request.clone(),
        )?)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::ACCEPTED,
        position: done.position,
        body: Some(ReplayView {
            replay_id,
            endpoint_id: id,
            message_ids: request.message_ids,
            since: request.since,
            until: request.until,
        }),
    })
}

/// `POST /v1/webhooks/{id}/recover` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Messages created since (RFC 3339) that failed to this endpoint and
    /// were never delivered.
    pub since: DateTime<Utc>,
    /// Up to (exclusive; default now).
    pub until: Option<DateTime<Utc>>,
}

/// Send again every message that failed to this endpoint in a window and
/// was never delivered: a replay by time (`replay` with `since`/`until`).
#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = RecoverRequest,
    responses((status = 202, body = ReplayView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn recover(
    state: State<AppState>,
    id: Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<RecoverRequest>,
) -> Result<Committed<ReplayView>, ApiError> {
    let body = ReplayRequest {
        message_ids: Vec::new(),
        since: Some(body.since),
        until: body.until,
    };
    replay(state, id, meta, session, ApiJson(body)).await
}
