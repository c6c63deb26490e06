//! Organisations: create, developer terms, invitations, members.
//!
//! Commands load the organisation from its own stream, decide with the
//! domain's rules (which also authorise), and append with the exact version
//! they decided on. On a concurrent change they re-load and decide again
//! (at most five times), so no update is lost and nobody gets a spurious
//! 409. Reads check membership in the read model: an outsider gets 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::orgs::{self, Org, OrgError, PlatformTerms};
use domain::roles::{allows, Permission, Role};
use event_schemas::org::{OrgEvent, OrgSlugClaimed, TERMS_STREAM};
use event_schemas::{ExpectedVersion, Metadata};
use event_store::{AppendError, EventStore, StreamAppend};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Session, Staff};
use crate::page::{self, Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs", post(create_org))
        .route("/v1/orgs/{org}/members", get(list_members))
        .route(
            "/v1/orgs/{org}/members/{user}",
            delete(remove_member).patch(change_role),
        )
        .route(
            "/v1/orgs/{org}/invitations",
            post(invite).get(list_invitations),
        )
        .route(
            "/v1/orgs/{org}/invitations/{invitation}/revoke",
            post(revoke_invitation),
        )
        .route(
            "/v1/invitations/{invitation}/accept",
            post(accept_invitation),
        )
        .route("/v1/orgs/{org}/developer-terms/accept", post(accept_terms))
        .route("/v1/developer-terms", get(current_terms))
        .route("/v1/staff/developer-terms", post(publish_terms))
}

pub(crate) fn stream(org: Uuid) -> String {
    format!("org-{org}")
}

/// An organisation as the log holds it now, with the developer terms in
/// force (from the platform's own stream); its stream version and position.
pub(crate) async fn load(state: &AppState, org: Uuid) -> Result<(Org, u64, u64), ApiError> {
    let stream = stream(org);
    let (loaded, terms) = tokio::try_join!(
        state.commands.load::<Org>(&stream),
        state.commands.load::<PlatformTerms>(TERMS_STREAM),
    )?;
    Ok((
        with_terms(&loaded.state, &terms.state),
        loaded.version,
        loaded.position,
    ))
}

fn with_terms(org: &Org, terms: &PlatformTerms) -> Org {
    Org {
        terms_in_force: terms.published.last().cloned(),
        ..org.clone()
    }
}

/// The platform's developer terms from the log, with the stream version.
async fn platform_terms(state: &AppState) -> Result<(PlatformTerms, u64), ApiError> {
    let loaded = state.commands.load::<PlatformTerms>(TERMS_STREAM).await?;
    Ok((loaded.state.clone(), loaded.version))
}

/// Runs an organisation command through the executor: decides on the
/// organisation as the log holds it (with the terms in force) and appends.
/// Returns the organisation after the command and the position reached.
pub(crate) async fn execute(
    state: &AppState,
    org: Uuid,
    meta: &RequestMeta,
    metadata: Metadata,
    decide: impl Fn(&Org) -> Result<Vec<OrgEvent>, OrgError>,
) -> Result<(Org, u64), ApiError> {
    let (decide, metadata) = (&decide, &metadata);
    let executed = state
        .commands
        .execute::<Org, _>(&stream(org), &meta.ids(), move |loaded| async move {
            let terms = state.commands.load::<PlatformTerms>(TERMS_STREAM).await?;
            let events = decide(&with_terms(&loaded.state, &terms.state))?;
            Ok(Plan::new(events, metadata.clone()))
        })
        .await?;
    let terms = state.commands.load::<PlatformTerms>(TERMS_STREAM).await?;
    Ok((
        with_terms(executed.state(), &terms.state),
        executed.position,
    ))
}

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

/// A member, as the Members page shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: Uuid,
    /// Their name; `[erased]` once their personal data is shredded.
    pub name: String,
    /// Their email, for callers who may manage members (`members.manage`);
    /// absent for others; `[erased]` once shredded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role.
    pub role: String,
    /// When they joined (the time the log recorded it).
    pub joined_at: DateTime<Utc>,
}

/// Shown instead of personal data whose subject key was shredded.
pub const ERASED: &str = "[erased]";

/// A member row before its personal data is opened.
struct MemberRow {
    user_id: Uuid,
    role: String,
    joined_at: DateTime<Utc>,
    name_sealed: Option<String>,
    email_sealed: Option<String>,
}

const MEMBER_SELECT: &str = "SELECT m.user_id, m.role, m.joined_at, u.name_sealed, u.email_sealed \
     FROM rm.members m LEFT JOIN rm.users u ON u.user_id = m.user_id WHERE m.org_id = $1";

fn member_row(r: &tokio_postgres::Row) -> MemberRow {
    MemberRow {
        user_id: r.get(0),
        role: r.get(1),
        joined_at: r.get(2),
        name_sealed: r.get(3),
        email_sealed: r.get(4),
    }
}

/// Opens the members' names (and emails, when `with_email`) with one query
/// for their keys.
async fn open_members(
    state: &AppState,
    rows: Vec<MemberRow>,
    with_email: bool,
) -> Result<Vec<MemberView>, ApiError> {
    let client = state.pool.get().await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let keys = state
        .vault
        .subject_keys(&client, &ids)
        .await
        .map_err(ApiError::internal)?;
    let open = |user: Uuid, sealed: &Option<String>| -> String {
        match (keys.get(&user), sealed) {
            (Some(key), Some(sealed)) => key.open(sealed).unwrap_or_else(|_| ERASED.into()),
            _ => ERASED.into(),
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| MemberView {
            name: open(r.user_id, &r.name_sealed),
            email: with_email.then(|| open(r.user_id, &r.email_sealed)),
            user_id: r.user_id,
            role: r.role,
            joined_at: r.joined_at,
        })
        .collect())
}

/// One member as the read model holds them once it has reached `position`
/// (the command's own): the answer of a command on a member.
async fn member_after(
    state: &AppState,
    org: Uuid,
    user: Uuid,
    viewer: Uuid,
    position: u64,
) -> Result<MemberView, ApiError> {
    state
        .statuses
        .wait_for(&["orgs", "accounts"], position, state.read_wait)
        .await?;
    let viewer_role = member_role(state, org, viewer).await?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &format!("{MEMBER_SELECT} AND m.user_id = $2"),
            &[&org, &user],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    let with_email = allows(viewer_role, Permission::ManageMembers) || viewer == user;
    let mut views = open_members(state, vec![member_row(&row)], with_email).await?;
    views.pop().ok_or(ApiError::NotFound)
}

/// The caller's role in `org` from the read model; 404 for outsiders.
pub async fn member_role(state: &AppState, org: Uuid, user: Uuid) -> Result<Role, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT role FROM rm.members WHERE org_id = $1 AND user_id = $2",
            &[&org, &user],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    row.get::<_, String>(0)
        .parse()
        .map_err(|_| ApiError::Internal("a stored role does not parse".into()))
}

/// Checks a permission on a read, from the read model.
pub async fn authorize_read(
    state: &AppState,
    org: Uuid,
    user: Uuid,
    permission: Permission,
) -> Result<Role, ApiError> {
    let role = member_role(state, org, user).await?;
    if allows(role, permission) {
        Ok(role)
    } else {
        Err(OrgError::Forbidden(permission).into())
    }
}

/// The organisation's members.
#[utoipa::path(get, path = "/v1/orgs/{org}/members", tag = "organizations",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<MemberView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_members(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    min: MinPosition,
    session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<MemberView>>, ApiError> {
    min.wait(&state, &["orgs", "accounts"]).await?;
    let role = authorize_read(&state, org, session.user_id, Permission::ViewOrg).await?;
    let client = state.pool.get().await?;
    let key = ("m.joined_at", "m.user_id");
    let page = page::fetch(&client, &paging, MEMBER_SELECT, key, &[&org], member_row).await?;
    drop(client);
    let with_email = allows(role, Permission::ManageMembers);
    Ok(Json(Page {
        items: open_members(&state, page.items, with_email).await?,
        next_cursor: page.next_cursor,
    }))
}

/// `PATCH /v1/orgs/{org}/members/{user}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// `owner`, `manager`, `developer`, `finance` or `compliance`.
    pub role: String,
}

fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse().map_err(|_| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: "/role".into(),
            detail: "must be one of owner, manager, developer, finance, compliance".into(),
        }]))
    })
}

/// Change a member's role (owners only for the owner role; never the last owner).
#[utoipa::path(patch, path = "/v1/orgs/{org}/members/{user}", tag = "organizations",
    request_body = ChangeRoleRequest,
    responses((status = 200, body = MemberView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn change_role(
    State(state): State<AppState>,
    Path((org, user)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<ChangeRoleRequest>,
) -> Result<Committed<MemberView>, ApiError> {
    let role = parse_role(&body.role)?;
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::change_role(o, session.user_id, user, role)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(member_after(&state, org, user, session.user_id, position).await?),
    })
}

/// Remove a member, or leave (the last owner cannot).
#[utoipa::path(delete, path = "/v1/orgs/{org}/members/{user}", tag = "organizations",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    Path((org, user)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::remove_member(o, session.user_id, user)
    })
    .await?;
    // The removed member loses access on their next request.
    state
        .statuses
        .wait_for(&["orgs"], position, state.read_wait)
        .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// `POST /v1/orgs/{org}/invitations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The invitee's email.
    pub email: String,
    /// Their role on acceptance.
    pub role: String,
}

/// An invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Id; the invitee accepts with `POST /v1/invitations/{id}/accept`.
    pub id: Uuid,
    /// Role on acceptance.
    pub role: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Invite someone by email; single-use, expires after the deployment's
/// invitation lifetime (7 days by default).
#[utoipa::path(post, path = "/v1/orgs/{org}/invitations", tag = "organizations",
    request_body = InviteRequest,
    responses((status = 201, body = InvitationView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn invite(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<InviteRequest>,
) -> Result<Committed<InvitationView>, ApiError> {
    let email = domain::validate::email(&body.email).ok_or_else(|| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: "/email".into(),
            detail: "must be an email address such as ada@example.com".into(),
        }]))
    })?;
    let role = parse_role(&body.role)?;
    let invitation_id = meta.ids().entity("invitation");
    let email_index = state.vault.email_index(&email);
    // Authorise before creating the invitation's key.
    let (current, _, _) = load(&state, org).await?;
    current.authorize(session.user_id, Permission::ManageMembers)?;
    let client = state.pool.get().await?;
    let key = state
        .vault
        .ensure_subject_key(&client, invitation_id)
        .await
        .map_err(ApiError::internal)?;
    drop(client);
    let sealed = key.seal(&email);
    let now = crate::command::now();
    let cmd = orgs::Invite {
        invitation_id,
        email_index,
        email: sealed,
        role,
        now,
        ttl: state.invitation_ttl,
    };
    let (after, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::invite(o, session.user_id, &cmd)
    })
    .await?;
    let recorded = after
        .invitations
        .get(&invitation_id)
        .ok_or_else(|| ApiError::Internal("an invitation just made is not in its org".into()))?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(InvitationView {
            id: invitation_id,
            role: recorded.role.as_str().to_owned(),
            expires_at: recorded.expires_at,
        }),
    })
}

/// A pending invitation, as the Members page lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingInvitationView {
    /// Id.
    pub id: Uuid,
    /// The invitee's email; `[erased]` once shredded.
    pub email: String,
    /// Role on acceptance.
    pub role: String,
    /// Who invited them (absent when staff or the system did).
    pub invited_by: Option<Uuid>,
    /// When it was sent (the time the log recorded it).
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Pending invitations that have not expired, oldest first (owners and
/// managers: `members.manage`).
#[utoipa::path(get, path = "/v1/orgs/{org}/invitations", tag = "organizations",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<PendingInvitationView>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_invitations(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    min: MinPosition,
    session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<PendingInvitationView>>, ApiError> {
    min.wait(&state, &["orgs"]).await?;
    authorize_read(&state, org, session.user_id, Permission::ManageMembers).await?;
    let client = state.pool.get().await?;
    let select = "SELECT invitation_id, email_sealed, role, invited_by, created_at, expires_at \
         FROM rm.invitations WHERE org_id = $1 AND status = 'pending' AND expires_at > now()";
    let page = page::fetch(
        &client,
        &paging,
        select,
        ("created_at", "invitation_id"),
        &[&org],
        |r| {
            let sealed: String = r.get(1);
            PendingInvitationView {
                id: r.get(0),
                email: sealed,
                role: r.get(2),
                invited_by: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
            }
        },
    )
    .await?;
    let ids: Vec<Uuid> = page.items.iter().map(|i| i.id).collect();
    let keys = state
        .vault
        .subject_keys(&client, &ids)
        .await
        .map_err(ApiError::internal)?;
    let items = page
        .items
        .into_iter()
        .map(|mut i| {
            i.email = keys
                .get(&i.id)
                .and_then(|k| k.open(&i.email).ok())
                .unwrap_or_else(|| ERASED.into());
            i
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Revoke a pending invitation.
#[utoipa::path(post, path = "/v1/orgs/{org}/invitations/{invitation}/revoke", tag = "organizations",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    Path((org, invitation)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::revoke_invitation(o, session.user_id, invitation)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// Accept an invitation addressed to the caller's email.
#[utoipa::path(post, path = "/v1/invitations/{invitation}/accept", tag = "organizations",
    responses((status = 200, body = MemberView), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    Path(invitation): Path<Uuid>,
    min: MinPosition,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<MemberView>, ApiError> {
    min.wait(&state, &["orgs"]).await?;
    let client = state.pool.get().await?;
    let org: Uuid = client
        .query_opt(
            "SELECT org_id FROM rm.invitations WHERE invitation_id = $1",
            &[&invitation],
        )
        .await?
        .ok_or(ApiError::NotFound)?
        .get(0);
    let email_index: String = client
        .query_opt(
            "SELECT email_index FROM rm.users WHERE user_id = $1",
            &[&session.user_id],
        )
        .await?
        .ok_or(ApiError::NotFound)?
        .get(0);
    drop(client);
    let now = crate::command::now();
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::accept_invitation(o, session.user_id, &email_index, invitation, now)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(member_after(&state, org, session.user_id, session.user_id, position).await?),
    })
}

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
