//! Developer terms: accept the version in force; staff publish new ones.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/orgs/{org}/developer-terms/accept` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptTermsRequest {
    /// The terms version accepted; must be the current one.
    pub version: String,
}

/// Accepted terms.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsView {
    /// The version now accepted.
    pub version: String,
}

/// Accept the developer terms for the organisation.
#[utoipa::path(post, path = "/v1/orgs/{org}/developer-terms/accept", tag = "organizations",
    request_body = AcceptTermsRequest,
    responses((status = 200, body = TermsView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn accept_terms(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AcceptTermsRequest>,
) -> Result<Committed<TermsView>, ApiError> {
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::accept_terms(o, session.user_id, &body.version)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(TermsView {
            version: body.version.clone(),
        }),
    })
}

/// The developer terms version in force.
#[utoipa::path(get, path = "/v1/developer-terms", tag = "organizations",
    responses((status = 200, body = TermsView)))]
pub async fn current_terms(State(state): State<AppState>) -> Result<Json<TermsView>, ApiError> {
    let (terms, _) = platform_terms(&state).await?;
    Ok(Json(TermsView {
        version: terms.current().to_owned(),
    }))
}

/// Put a new version of the developer terms in force (staff). Every
/// organisation must accept it before creating apps, publishing versions or
/// creating install links again; their next step says so.
#[utoipa::path(post, path = "/v1/staff/developer-terms", tag = "organizations",
    request_body = AcceptTermsRequest,
    responses((status = 201, body = TermsView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn publish_terms(
    State(state): State<AppState>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<AcceptTermsRequest>,
) -> Result<Committed<TermsView>, ApiError> {
    let metadata = meta.metadata(staff.actor());
    let (metadata, version) = (&metadata, &body.version);
    let executed = state
        .commands
        .execute::<PlatformTerms, _>(TERMS_STREAM, &meta.ids(), move |terms| async move {
            let events = orgs::publish_terms(&terms.state, staff.0.user_id, version)?;
            Ok(Plan::new(events, metadata.clone()))
        })
        .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(TermsView {
            version: body.version,
        }),
    })
}
