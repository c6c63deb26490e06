//! What every console page shares: the frame around it (who is signed in,
//! their organisations, where they are), errors shown as pages or on the
//! fields they concern, and forms checked for their token.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::security::{form_token, session_token};
use crate::error::{ApiError, Problem};
use crate::extract::{MinPosition, Session};
use crate::routes::accounts::users::{me, MeView};
use crate::state::AppState;
use crate::POSITION_HEADER;

/// Where in the console a page is; the navigation marks it current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Signed out: sign in, sign up, reset.
    Public,
    /// The account-access page.
    Access,
    /// An organisation's lane, terms and review.
    Organisation,
    /// An organisation's members, invitations and teams.
    People,
    /// Settings > Developers.
    Developers,
    /// The developer portal: apps, versions, security, products.
    Portal,
    /// Platform staff's queue, reports and operations.
    Staff,
    /// The audit history, exports, checkpoints, "as of".
    Compliance,
}

/// An organisation in the switcher.
#[derive(Debug, Clone)]
pub struct OrgLink {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The member's role there.
    pub role: String,
}

/// The frame of a page: its title, the visitor, their organisations, the
/// current one, and the form token every form carries.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The page's title.
    pub title: String,
    /// Which navigation entry is current.
    pub section: Section,
    /// The signed-in visitor's name, if any.
    pub user: Option<String>,
    /// The visitor's organisations.
    pub orgs: Vec<OrgLink>,
    /// The organisation the page is about.
    pub org: Option<OrgLink>,
    /// Whether that organisation's plan lacks the Developers workspace
    /// (the navigation shows the Pro badge).
    pub workspace_locked: bool,
    /// The session's form token.
    pub csrf: String,
    /// Whether the visitor is platform staff (the navigation shows Staff).
    pub staff: bool,
}

impl Frame {
    /// The frame of a page for someone signed out.
    pub fn public(title: &str) -> Self {
        Frame {
            title: title.to_owned(),
            section: Section::Public,
            user: None,
            orgs: Vec::new(),
            org: None,
            workspace_locked: false,
            csrf: String::new(),
            staff: false,
        }
    }

    /// Whether `s` is the current section (for `aria-current`).
    pub fn is(&self, s: Section) -> bool {
        self.section == s
    }
}

/// A signed-in visitor: their session, what `/v1/me` says of them, and
/// their form token. Signed out, a page answers with the sign-in page.
pub struct Visitor {
    /// The session.
    pub session: Session,
    /// The visitor as the API shows them to themselves.
    pub me: MeView,
    /// The session's form token.
    pub csrf: String,
    /// The position this browser last wrote, which every read waits for.
    pub min: MinPosition,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let csrf = session_token(&parts.headers).map(form_token);
        let session = Session::from_request_parts(parts, state).await?;
        let min = MinPosition::from_request_parts(parts, state).await?;
        let axum::Json(me) = me(axum::extract::State(state.clone()), min, session).await?;
        Ok(Visitor {
            session,
            me,
            csrf: csrf.unwrap_or_default(),
            min,
        })
    }
}

impl Visitor {
    /// The frame of a page in `section`, about `org` when given.
    pub async fn frame(
        &self,
        state: &AppState,
        title: &str,
        section: Section,
        org: Option<Uuid>,
    ) -> Result<Frame, ApiError> {
        let orgs: Vec<OrgLink> = self
            .me
            .memberships
            .iter()
            .map(|m| OrgLink {
                id: m.org_id,
                name: m.name.clone(),
                role: m.role.clone(),
            })
            .collect();
        let current = org.and_then(|id| orgs.iter().find(|o| o.id == id).cloned());
        let workspace_locked = match &current {
            Some(o) => !crate::authorize::workspace_unlocked(state, o.id).await?,
            None => false,
        };
        Ok(Frame {
            title: title.to_owned(),
            section,
            user: Some(self.me.user.name.clone()),
            orgs,
            org: current,
            workspace_locked,
            csrf: self.csrf.clone(),
            staff: crate::extract::is_staff(state, self.session.user_id).await?,
        })
    }
}

/// One of the API's extractors (a member of the path's organisation, a
/// page request) whose refusal is shown as a page.
pub struct Checked<T>(pub T);

impl<T> FromRequestParts<AppState> for Checked<T>
where
    T: FromRequestParts<AppState, Rejection = ApiError>,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Ok(Checked(T::from_request_parts(parts, state).await?))
    }
}

/// A failure shown as a page: the problem's title and detail, or the
/// sign-in page for someone signed out.
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError(ApiError::internal(e))
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    frame: Frame,
    problem: &'a Problem,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self.0, ApiError::Unauthenticated) {
            // The cookie no longer names a live session. The layer, which
            // knows the page asked for, adds it as `next`.
            let mut res = Redirect::to("/sign-in").into_response();
            res.headers_mut().insert(
                super::security::SIGN_IN_FIRST,
                HeaderValue::from_static("1"),
            );
            res.headers_mut().append(
                header::SET_COOKIE,
                super::security::set_cookie(super::security::SESSION_COOKIE, None),
            );
            return res;
        }
        let status = self.0.status_code();
        let problem = self.0.into_problem();
        let mut res = page_with_status(
            status,
            &ErrorPage {
                frame: Frame::public(problem.title),
                problem: &problem,
            },
        );
        // A position past the log (a restored database) must not lock this
        // browser out of every page: it is forgotten.
        if problem.code == "invalid-min-position" {
            res.headers_mut().append(
                header::SET_COOKIE,
                super::security::set_cookie(super::security::AT_COOKIE, None),
            );
        }
        res
    }
}

/// A page the console refuses to serve, with what to do instead.
pub fn refused(status: StatusCode, title: &'static str, detail: &str) -> Response {
    let problem = Problem {
        type_: String::new(),
        title,
        status: status.as_u16(),
        detail: detail.to_owned(),
        code: "",
        errors: Vec::new(),
        permission: None,
        module: None,
    };
    page_with_status(
        status,
        &ErrorPage {
            frame: Frame::public(title),
            problem: &problem,
        },
    )
}

/// A rendered page.
pub fn page(t: &impl Template) -> Result<Response, PageError> {
    Ok(Html(t.render()?).into_response())
}

fn page_with_status(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

/// After a command: to `to`, with the command's position, which the layer
/// keeps for the next page to wait for.
pub fn done(position: u64, to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.headers_mut()
        .insert(POSITION_HEADER, HeaderValue::from(position));
    res
}

/// A page shown in answer to a command (a secret revealed once): with the
/// command's position, like [`done`].
pub fn shown_after(position: u64, t: &impl Template) -> Result<Response, PageError> {
    Ok(at_position(page(t)?, position))
}

/// `res`, carrying a command's position for the layer to keep.
pub fn at_position(mut res: Response, position: u64) -> Response {
    res.headers_mut()
        .insert(POSITION_HEADER, HeaderValue::from(position));
    res
}

/// A form's problems: a summary and, by field name, what to fix.
#[derive(Debug, Default)]
pub struct Problems {
    /// The problem's title and detail, when there is one.
    pub summary: Option<(String, String)>,
    /// Field name (the JSON pointer's last segment) and what is wrong.
    pub fields: Vec<(String, String)>,
}

impl Problems {
    /// What is wrong with `field`, if anything.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, d)| d.as_str())
    }

    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.fields.is_empty()
    }
}

impl From<ApiError> for Problems {
    fn from(e: ApiError) -> Self {
        let p = e.into_problem();
        let fields = p
            .errors
            .into_iter()
            .map(|f| {
                let name = f.pointer.rsplit('/').next().unwrap_or_default().to_owned();
                (name, f.detail)
            })
            .collect();
        Problems {
            summary: Some((p.title.to_owned(), p.detail)),
            fields,
        }
    }
}

/// A failed form's problems and the status to answer them with, or, for
/// what no form can fix (signed out, not found, a fault), the failure page
/// itself.
pub fn form_problems(e: ApiError) -> Result<(StatusCode, Problems), PageError> {
    if matches!(
        e,
        ApiError::Unauthenticated | ApiError::NotFound | ApiError::Internal(_)
    ) {
        return Err(PageError(e));
    }
    Ok((e.status_code(), e.into()))
}

/// The form's page again, with its problems on their fields.
pub fn again(status: StatusCode, page: Result<Response, PageError>) -> Response {
    match page {
        Ok(mut res) => {
            *res.status_mut() = status;
            res
        }
        Err(e) => e.into_response(),
    }
}

/// A failed form's page again, rendered by `page` with the problems on
/// their fields, or the failure page for what no form can fix.
pub async fn form_again<F, Fut>(e: ApiError, page: F) -> Response
where
    F: FnOnce(Problems) -> Fut,
    Fut: std::future::Future<Output = Result<Response, PageError>>,
{
    match form_problems(e) {
        Ok((status, problems)) => again(status, page(problems).await),
        Err(e) => e.into_response(),
    }
}

/// After a command that created something: to the page `page_of` names
/// for it, with the command's position.
pub fn to_created<T>(
    c: crate::command::Committed<T>,
    page_of: impl FnOnce(&T) -> String,
) -> Response {
    match &c.body {
        Some(created) => done(c.position, &page_of(created)),
        None => PageError(ApiError::Internal(
            "a creation answered without a body".into(),
        ))
        .into_response(),
    }
}

/// After a command: to `to`, with its position; or its failure as a page.
pub fn then<T>(result: Result<crate::command::Committed<T>, ApiError>, to: &str) -> Response {
    match result {
        Ok(c) => done(c.position, to),
        Err(e) => PageError(e).into_response(),
    }
}

/// [`form_problems`] then [`again`], for a page rendered without waiting.
pub fn form_failed(
    e: ApiError,
    page: impl FnOnce(Problems) -> Result<Response, PageError>,
) -> Response {
    match form_problems(e) {
        Ok((status, problems)) => again(status, page(problems)),
        Err(e) => e.into_response(),
    }
}

/// A console form (`application/x-www-form-urlencoded`), its token checked
/// when the visitor is signed in.
pub struct Form<T>(pub T);

/// A form sent before there is a session (sign in, sign up, reset): no
/// form token, since a stale cookie must never lock anyone out of signing
/// in; the layer's cross-site check still applies.
pub struct PublicForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PublicForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Response> {
        let bytes = read_form(req).await.map_err(|r| *r)?;
        parse_form(&bytes).map(PublicForm).map_err(|r| *r)
    }
}

// The refusals are boxed: a `Response` is large for an `Err`.
async fn read_form(req: Request) -> Result<axum::body::Bytes, Box<Response>> {
    axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|_| {
            Box::new(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "Send less.",
            ))
        })
}

fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Response>> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        Box::new(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The form could not be read",
            &format!("{e}. Open the page again and resend it."),
        ))
    })
}

/// The field every console form carries its token in.
pub const TOKEN_FIELD: &str = "_form_token";

impl<T: DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Response> {
        let expected = session_token(req.headers()).map(form_token);
        let bytes = read_form(req).await.map_err(|r| *r)?;
        if let Some(expected) = expected {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
            let sent = pairs
                .iter()
                .find(|(k, _)| k == TOKEN_FIELD)
                .map(|(_, v)| v.as_bytes())
                .unwrap_or_default();
            use subtle::ConstantTimeEq;
            if !bool::from(sent.ct_eq(expected.as_bytes())) {
                return Err(refused(
                    StatusCode::FORBIDDEN,
                    "Form expired",
                    "This form belongs to another session. Open the page again and resend it.",
                ));
            }
        }
        parse_form(&bytes).map(Form).map_err(|r| *r)
    }
}
