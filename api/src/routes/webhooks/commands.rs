//! Commands on an existing endpoint: update, disable, enable, delete, and
//! rotate the secret with an overlap.

#[allow(unused_imports)]
use super::*;

/// Runs an endpoint command and answers the endpoint after it.
pub(super) async fn endpoint_command(
    state: &AppState,
    id: Uuid,
    meta: &RequestMeta,
    session: Session,
    decide: impl Fn(
        &Org,
        &App,
        &Endpoint,
    ) -> Result<Vec<event_schemas::webhook::WebhookEvent>, ApiError>,
) -> Result<Committed<EndpointView>, ApiError> {
    let (_, app, _) = load_endpoint(state, id, session.user_id).await?;
    let app_id = app.id;
    let ids = meta.ids();
    let decide = &decide;
    let executed = state
        .commands
        .execute::<Endpoint, _>(&webhook_stream(id), &ids, move |loaded| async move {
            let (app, org) =
                super::super::keys::app_and_org(state, app_id, session.user_id).await?;
            let events = decide(&org, &app, &loaded)?;
            Ok(Plan::new(events, meta.in_org(session.actor(), app.org_id)))
        })
        .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position: executed.position,
        body: Some(EndpointView::of(
            executed.state(),
            created_at(state, id).await?,
        )),
    })
}

/// Change an endpoint's URL, filters, description or rate limit.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = UpdateEndpointRequest,
    responses((status = 200, body = EndpointView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<UpdateEndpointRequest>,
) -> Result<Committed<EndpointView>, ApiError> {
    if let Some(url) = &body.url {
        // Refused callers are turned away by load_endpoint first.
        let (endpoint, _, _) = load_endpoint(&state, id, session.user_id).await?;
        check_destination(&state, url.trim(), endpoint.mode == Some(Mode::Live)).await?;
    }
    endpoint_command(&state, id, &meta, session, |org, app, e| {
        let mut s = e.settings.clone().unwrap_or_default();
        if let Some(url) = &body.url {
            s.url = url.trim().to_owned();
        }
        if let Some(t) = &body.event_types {
            s.event_types = t.clone();
        }
        if let Some(d) = &body.description {
            s.description = d.clone();
        }
        if let Some(r) = body.rate_limit {
            s.rate_limit = (r > 0).then_some(r);
        }
        Ok(webhooks::update(org, app, e, session.user_id, s)?)
    })
    .await
}

/// Stop deliveries to an endpoint (they wait, and resume on enable).
#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn disable_endpoint(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<EndpointView>, ApiError> {
    endpoint_command(&state, id, &meta, session, |org, app, e| {
        Ok(webhooks::disable(org, app, e, session.user_id)?)
    })
    .await
}

/// Resume deliveries to a disabled endpoint.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn enable_endpoint(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<EndpointView>, ApiError> {
    endpoint_command(&state, id, &meta, session, |org, app, e| {
        Ok(webhooks::enable(org, app, e, session.user_id)?)
    })
    .await
}

/// Delete an endpoint, irreversibly: nothing more is delivered to it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 204), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<EndpointView>, ApiError> {
    let done = endpoint_command(&state, id, &meta, session, |org, app, e| {
        Ok(webhooks::delete(org, app, e, session.user_id)?)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position: done.position,
        body: None,
    })
}

/// A new signing secret (answered once); the old one keeps signing beside
/// it for the overlap, so receivers can switch without losing a message.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body(content = Option<RotateEndpointSecretRequest>),
    responses((status = 200, body = EndpointWithSecret), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_endpoint_secret(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    OptionalJson(body): OptionalJson<RotateEndpointSecretRequest>,
) -> Result<Committed<EndpointWithSecret>, ApiError> {
    let overlap = overlap(body.unwrap_or_default())?;
    let (endpoint, _, _) = load_endpoint(&state, id, session.user_id).await?;
    let scheme = endpoint.scheme.ok_or(ApiError::NotFound)?;
    let ids = meta.ids();
    let (secret, sealed) = new_secret(&state, &ids, id, scheme, "webhook-secret-rotation");
    let now = crate::command::now();
    let until = now + overlap;
    let done = endpoint_command(&state, id, &meta, session, |org, app, e| {
        Ok(webhooks::rotate_secret(
            org,
            app,
            e,
            session.user_id,
            sealed.clone(),
            until,
            now,
        )?)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position: done.position,
        body: done.body.map(|endpoint| EndpointWithSecret {
            endpoint,
            secret: secret.shown_to_subscriber(),
            previous_secret_expires_at: Some(until),
        }),
    })
}

/// The overlap a rotation asks for: the default, or 0 s to 7 days.
pub(crate) fn overlap(body: RotateEndpointSecretRequest) -> Result<chrono::Duration, ApiError> {
    match body.overlap_secs {
        Some(s) if s > webhooks::max_overlap().num_seconds() as u64 => {
            Err(domain::Invalid(vec![domain::FieldError {
                pointer: "/overlap_secs".into(),
                detail: "the overlap may last 0 s to 7 days (604800 s)".into(),
            }])
            .into())
        }
        Some(s) => Ok(chrono::Duration::seconds(s as i64)),
        None => Ok(webhooks::default_overlap()),
    }
}
