//! The organisation: create one, its onboarding lane (developer terms,
//! sandbox, production review and its four steps), and the terms gate.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::access::next_step;
use super::view::{
    again, done, form_problems, page, then, to_created, Checked, Form, Frame, PageError, Problems,
    Section, Visitor,
};
use crate::authorize::OrgMember;
use crate::command::RequestMeta;
use crate::extract::{ApiJson, Path};
use crate::routes::{environments, orgs};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/org_new.html")]
struct NewOrgPage {
    frame: Frame,
    name: String,
    slug: String,
    problems: Problems,
}

/// The new-organisation form.
pub async fn new_page(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let frame = visitor
        .frame(&state, "Create an organisation", Section::Access, None)
        .await?;
    page(&NewOrgPage {
        frame,
        name: String::new(),
        slug: String::new(),
        problems: Problems::default(),
    })
}

/// What the new-organisation form sends.
#[derive(Deserialize)]
pub struct NewOrg {
    name: String,
    slug: String,
}

/// Creates the organisation, the visitor its owner.
pub async fn create(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Form(f): Form<NewOrg>,
) -> Response {
    let (name, slug) = (f.name.clone(), f.slug.clone());
    match orgs::create_org(
        State(state.clone()),
        meta,
        visitor.session,
        ApiJson(orgs::CreateOrgRequest {
            slug: f.slug,
            name: f.name,
        }),
    )
    .await
    {
        Ok(c) => to_created(c, |created| {
            let id = created.id;
            format!("/orgs/{id}")
        }),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => again(
                status,
                async {
                    let frame = visitor
                        .frame(&state, "Create an organisation", Section::Access, None)
                        .await?;
                    page(&NewOrgPage {
                        frame,
                        name,
                        slug,
                        problems,
                    })
                }
                .await,
            ),
            Err(e) => e.into_response(),
        },
    }
}

/// The switcher's choice.
#[derive(Deserialize)]
pub struct Switch {
    org: Uuid,
}

/// `/orgs/switch?org=`: the switcher's form, to the organisation's page.
pub async fn switch(Query(s): Query<Switch>) -> Redirect {
    Redirect::to(&format!("/orgs/{}", s.org))
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage {
    frame: Frame,
    org: Uuid,
    lane: environments::OnboardingView,
    next: super::access::NextStep,
}

/// The organisation's page: where it stands on its way to production.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
) -> Result<Response, PageError> {
    let axum::Json(lane) =
        environments::onboarding(State(state.clone()), Path(member.org), member).await?;
    let frame = visitor
        .frame(
            &state,
            "Organisation",
            Section::Organisation,
            Some(member.org),
        )
        .await?;
    page(&OrgPage {
        frame,
        org: member.org,
        next: next_step(&lane.next_step, Some(member.org)),
        lane,
    })
}

/// The lane's requests: sandbox access, then production access.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Sandbox access.
    Sandbox,
    /// Production access.
    Production,
}

/// What the lane's forms send.
#[derive(Deserialize)]
pub struct LaneForm {
    request: Request,
}

/// Requests sandbox or production access.
pub async fn request(
    State(state): State<AppState>,
    meta: RequestMeta,
    Checked(member): Checked<OrgMember>,
    Form(f): Form<LaneForm>,
) -> Response {
    let org = member.org;
    let result = match f.request {
        Request::Sandbox => {
            environments::request_sandbox(State(state), Path(org), meta, member.session).await
        }
        Request::Production => {
            environments::request_production(State(state), Path(org), meta, member.session).await
        }
    };
    then(result, &format!("/orgs/{org}"))
}

#[derive(Template)]
#[template(path = "console/terms.html")]
struct TermsPage {
    frame: Frame,
    org: Uuid,
    current: String,
    accepted: Option<String>,
    problems: Problems,
}

async fn terms_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    problems: Problems,
) -> Result<Response, PageError> {
    let axum::Json(current) = orgs::current_terms(State(state.clone())).await?;
    let accepted = visitor
        .me
        .memberships
        .iter()
        .find(|m| m.org_id == org)
        .and_then(|m| m.terms_version.clone());
    let frame = visitor
        .frame(state, "Developer terms", Section::Organisation, Some(org))
        .await?;
    page(&TermsPage {
        frame,
        org,
        current: current.version,
        accepted,
        problems,
    })
}

/// The developer terms: the version in force and whether this
/// organisation accepted it.
pub async fn terms(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
) -> Result<Response, PageError> {
    terms_page(&state, &visitor, member.org, Problems::default()).await
}

/// What the terms form sends.
#[derive(Deserialize)]
pub struct AcceptForm {
    version: String,
}

/// Accepts the terms version shown.
pub async fn accept_terms(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Form(f): Form<AcceptForm>,
) -> Response {
    let org = member.org;
    match orgs::accept_terms(
        State(state.clone()),
        Path(org),
        meta,
        member.session,
        ApiJson(orgs::AcceptTermsRequest { version: f.version }),
    )
    .await
    {
        Ok(c) => done(c.position, &format!("/orgs/{org}")),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                again(status, terms_page(&state, &visitor, org, problems).await)
            }
            Err(e) => e.into_response(),
        },
    }
}
