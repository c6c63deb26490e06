//! Audit log streams: an organisation's audit history pushed to an HTTP
//! endpoint (a SIEM's collector) as it is recorded, so no reviewer polls.
//!
//! A stream is a webhook endpoint of no app (`webhook-<id>`, created by
//! `webhook.audit_stream_created`): the `delivery` crate's audit feeder
//! turns each new entry of the audit read model into an `audit.entry`
//! message, and the webhook dispatcher signs (Standard Webhooks, `v1`),
//! retries and logs it. Owners and compliance reviewers (`audit.export`)
//! manage streams.

#[allow(unused_imports)]
use super::*;

use axum::http::StatusCode;

use crate::command::{Committed, Plan, RequestMeta};
use crate::extract::{ApiJson, OptionalJson, Path};
use crate::routes::webhooks::{
    check_destination, created_at, deliveries_page, fed, new_secret, DeliveryFilter, DeliveryView,
    RotateEndpointSecretRequest,
};
use domain::webhooks::{self, audit_streams, Endpoint};
use event_schemas::webhook::webhook_stream;

/// `POST /v1/orgs/{org}/audit/streams` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAuditStreamRequest {
    /// Where entries go: `https://` (or `http://`), at most 2,048
    /// characters, not a private, loopback or metadata address.
    #[schema(max_length = 2048, example = "https://siem.example.com/gatehouse")]
    pub url: String,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

/// An audit stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditStreamView {
    /// Stream id (its deliveries' endpoint id).
    pub id: Uuid,
    /// The organisation whose history it receives.
    pub org_id: Uuid,
    /// Where entries go.
    pub url: String,
    /// Description.
    pub description: String,
    /// `enabled` or `disabled` (entries recorded while disabled wait, and
    /// are sent once it is enabled again).
    pub status: String,
    /// Why Gatehouse disabled it: `gone` (the collector answered 410) or
    /// `failing` (every delivery failed for days).
    pub disabled_reason: Option<String>,
    /// When it was created; it receives the entries recorded after.
    pub created_at: DateTime<Utc>,
}

/// A stream just created or given a new secret: the secret, once.
#[derive(Serialize, ToSchema)]
pub struct AuditStreamWithSecret {
    /// The stream.
    #[serde(flatten)]
    pub stream: AuditStreamView,
    /// `whsec_...`: verifies the `webhook-signature` of every delivery
    /// (Standard Webhooks, `v1`). Shown only in this answer.
    pub secret: String,
    /// After a rotation: when the previous secret stops signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

crate::redacted_debug!(AuditStreamWithSecret);

impl AuditStreamView {
    fn of(e: &Endpoint, created_at: DateTime<Utc>) -> Self {
        let s = e.settings.clone().unwrap_or_default();
        AuditStreamView {
            id: e.id,
            org_id: e.org_id,
            url: s.url,
            description: s.description,
            status: e.status.as_str().into(),
            disabled_reason: e.disabled_reason.clone(),
            created_at,
        }
    }

    fn from_row(r: delivery::read::AuditStreamRow) -> Self {
        AuditStreamView {
            id: r.endpoint_id,
            org_id: r.org_id,
            url: r.url,
            description: r.description,
            status: r.status,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
        }
    }
}

/// Start streaming the organisation's audit history to a URL. Each entry
/// recorded from now on is delivered as an `audit.entry` message, signed
/// with the secret answered here (only here).
#[utoipa::path(post, path = "/v1/orgs/{org}/audit/streams", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id")),
    request_body = CreateAuditStreamRequest,
    responses((status = 201, body = AuditStreamWithSecret), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_stream(
    State(state): State<AppState>,
    member: OrgMember,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateAuditStreamRequest>,
) -> Result<Committed<AuditStreamWithSecret>, ApiError> {
    member.require(Permission::ManageAuditStreams)?;
    let ids = meta.ids();
    let id = ids.entity("audit-stream");
    let (secret, sealed) = new_secret(
        &state,
        &ids,
        id,
        webhooks::Scheme::Hmac,
        "audit-stream-secret",
    );
    let cmd = audit_streams::CreateAuditStream {
        endpoint_id: id,
        url: body.url.trim().to_owned(),
        description: body.description,
        secret: sealed,
    };
    let user = member.session.user_id;
    let (state_ref, cmd_ref, meta_ref) = (&state, &cmd, &meta);
    let executed = state
        .commands
        .execute::<Endpoint, _>(&webhook_stream(id), &ids, move |loaded| async move {
            let metadata = meta_ref.in_org(member.session.actor(), member.org);
            if loaded.version > 0 {
                return Ok(Plan::new(Vec::new(), metadata));
            }
            let (org, _, _) = crate::command::orgs::load(state_ref, member.org).await?;
            let events = audit_streams::create(&org, user, cmd_ref.clone())?;
            // After the rules, so a refused caller learns nothing of how
            // the address resolves.
            check_destination(state_ref, &cmd_ref.url, true).await?;
            Ok(Plan::new(events, metadata))
        })
        .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(AuditStreamWithSecret {
            stream: AuditStreamView::of(executed.state(), created_at(&state, id).await?),
            secret: secret.shown_to_subscriber(),
            previous_secret_expires_at: None,
        }),
    })
}

/// The organisation's audit streams, oldest first.
#[utoipa::path(get, path = "/v1/orgs/{org}/audit/streams", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), PageQuery),
    responses((status = 200, body = Page<AuditStreamView>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_streams(
    State(state): State<AppState>,
    member: OrgMember,
    min: MinPosition,
    paging: Paging<crate::page::TimeKey>,
) -> Result<Json<Page<AuditStreamView>>, ApiError> {
    member.require(Permission::ExportAudit)?;
    fed(&state, min).await?;
    let client = state.pool.get().await?;
    let (after, limit) = (paging.after, paging.fetch());
    let rows = delivery::read::org_audit_streams(&client, member.org, after, limit).await?;
    Ok(Json(paging.page(rows, AuditStreamView::from_row)))
}

/// The stream `id` of the member's organisation, as its stream holds it.
async fn load_stream(
    state: &AppState,
    member: &OrgMember,
    id: Uuid,
) -> Result<std::sync::Arc<crate::command::Loaded<Endpoint>>, ApiError> {
    member.require(Permission::ExportAudit)?;
    let stream = state.commands.load::<Endpoint>(&webhook_stream(id)).await?;
    if !stream.exists
        || !stream.audit
        || stream.org_id != member.org
        || stream.status == webhooks::EndpointStatus::Deleted
    {
        return Err(ApiError::NotFound);
    }
    Ok(stream)
}

/// One audit stream.
#[utoipa::path(get, path = "/v1/orgs/{org}/audit/streams/{id}", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), ("id" = Uuid, Path, description = "Stream id")),
    responses((status = 200, body = AuditStreamView), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_stream(
    State(state): State<AppState>,
    member: OrgMember,
    Path((_org, id)): Path<(Uuid, Uuid)>,
) -> Result<Json<AuditStreamView>, ApiError> {
    let stream = load_stream(&state, &member, id).await?;
    Ok(Json(AuditStreamView::of(
        &stream,
        created_at(&state, id).await?,
    )))
}

/// Runs a command on a stream and answers the stream after it.
async fn stream_command(
    state: &AppState,
    member: OrgMember,
    id: Uuid,
    meta: &RequestMeta,
    decide: impl Fn(
        &domain::orgs::Org,
        &Endpoint,
    ) -> Result<Vec<event_schemas::webhook::WebhookEvent>, ApiError>,
) -> Result<Committed<AuditStreamView>, ApiError> {
    load_stream(state, &member, id).await?;
    let ids = meta.ids();
    let decide = &decide;
    let executed = state
        .commands
        .execute::<Endpoint, _>(&webhook_stream(id), &ids, move |loaded| async move {
            let (org, _, _) = crate::command::orgs::load(state, member.org).await?;
            let events = decide(&org, &loaded)?;
            Ok(Plan::new(
                events,
                meta.in_org(member.session.actor(), member.org),
            ))
        })
        .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position: executed.position,
        body: Some(AuditStreamView::of(
            executed.state(),
            created_at(state, id).await?,
        )),
    })
}

/// Stop streaming, irreversibly: nothing more is sent to the stream.
#[utoipa::path(delete, path = "/v1/orgs/{org}/audit/streams/{id}", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), ("id" = Uuid, Path, description = "Stream id")),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_stream(
    State(state): State<AppState>,
    member: OrgMember,
    Path((_org, id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
) -> Result<Committed<AuditStreamView>, ApiError> {
    let user = member.session.user_id;
    let done = stream_command(&state, member, id, &meta, |org, s| {
        Ok(audit_streams::delete(org, s, user)?)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position: done.position,
        body: None,
    })
}

/// Enable again a stream Gatehouse disabled; the entries recorded
/// meanwhile are sent then, in order.
#[utoipa::path(post, path = "/v1/orgs/{org}/audit/streams/{id}/enable", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), ("id" = Uuid, Path, description = "Stream id")),
    responses((status = 200, body = AuditStreamView), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn enable_stream(
    State(state): State<AppState>,
    member: OrgMember,
    Path((_org, id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
) -> Result<Committed<AuditStreamView>, ApiError> {
    let user = member.session.user_id;
    stream_command(&state, member, id, &meta, |org, s| {
        Ok(audit_streams::enable(org, s, user)?)
    })
    .await
}

/// A new signing secret (answered once); the old one keeps signing beside
/// it for the overlap, so the collector can switch without losing an entry.
#[utoipa::path(post, path = "/v1/orgs/{org}/audit/streams/{id}/rotate-secret", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), ("id" = Uuid, Path, description = "Stream id")),
    request_body(content = Option<RotateEndpointSecretRequest>),
    responses((status = 200, body = AuditStreamWithSecret), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_stream_secret(
    State(state): State<AppState>,
    member: OrgMember,
    Path((_org, id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    OptionalJson(body): OptionalJson<RotateEndpointSecretRequest>,
) -> Result<Committed<AuditStreamWithSecret>, ApiError> {
    let overlap = crate::routes::webhooks::overlap(body.unwrap_or_default())?;
    load_stream(&state, &member, id).await?;
    let ids = meta.ids();
    let (secret, sealed) = new_secret(
        &state,
        &ids,
        id,
        webhooks::Scheme::Hmac,
        "audit-stream-secret-rotation",
    );
    let now = crate::command::now();
    let until = now + overlap;
    let user = member.session.user_id;
    let done = stream_command(&state, member, id, &meta, |org, s| {
        Ok(audit_streams::rotate_secret(
            org,
            s,
            user,
            sealed.clone(),
            until,
            now,
        )?)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position: done.position,
        body: done.body.map(|stream| AuditStreamWithSecret {
            stream,
            secret: secret.shown_to_subscriber(),
            previous_secret_expires_at: Some(until),
        }),
    })
}

/// The stream's delivery log, newest first, each delivery with its
/// attempts.
#[utoipa::path(get, path = "/v1/orgs/{org}/audit/streams/{id}/deliveries", tag = "audit",
    params(("org" = Uuid, Path, description = "Organisation id"), ("id" = Uuid, Path, description = "Stream id"),
        DeliveryFilter, PageQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn stream_deliveries(
    State(state): State<AppState>,
    member: OrgMember,
    Path((_org, id)): Path<(Uuid, Uuid)>,
    min: MinPosition,
    filter: Query<DeliveryFilter>,
    paging: Paging<i64>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    load_stream(&state, &member, id).await?;
    fed(&state, min).await?;
    Ok(Json(deliveries_page(&state, id, &filter, &paging).await?))
}
