//! Teams inside an organisation (they own apps): create, list, and manage
//! their members (team `admin` manages the team's apps, `member` views them).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::orgs;
use domain::roles::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::orgs::execute;
use crate::authorize::OrgMember;
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, Path, Session};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/teams", get(list_teams).post(create_team))
        .route(
            "/v1/orgs/{org}/teams/{team}/members/{user}",
            put(put_member).delete(remove_team_member),
        )
}

/// `POST /v1/orgs/{org}/teams` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    /// Name, unique in the organisation.
    pub name: String,
}

/// A team with its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Members.
    pub members: Vec<TeamMemberView>,
}

/// A team member.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamMemberView {
    /// User id.
    pub user_id: Uuid,
    /// `admin` or `member`.
    pub team_role: String,
}

/// Create a team.
#[utoipa::path(post, path = "/v1/orgs/{org}/teams", tag = "organizations",
    request_body = CreateTeamRequest,
    responses((status = 201, body = TeamView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_team(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<CreateTeamRequest>,
) -> Result<Committed<TeamView>, ApiError> {
    let team_id = meta.ids().entity("team");
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::create_team(o, session.user_id, team_id, &body.name)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(TeamView {
            id: team_id,
            name: body.name.trim().to_owned(),
            members: Vec::new(),
        }),
    })
}

/// The organisation's teams and their members.
#[utoipa::path(get, path = "/v1/orgs/{org}/teams", tag = "organizations",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<TeamView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_teams(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<TeamView>>, ApiError> {
    member.require(Permission::ViewOrg)?;
    let client = state.read_models.client().await?;
    let rows = projections::orgs::read::teams(&client, org, paging.after, paging.fetch()).await?;
    let mut teams: Vec<((DateTime<Utc>, Uuid), TeamView)> = Vec::new();
    for r in rows {
        let id = r.team_id;
        if teams.last().is_none_or(|(_, t)| t.id != id) {
            let view = TeamView {
                id,
                name: r.name,
                members: Vec::new(),
            };
            teams.push(((r.created_at, id), view));
        }
        if let (Some(user_id), Some(team_role)) = (r.user_id, r.team_role) {
            if let Some((_, t)) = teams.last_mut() {
                t.members.push(TeamMemberView { user_id, team_role });
            }
        }
    }
    Ok(Json(Page::keyed(teams, &paging)))
}

/// `PUT .../members/{user}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMemberRequest {
    /// `admin` or `member`.
    pub team_role: String,
}

/// Add an organisation member to a team, or change their team role.
#[utoipa::path(put, path = "/v1/orgs/{org}/teams/{team}/members/{user}", tag = "organizations",
    request_body = TeamMemberRequest,
    responses((status = 200, body = TeamMemberView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn put_member(
    State(state): State<AppState>,
    Path((org, team, user)): Path<(Uuid, Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<TeamMemberRequest>,
) -> Result<Committed<TeamMemberView>, ApiError> {
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::add_team_member(o, session.user_id, team, user, &body.team_role)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(TeamMemberView {
            user_id: user,
            team_role: body.team_role.clone(),
        }),
    })
}

/// Remove a member from a team.
#[utoipa::path(delete, path = "/v1/orgs/{org}/teams/{team}/members/{user}", tag = "organizations",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_team_member(
    State(state): State<AppState>,
    Path((org, team, user)): Path<(Uuid, Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::remove_team_member(o, session.user_id, team, user)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}
