//! Members: the list (names, and emails as `domain::roles::sees_email_of`
//! decides), role changes and removal, and the read-side role checks.

#[allow(unused_imports)]
use super::*;

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
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &format!("{MEMBER_SELECT} AND m.user_id = $2"),
            &[&org, &user],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    let mut views = open_members(state, vec![member_row(&row)], viewer_role, viewer).await?;
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
    member: OrgMember,
    min: MinPosition,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<MemberView>>, ApiError> {
    let role = member.require(Permission::ViewOrg)?;
    min.wait(&state, &["accounts"]).await?;
    let client = state.pool.get().await?;
    let key = ("m.joined_at", "m.user_id");
    let page = page::fetch(&client, &paging, MEMBER_SELECT, key, &[&org], member_row).await?;
    drop(client);
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
