//! Creating an organisation.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/orgs` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    /// URL name: 3 to 40 of a-z, 0-9, -.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    /// Id.
    pub id: Uuid,
    /// URL name.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// Create an organisation; the caller becomes its owner.
#[utoipa::path(post, path = "/v1/orgs", tag = "organizations",
    request_body = CreateOrgRequest,
    responses((status = 201, body = OrgView), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_org(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<CreateOrgRequest>,
) -> Result<Committed<OrgView>, ApiError> {
    let ids = meta.ids();
    let org_id = ids.entity("org");
    let events = orgs::create(org_id, &body.slug, &body.name, session.user_id)?;
    let metadata = meta.in_org(session.actor(), org_id);
    let name = match &events[0] {
        OrgEvent::Created(c) => c.name.clone(),
        _ => body.name.trim().to_owned(),
    };
    let claim = [OrgEvent::SlugClaimed(OrgSlugClaimed { org_id })];
    let (org_stream, slug_stream) = (stream(org_id), format!("org_slug-{}", body.slug));
    // Both creations expect no stream: a conflict is the slug taken (a
    // retry of this very request is recognised by its event ids first).
    let appended = state
        .store
        .append_all(vec![
            StreamAppend::new(
                org_stream.clone(),
                ExpectedVersion::NoStream,
                ids.new_events(&org_stream, &events, &metadata),
            ),
            StreamAppend::new(
                slug_stream.clone(),
                ExpectedVersion::NoStream,
                ids.new_events(&slug_stream, &claim, &metadata),
            ),
        ])
        .await
        .map_err(|e| match e {
            AppendError::Conflict { .. } => OrgError::SlugTaken.into(),
            other => ApiError::from(other),
        })?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: appended.last_position,
        body: Some(OrgView {
            id: org_id,
            slug: body.slug,
            name,
        }),
    })
}
