//! Members: the list (names, and emails as `domain::roles::sees_email_of`
//! decides), role changes and removal. The read-side role checks are
//! `crate::authorize`'s.

#[allow(unused_imports)]
use super::*;

use projections::orgs::read::MemberRow;

use crate::authorize::member_role;

/// A member, as the Members page shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: Uuid,
    /// Their name; `[erased]` once their personal data is shredded.
    pub name: String,
    /// Their email, for owners, managers and compliance
    /// (`members.emails.view`) and for the member themselves; absent for
    /// others; `[erased]` once shredded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role.
    pub role: String,
    /// When they joined (the time the log recorded it).
    pub joined_at: DateTime<Utc>,
}

pub use crate::vault::ERASED;

/// Opens the members' names (and emails, for those `viewer` with `role`
/// may see) with one query for their keys.
async fn open_members(
    state: &AppState,
    rows: Vec<MemberRow>,
    role: Role,
    viewer: Uuid,
) -> Result<Vec<MemberView>, ApiError> {
    let client = state.pool.get().await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let keys = state
        .vault
        .subject_keys(&client, &ids)
        .await
        .map_err(ApiError::internal)?;
    let open = |user: Uuid, sealed: &Option<String>| -> Result<String, ApiError> {
        match sealed {
            Some(sealed) => Ok(crate::vault::reveal(keys.get(&user), sealed)?),
            None => Ok(ERASED.into()),
        }
    };
    rows.into_iter()
        .map(|r| {
            Ok(MemberView {
                name: open(r.user_id, &r.name_sealed)?,
                email: match domain::roles::sees_email_of(role, viewer, r.user_id) {
                    true => Some(open(r.user_id, &r.email_sealed)?),
                    false => None,
                },
                user_id: r.user_id,
                role: r.role,
                joined_at: r.joined_at,
            })
        })
        .collect()
}

/// One member as the read model holds them once it has reached `position`
/// (the command's own): the answer of a command on a member.
pub(crate) async fn member_after(
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
    let client = state.read_models.client().await?;
    let row = projections::orgs::read::member(&client, org, user)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    let mut views = open_members(state, vec![row], viewer_role, viewer).await?;
    views.pop().ok_or(ApiError::NotFound)
}

/// The organisation's members.
#[utoipa::path(get, path = "/v1/orgs/{org}/members", tag = "organizations",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<MemberView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_members(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
    min: MinPosition,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<MemberView>>, ApiError> {
    let role = member.require(Permission::ViewOrg)?;
    min.wait(&state, &["accounts"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::orgs::read::members(&client, org, paging.keyset()).await?;
    drop(client);
    let page = paging.page(rows, |m| m);
    Ok(Json(Page {
        items: open_members(&state, page.items, role, member.session.user_id).await?,
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

pub(crate) fn parse_role(role: &str) -> Result<Role, ApiError> {
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
