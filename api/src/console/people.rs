//! An organisation's people: members (name, email, role; change a role,
//! remove someone), invitations (invite by email and role, the pending
//! ones, revoke), teams, and the mailed invitation link, accepted by the
//! signed-in account it names.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::roles::Role;
use serde::Deserialize;
use uuid::Uuid;

use super::view::{
    done, form_again, page, then, Checked, Form, Frame, PageError, Problems, Section, Visitor,
};
use crate::authorize::OrgMember;
use crate::command::RequestMeta;
use crate::extract::{ApiJson, Path};
use crate::page::{Page, Paging};
use crate::routes::{orgs, teams};
use crate::state::AppState;

/// Every role, for the pickers.
fn roles() -> Vec<&'static str> {
    Role::ALL.iter().map(|r| r.as_str()).collect()
}

#[derive(Template)]
#[template(path = "console/people.html")]
struct PeoplePage {
    frame: Frame,
    org: Uuid,
    me: Uuid,
    members: Page<orgs::MemberView>,
    invitations: Option<Page<orgs::PendingInvitationView>>,
    teams: Page<teams::TeamView>,
    roles: Vec<&'static str>,
    invite: InviteForm,
    problems: Problems,
}

/// What the invitation form sends.
#[derive(Deserialize, Default, Clone)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn people_page(
    state: &AppState,
    visitor: &Visitor,
    member: OrgMember,
    paging: Paging<(DateTime<Utc>, Uuid)>,
    invite: InviteForm,
    problems: Problems,
) -> Result<Response, PageError> {
    let org = member.org;
    let axum::Json(members) =
        orgs::list_members(State(state.clone()), Path(org), member, visitor.min, paging).await?;
    let first = || Paging::first(crate::page::MAX_LIMIT);
    // Who may see pending invitations is the API's rule: without the
    // permission the section is left out, not failed.
    let invitations =
        match orgs::list_invitations(State(state.clone()), Path(org), member, first()).await {
            Ok(axum::Json(page)) => Some(page),
            Err(crate::error::ApiError::Forbidden { .. }) => None,
            Err(e) => return Err(e.into()),
        };
    let axum::Json(teams) =
        teams::list_teams(State(state.clone()), Path(org), member, first()).await?;
    let frame = visitor
        .frame(state, "People", Section::People, Some(org))
        .await?;
    page(&PeoplePage {
        frame,
        org,
        me: visitor.session.user_id,
        members,
        invitations,
        teams,
        roles: roles(),
        invite,
        problems,
    })
}

/// The people page.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Checked(paging): Checked<Paging<(DateTime<Utc>, Uuid)>>,
) -> Result<Response, PageError> {
    people_page(
        &state,
        &visitor,
        member,
        paging,
        InviteForm::default(),
        Problems::default(),
    )
    .await
}

fn first_page() -> Paging<(DateTime<Utc>, Uuid)> {
    Paging::first(crate::page::DEFAULT_LIMIT)
}

/// Invites someone by email with a role; the link is mailed.
pub async fn invite(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Form(f): Form<InviteForm>,
) -> Response {
    let org = member.org;
    let body = orgs::InviteRequest {
        email: f.email.clone(),
        role: f.role.clone(),
    };
    match orgs::invite(
        State(state.clone()),
        Path(org),
        meta,
        member.session,
        ApiJson(body),
    )
    .await
    {
        Ok(c) => done(c.position, &format!("/orgs/{org}/people")),
        Err(e) => {
            form_again(e, |problems| {
                people_page(&state, &visitor, member, first_page(), f, problems)
            })
            .await
        }
    }
}

/// Revokes a pending invitation.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, invitation)): Path<(Uuid, Uuid)>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    then(
        orgs::revoke_invitation(State(state), Path((org, invitation)), meta, visitor.session).await,
        &format!("/orgs/{org}/people"),
    )
}

/// What the role form sends.
#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

/// Changes a member's role.
pub async fn change_role(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, user)): Path<(Uuid, Uuid)>,
    Form(f): Form<RoleForm>,
) -> Response {
    let body = orgs::ChangeRoleRequest { role: f.role };
    then(
        orgs::change_role(
            State(state),
            Path((org, user)),
            meta,
            visitor.session,
            ApiJson(body),
        )
        .await,
        &format!("/orgs/{org}/people"),
    )
}

/// Removes a member from the organisation.
pub async fn remove(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, user)): Path<(Uuid, Uuid)>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    then(
        orgs::remove_member(State(state), Path((org, user)), meta, visitor.session).await,
        &format!("/orgs/{org}/people"),
    )
}

/// What the team form sends.
#[derive(Deserialize)]
pub struct TeamForm {
    name: String,
}

/// Creates a team.
pub async fn create_team(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path(org): Path<Uuid>,
    Form(f): Form<TeamForm>,
) -> Response {
    let body = teams::CreateTeamRequest { name: f.name };
    then(
        teams::create_team(
            State(state),
            Path(org),
            meta,
            visitor.session,
            ApiJson(body),
        )
        .await,
        &format!("/orgs/{org}/people"),
    )
}

#[derive(Template)]
#[template(path = "console/invitation.html")]
struct InvitationPage {
    frame: Frame,
    token: String,
}

/// The link an invitation mails: a button that accepts it for the
/// signed-in account (signed out, the sign-in page comes first).
pub async fn invitation_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(t): Query<super::access::LinkToken>,
) -> Result<Response, PageError> {
    let frame = visitor
        .frame(&state, "Join an organisation", Section::Access, None)
        .await?;
    page(&InvitationPage {
        frame,
        token: t.token().to_owned(),
    })
}

/// What the acceptance form sends.
#[derive(Deserialize)]
pub struct AcceptForm {
    token: String,
}

crate::redacted_debug!(AcceptForm);

/// Accepts the invitation; its organisation's page is next.
pub async fn accept(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Form(f): Form<AcceptForm>,
) -> Response {
    let body = crate::routes::accounts::verification::TokenRequest { token: f.token };
    then(
        orgs::accept_invitation_with_token(
            State(state),
            visitor.min,
            meta,
            visitor.session,
            ApiJson(body),
        )
        .await,
        "/access",
    )
}
