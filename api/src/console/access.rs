//! Getting in: sign up, sign in and out, the mailed links (verify an
//! address, reset a password), and the account-access page, which shows
//! where the visitor stands and the exact next step as a link to where it
//! is taken (seed 004).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::security::{set_cookie, SESSION_COOKIE};
use super::view::{
    again, done, form_failed, form_problems, page, Form, Frame, PageError, Problems, PublicForm,
    Section, Visitor,
};
use crate::command::RequestMeta;
use crate::extract::{ApiJson, Session};
use crate::routes::accounts::{passwords, sessions, users, verification};
use crate::state::AppState;

/// `/`: the access page for someone signed in, else the sign-in page.
pub async fn home(session: Result<Session, crate::error::ApiError>) -> Redirect {
    match session {
        Ok(_) => Redirect::to("/access"),
        Err(_) => Redirect::to("/sign-in"),
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    frame: Frame,
    email: String,
    problems: Problems,
    notice: Option<&'static str>,
    next: String,
}

/// What a sign-in or sign-up form sends.
#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    #[serde(default)]
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

crate::redacted_debug!(Credentials);

/// A notice shown above the sign-in form.
#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    reset: bool,
    /// The console page to return to after signing in.
    #[serde(default)]
    next: String,
}

/// `next` if it is one of this console's own pages (a path, not another
/// site: `//evil.example` and `/\evil.example` are refused), else the
/// access page.
pub fn safe_next(next: &str) -> &str {
    let own = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if own {
        next
    } else {
        "/access"
    }
}

/// The sign-in form.
pub async fn sign_in_page(Query(q): Query<SignInQuery>) -> Result<Response, PageError> {
    page(&SignInPage {
        frame: Frame::public("Sign in"),
        email: String::new(),
        problems: Problems::default(),
        notice: q
            .reset
            .then_some("Your password was changed: sign in with the new one."),
        next: safe_next(&q.next).to_owned(),
    })
}

/// Signs in: the session's token goes into the session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    PublicForm(c): PublicForm<Credentials>,
) -> Response {
    let email = c.email.clone();
    let next = safe_next(&c.next).to_owned();
    match start_session(&state, meta, c.email, c.password, &next).await {
        Ok(res) => res,
        Err(e) => form_failed(e, |problems| {
            page(&SignInPage {
                frame: Frame::public("Sign in"),
                email,
                problems,
                notice: None,
                next,
            })
        }),
    }
}

async fn start_session(
    state: &AppState,
    meta: RequestMeta,
    email: String,
    password: String,
    next: &str,
) -> Result<Response, crate::error::ApiError> {
    let created = sessions::sign_in(
        State(state.clone()),
        meta,
        ApiJson(sessions::SignInRequest { email, password }),
    )
    .await?;
    let body = created.body.expect("a new session has a body");
    let mut res = done(created.position, safe_next(next));
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, Some(&body.token)),
    );
    Ok(res)
}

#[derive(Template)]
#[template(path = "console/sign_up.html")]
struct SignUpPage {
    frame: Frame,
    email: String,
    name: String,
    problems: Problems,
    next: String,
}

/// The sign-up form.
pub async fn sign_up_page(Query(q): Query<SignInQuery>) -> Result<Response, PageError> {
    page(&SignUpPage {
        frame: Frame::public("Create an account"),
        email: String::new(),
        name: String::new(),
        problems: Problems::default(),
        next: safe_next(&q.next).to_owned(),
    })
}

/// Creates the account (a verification link is mailed) and signs in.
pub async fn sign_up(
    State(state): State<AppState>,
    meta: RequestMeta,
    PublicForm(c): PublicForm<Credentials>,
) -> Response {
    let (email, name) = (c.email.clone(), c.name.clone());
    let next = safe_next(&c.next).to_owned();
    let result = async {
        // The answer (the account, and what the idempotency layer would
        // seal it for) is not shown: the next page is the access page.
        let _created = users::sign_up(
            State(state.clone()),
            meta.clone(),
            ApiJson(users::SignUpRequest {
                email: c.email.clone(),
                name: c.name,
                password: c.password.clone(),
            }),
        )
        .await?;
        start_session(&state, meta, c.email, c.password, &next).await
    }
    .await;
    match result {
        Ok(res) => res,
        Err(e) => form_failed(e, |problems| {
            page(&SignUpPage {
                frame: Frame::public("Create an account"),
                email,
                name,
                problems,
                next,
            })
        }),
    }
}

/// Ends the session and clears its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Result<Session, crate::error::ApiError>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    if let Ok(session) = session {
        if let Err(e) = sessions::sign_out(State(state), meta, session).await {
            return PageError(e).into_response();
        }
    }
    let mut res = Redirect::to("/sign-in").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, None));
    res
}

/// The `token` of a mailed link.
#[derive(Deserialize)]
pub struct LinkToken {
    #[serde(default)]
    token: String,
}

impl LinkToken {
    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

crate::redacted_debug!(LinkToken);

#[derive(Template)]
#[template(path = "console/verify_email.html")]
struct VerifyPage {
    frame: Frame,
    token: String,
    verified: bool,
    problems: Problems,
    resent: bool,
}

/// The mailed verification link: a button that proves the address (a
/// link's GET changes nothing, so a mail scanner opening it uses no token).
pub async fn verify_email_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(t): Query<LinkToken>,
) -> Result<Response, PageError> {
    let frame = visitor
        .frame(&state, "Verify your email", Section::Access, None)
        .await?;
    page(&VerifyPage {
        frame,
        token: t.token,
        verified: visitor.me.user.email_verified,
        problems: Problems::default(),
        resent: false,
    })
}

/// What the verification form sends.
#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    resend: bool,
}

crate::redacted_debug!(VerifyForm);

/// Proves the address with the link's token, or mails a new link.
pub async fn verify_email(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Form(f): Form<VerifyForm>,
) -> Response {
    if f.resend {
        return match verification::resend(State(state.clone()), visitor.session).await {
            Ok(_) => match visitor
                .frame(&state, "Verify your email", Section::Access, None)
                .await
            {
                Ok(frame) => page(&VerifyPage {
                    frame,
                    token: String::new(),
                    verified: false,
                    problems: Problems::default(),
                    resent: true,
                })
                .unwrap_or_else(IntoResponse::into_response),
                Err(e) => PageError(e).into_response(),
            },
            Err(e) => PageError(e).into_response(),
        };
    }
    let token = f.token.clone();
    match verification::verify_email(
        State(state.clone()),
        meta,
        visitor.session,
        ApiJson(verification::TokenRequest { token: f.token }),
    )
    .await
    {
        Ok(committed) => done(committed.position, "/access"),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => again(
                status,
                async {
                    let frame = visitor
                        .frame(&state, "Verify your email", Section::Access, None)
                        .await?;
                    page(&VerifyPage {
                        frame,
                        token,
                        verified: false,
                        problems,
                        resent: false,
                    })
                }
                .await,
            ),
            Err(e) => e.into_response(),
        },
    }
}

#[derive(Template)]
#[template(path = "console/reset_password.html")]
struct ResetPage {
    frame: Frame,
    token: String,
    sent: bool,
    problems: Problems,
}

/// Asks for a reset link, or, from the mailed link, for the new password.
pub async fn reset_page(Query(t): Query<LinkToken>) -> Result<Response, PageError> {
    page(&ResetPage {
        frame: Frame::public("Reset your password"),
        token: t.token,
        sent: false,
        problems: Problems::default(),
    })
}

/// What the reset forms send.
#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

crate::redacted_debug!(ResetForm);

/// Mails a reset link, or sets the new password with the link's token.
pub async fn reset(
    State(state): State<AppState>,
    meta: RequestMeta,
    PublicForm(f): PublicForm<ResetForm>,
) -> Response {
    let token = f.token.clone();
    let result = if f.token.is_empty() {
        passwords::request_reset(
            State(state),
            ApiJson(passwords::ResetRequest { email: f.email }),
        )
        .await
        .map(|_| {
            page(&ResetPage {
                frame: Frame::public("Reset your password"),
                token: String::new(),
                sent: true,
                problems: Problems::default(),
            })
            .unwrap_or_else(IntoResponse::into_response)
        })
    } else {
        passwords::confirm_reset(
            State(state),
            meta,
            ApiJson(passwords::ConfirmReset {
                token: f.token,
                new_password: f.new_password,
            }),
        )
        .await
        .map(|c| done(c.position, "/sign-in?reset=true"))
    };
    result.unwrap_or_else(|e| {
        form_failed(e, |problems| {
            page(&ResetPage {
                frame: Frame::public("Reset your password"),
                token,
                sent: false,
                problems,
            })
        })
    })
}

/// One stage of the first-run lane, as the access page lists it.
pub struct Stage {
    /// What is done at this stage.
    pub label: &'static str,
    /// `done`, `current` or `ahead`.
    pub state: &'static str,
}

/// The next step as a link: what to do, and where.
pub struct NextStep {
    /// What to do.
    pub label: String,
    /// Where it is done.
    pub href: String,
    /// Whether the platform's staff, not the visitor, take it.
    pub waiting: bool,
}

/// The lane from sign-up to production, in order, by the next steps the
/// API names (`/v1/me`'s `next_step`).
const LANE: &[(&str, &[&str])] = &[
    (
        "Create your account and verify your email",
        &["verify_email"],
    ),
    (
        "Create or join an organisation",
        &["attach_to_organization"],
    ),
    ("Accept the developer terms", &["accept_developer_terms"]),
    (
        "Request sandbox access",
        &["request_sandbox", "await_sandbox_grant"],
    ),
    ("Issue the first key", &["issue_first_key"]),
    ("Make a call and review usage", &["review_usage"]),
    ("Connect a webhook", &["connect_webhook"]),
    ("Request production access", &["request_production"]),
    (
        "Production review: consent, billing, integration verification, audit-ready checks",
        &domain::orgs::REVIEW_STEPS,
    ),
    ("Production", &["production_granted"]),
];

/// The lane with `next` marked current.
pub fn lane(next: &str) -> Vec<Stage> {
    let at = LANE
        .iter()
        .position(|(_, steps)| steps.contains(&next))
        .unwrap_or(LANE.len() - 1);
    LANE.iter()
        .enumerate()
        .map(|(i, (label, _))| Stage {
            label,
            state: match i.cmp(&at) {
                std::cmp::Ordering::Less => "done",
                std::cmp::Ordering::Equal if next == "production_granted" => "done",
                std::cmp::Ordering::Equal => "current",
                std::cmp::Ordering::Greater => "ahead",
            },
        })
        .collect()
}

/// Where the next step `step` of `org` is taken.
pub fn next_step(step: &str, org: Option<Uuid>) -> NextStep {
    let at = |path: &str| match org {
        Some(o) => format!("/orgs/{o}{path}"),
        None => "/orgs/new".to_owned(),
    };
    let (label, href, waiting) = match step {
        "verify_email" => (
            "Verify your email address".to_owned(),
            "/verify-email".to_owned(),
            false,
        ),
        "attach_to_organization" => (
            "Create an organisation, or accept the invitation mailed to you".to_owned(),
            "/orgs/new".to_owned(),
            false,
        ),
        "accept_developer_terms" => ("Accept the developer terms".to_owned(), at("/terms"), false),
        "request_sandbox" => ("Request sandbox access".to_owned(), at(""), false),
        "await_sandbox_grant" => (
            "Wait for platform staff to grant sandbox access".to_owned(),
            at(""),
            true,
        ),
        "issue_first_key" => (
            "Issue the first key for an app".to_owned(),
            at("/settings/developers/keys"),
            false,
        ),
        "review_usage" => (
            "Make a call with the key, then review usage".to_owned(),
            at("/settings/developers/usage"),
            false,
        ),
        "connect_webhook" => (
            "Connect a webhook endpoint".to_owned(),
            at("/settings/developers/webhooks"),
            false,
        ),
        "request_production" => ("Request production access".to_owned(), at(""), false),
        "production_granted" => ("Production access is granted".to_owned(), at(""), false),
        other => (
            format!(
                "Platform staff complete the review step {}",
                other.replace('_', " ")
            ),
            at(""),
            true,
        ),
    };
    NextStep {
        label,
        href,
        waiting,
    }
}

#[derive(Template)]
#[template(path = "console/access.html")]
struct AccessPage {
    frame: Frame,
    me: users::MeView,
    next: NextStep,
    lane: Vec<Stage>,
    environment: &'static str,
}

/// The account-access page.
pub async fn access(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let org = visitor.me.memberships.first().map(|m| m.org_id);
    let frame = visitor
        .frame(&state, "Account access", Section::Access, org)
        .await?;
    let step = visitor.me.access.next_step.clone();
    let environment = match visitor.me.access.state {
        "sandbox" => "Sandbox: test keys and the shadow test tenant",
        "production" => "Production: live credentials",
        "production_review" => "Sandbox, with production in review",
        _ => "Public docs only: no sandbox or production access yet",
    };
    page(&AccessPage {
        frame,
        next: next_step(&step, org),
        lane: lane(&step),
        me: visitor.me,
        environment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_consoles_own_pages_are_returned_to() {
        assert_eq!(
            safe_next("/invitations/accept?token=x"),
            "/invitations/accept?token=x"
        );
        for other in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_next(other), "/access", "{other:?}");
        }
    }

    #[test]
    fn every_next_step_the_api_names_has_a_stage_of_the_lane() {
        for step in [
            "verify_email",
            "attach_to_organization",
            "accept_developer_terms",
            "request_sandbox",
            "await_sandbox_grant",
            "issue_first_key",
            "review_usage",
            "connect_webhook",
            "request_production",
            "production_granted",
        ] {
            let stages = lane(step);
            assert!(
                stages.iter().any(|s| s.state == "current") || step == "production_granted",
                "{step}"
            );
        }
        assert_eq!(lane("verify_email")[0].state, "current");
        assert_eq!(lane("issue_first_key")[3].state, "done");
    }
}
