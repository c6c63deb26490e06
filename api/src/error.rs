//! One error type for the whole API, rendered as RFC 9457
//! `application/problem+json` with a stable `type` and `code`. Client errors
//! carry public text; server errors are logged in full and answered with a
//! generic body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::accounts::AccountError;
use domain::{FieldError, Invalid};
use event_store::{AppendError, StoreError};
use projections::NotCaughtUp;
use serde::Serialize;

/// The base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://gatehouse.dev/problems/";

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Fields failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The body could not be read as the expected JSON.
    #[error("{detail}")]
    BadBody {
        /// 400, 413, 415 or 422.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The body is JSON of the wrong shape: a field of the wrong type,
    /// missing or unknown.
    #[error("{detail}")]
    InvalidBody {
        /// What serde found wrong.
        detail: String,
        /// The field, by JSON pointer.
        errors: Vec<FieldError>,
    },
    /// No valid credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong email or password, without saying which.
    #[error("the email or password is not correct")]
    InvalidCredentials,
    /// The resource does not exist (or the caller may not know it does).
    #[error("not found")]
    NotFound,
    /// The caller is known but may not do this.
    #[error("{detail}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Why.
        detail: String,
        /// The missing permission, when one permission is the reason.
        permission: Option<&'static str>,
    },
    /// The organisation's plan lacks the module this needs.
    #[error("this needs the {module} module, which the organization's plan does not include")]
    UpgradeRequired {
        /// The missing module.
        module: &'static str,
    },
    /// Too many failed attempts; retry after the given seconds.
    #[error("too many failed attempts; retry later")]
    TooManyRequests {
        /// Seconds until an attempt may succeed.
        retry_after: u64,
    },
    /// The method is not allowed on this route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with current state.
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What conflicts.
        detail: String,
    },
    /// What the request refers to existed but is gone for good.
    #[error("{detail}")]
    Gone {
        /// Stable code.
        code: &'static str,
        /// What is gone.
        detail: String,
    },
    /// A read model has not reached the requested position in time.
    #[error(transparent)]
    NotCaughtUp(#[from] NotCaughtUp),
    /// A dependency is down; retrying shortly is safe.
    #[error("service unavailable: {reason}")]
    Unavailable {
        /// What is unavailable, for the log.
        reason: &'static str,
        /// The cause, kept for the log.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This node is at capacity for the work asked (password hashing, say):
    /// nothing was done; retrying after the given seconds is safe.
    #[error("the server is busy; retry after {retry_after} s")]
    Busy {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Stored personal data failed its integrity check (tampered with or
    /// corrupted); logged as an error, never shown as an erasure.
    #[error("stored personal data failed its integrity check")]
    Unreadable(#[source] crate::vault::VaultError),
    /// A bug or an infrastructure failure; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the type.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Stable machine-readable code (the last segment of `type`).
    pub code: &'static str,
    /// Invalid fields, by JSON pointer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// The permission the caller's role lacks (403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<&'static str>,
    /// The module the plan lacks (402).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<&'static str>,
}

/// One invalid field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    /// JSON pointer into the request body.
    pub pointer: String,
    /// What is wrong.
    pub detail: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        ProblemField {
            pointer: e.pointer,
            detail: e.detail,
        }
    }
}

impl ApiError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadBody { status, .. } => *status,
            ApiError::InvalidBody { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::UpgradeRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::NotCaughtUp(_) | ApiError::Unavailable { .. } | ApiError::Busy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) | ApiError::Unreadable(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code and the title of this problem type.
    pub fn code_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Invalid(_) => ("invalid-input", "The request has invalid fields"),
            ApiError::BadBody { code, .. } => (code, "The request body cannot be read"),
            ApiError::InvalidBody { .. } => {
                ("invalid-body", "The request body has the wrong shape")
            }
            ApiError::Unauthenticated => ("unauthenticated", "Authentication is required"),
            ApiError::InvalidCredentials => {
                ("invalid-credentials", "The credentials are not correct")
            }
            ApiError::NotFound => ("not-found", "No such resource"),
            ApiError::Forbidden { code, .. } => (code, "Not allowed"),
            ApiError::UpgradeRequired { .. } => ("upgrade-required", "Upgrade required"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { code, .. } => {
                (code, "The request conflicts with the current state")
            }
            ApiError::Gone { code, .. } => (code, "Gone"),
            ApiError::NotCaughtUp(_) => {
                ("read-model-behind", "The read model has not caught up yet")
            }
            ApiError::Unavailable { .. } => ("unavailable", "The service is unavailable"),
            ApiError::Busy { .. } => ("busy", "The server is busy"),
            ApiError::Unreadable(_) => (
                "sealed-data-unreadable",
                "Stored personal data failed its integrity check",
            ),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// The status and problem code of one item of a bulk operation, where
    /// each item is answered on its own: `(200, None)` when it succeeded.
    pub fn outcome<T>(result: &Result<T, ApiError>) -> (u16, Option<String>) {
        match result {
            Ok(_) => (200, None),
            Err(e) => (e.status_code().as_u16(), Some(e.code_title().0.to_owned())),
        }
    }

    /// Wraps any error as internal.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// The body of a problem response for a rejected request body.
    pub fn bad_body(status: StatusCode, detail: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid-body",
            _ => "malformed-body",
        };
        ApiError::BadBody {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl ApiError {
    /// The problem document this error is shown as (internal causes are
    /// logged here, never shown): the JSON API renders it as
    /// problem+json, the console as a page or the errors of a form.
    pub fn into_problem(self) -> Problem {
        let status = self.status_code();
        let (code, title) = self.code_title();
        let detail = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %e, source = ?e.source(), "internal error");
                "an unexpected error occurred; it has been logged".to_owned()
            }
            ApiError::Unreadable(e) => {
                tracing::error!(error = %e, "sealed personal data does not open: tampered or corrupted");
                "stored personal data does not open under its key (tampered or corrupted); \
                 it has been logged"
                    .to_owned()
            }
            ApiError::Unavailable { reason, source } => {
                tracing::warn!(reason, error = %source, "unavailable");
                "a dependency is unavailable; retry shortly".to_owned()
            }
            ApiError::NotCaughtUp(n) => format!(
                "read model {} is at position {}, behind the requested {}; retry shortly",
                n.projection, n.position, n.wanted
            ),
            ApiError::Invalid(_) => "one or more fields are invalid; see errors".to_owned(),
            ApiError::NotFound => "no such resource".to_owned(),
            other => other.to_string(),
        };
        let permission = match &self {
            ApiError::Forbidden { permission, .. } => *permission,
            _ => None,
        };
        let module = match &self {
            ApiError::UpgradeRequired { module } => Some(*module),
            _ => None,
        };
        let errors = match self {
            ApiError::Invalid(Invalid(fields)) | ApiError::InvalidBody { errors: fields, .. } => {
                fields.into_iter().map(Into::into).collect()
            }
            _ => Vec::new(),
        };
        Problem {
            type_: format!("{PROBLEM_BASE}{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            errors,
            permission,
            module,
        }
    }

    /// Seconds a client should wait before retrying, if the error says.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after } | ApiError::Busy { retry_after } => {
                Some((*retry_after).max(1))
            }
            ApiError::NotCaughtUp(_) | ApiError::Unavailable { .. } => Some(1),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        // Headers by variant: how long to wait, and how to authenticate.
        let retry_after = self.retry_after();
        let authenticate = matches!(
            self,
            ApiError::Unauthenticated | ApiError::InvalidCredentials
        );
        let problem = self.into_problem();
        let mut res = problem_response(status, &problem);
        let headers = res.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds.to_string())
                    .expect("a decimal number is a valid header value"),
            );
        }
        if authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Renders a problem document.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(i) => ApiError::Invalid(i),
            AccountError::InvalidCredentials => ApiError::InvalidCredentials,
        }
    }
}

impl From<domain::orgs::OrgError> for ApiError {
    fn from(e: domain::orgs::OrgError) -> Self {
        use domain::orgs::OrgError as E;
        let conflict = |code| ApiError::Conflict {
            code,
            detail: e.to_string(),
        };
        match &e {
            E::Invalid(i) => ApiError::Invalid(i.clone()),
            E::NotFound | E::NoSuchMember | E::NoSuchInvitation | E::InvitationForAnotherEmail => {
                ApiError::NotFound
            }
            E::Forbidden(p) => ApiError::Forbidden {
                code: "permission-denied",
                detail: format!("your role lacks the permission {}", p.as_str()),
                permission: Some(p.as_str()),
            },
            E::OnlyOwnersManageOwners => ApiError::Forbidden {
                code: "owners-only",
                detail: e.to_string(),
                permission: None,
            },
            E::LastOwner => conflict("last-owner"),
            E::InvitationNotPending => conflict("invitation-used"),
            E::InvitationExpired => conflict("invitation-expired"),
            E::AlreadyMember => conflict("already-member"),
            E::SlugTaken => conflict("slug-taken"),
            E::TermsNotAccepted => ApiError::Forbidden {
                code: "terms-not-accepted",
                detail: e.to_string(),
                permission: None,
            },
            E::SandboxAlreadyRequested => conflict("sandbox-already-requested"),
            E::NoSandboxRequest => conflict("no-sandbox-request"),
            E::SandboxRequired => conflict("sandbox-required"),
            E::ProductionAlreadyRequested => conflict("production-already-requested"),
            E::NoProductionReview => conflict("no-production-review"),
            E::NoSuchStep | E::NoSuchTeam => ApiError::NotFound,
            E::TeamNameTaken => conflict("team-name-taken"),
            E::TermsVersionUsed => conflict("terms-version-used"),
        }
    }
}

impl From<domain::apps::AppError> for ApiError {
    fn from(e: domain::apps::AppError) -> Self {
        use domain::apps::AppError as E;
        let conflict = |code| ApiError::Conflict {
            code,
            detail: e.to_string(),
        };
        match &e {
            E::Org(o) => o.clone().into(),
            E::Invalid(i) => ApiError::Invalid(i.clone()),
            E::NotFound
            | E::NoSuchVersion
            | E::NoSuchLink
            | E::NoSuchAccessRequest
            | E::NoSuchProduct => ApiError::NotFound,
            E::ViewOnly => ApiError::Forbidden {
                code: "permission-denied",
                detail: e.to_string(),
                permission: Some(domain::roles::Permission::ManageApps.as_str()),
            },
            E::NotAllowlisted => ApiError::Forbidden {
                code: "not-allowlisted",
                detail: e.to_string(),
                permission: None,
            },
            E::Deleted => conflict("app-deleted"),
            E::Suspended => conflict("app-suspended"),
            E::NotSuspended => conflict("app-not-suspended"),
            E::DistributionPending => conflict("distribution-pending"),
            E::NoDistributionRequest => conflict("no-distribution-request"),
            E::VersionLabelTaken => conflict("version-label-taken"),
            E::VersionPublished => conflict("version-published"),
            E::VersionNotPublished => conflict("version-not-published"),
            E::LinkExpired => conflict("install-link-expired"),
            E::LinkUsed => conflict("install-link-used"),
            E::AlreadyInstalled => conflict("already-installed"),
            E::NotInstalled => ApiError::NotFound,
            E::AccessAlreadyRequested => conflict("product-already-requested"),
            E::AccessDecided => conflict("already-decided"),
        }
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict { .. } => ApiError::Conflict {
                code: "concurrent-modification",
                detail: "the resource changed while this request was handled; retry".into(),
            },
            AppendError::DuplicateEventId(_) => ApiError::Conflict {
                code: "duplicate-event",
                detail: "this request's events are already recorded by another request".into(),
            },
            // The append may or may not have committed; retrying is safe
            // (with an Idempotency-Key, the retry's events are the same).
            AppendError::Store(store) => store.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Postgres(pg) => pg.into(),
            StoreError::Pool(_) | StoreError::Closed | StoreError::Backend(_) => {
                ApiError::Unavailable {
                    reason: "the event store is unavailable",
                    source: Box::new(e),
                }
            }
            StoreError::Rewound(_) => ApiError::Unavailable {
                reason: "the log went backwards under this node; appends are refused",
                source: Box::new(e),
            },
            other => ApiError::internal(other),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        // No server error code: the connection failed (the database is
        // restarting, say), not the statement. Retrying is the remedy.
        if e.is_closed() || e.as_db_error().is_none() {
            ApiError::Unavailable {
                reason: "the database connection failed",
                source: Box::new(e),
            }
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::Unavailable {
            reason: "no database connection could be had",
            source: Box::new(e),
        }
    }
}

impl From<domain::keys::KeyError> for ApiError {
    fn from(e: domain::keys::KeyError) -> Self {
        use domain::keys::KeyError as E;
        let conflict = |code| ApiError::Conflict {
            code,
            detail: e.to_string(),
        };
        match &e {
            E::App(a) => a.clone().into(),
            E::Invalid(i) => ApiError::Invalid(i.clone()),
            E::NotFound => ApiError::NotFound,
            E::NotInProduction => conflict("not-in-production"),
            E::Revoked => conflict("key-revoked"),
            E::AlreadyRotated => conflict("key-rotated"),
            E::Expired => conflict("key-expired"),
        }
    }
}

impl From<domain::webhooks::WebhookError> for ApiError {
    fn from(e: domain::webhooks::WebhookError) -> Self {
        use domain::webhooks::WebhookError as E;
        match &e {
            E::App(a) => a.clone().into(),
            E::Invalid(i) => ApiError::Invalid(i.clone()),
            E::NotFound => ApiError::NotFound,
            E::NotInProduction => ApiError::Conflict {
                code: "not-in-production",
                detail: e.to_string(),
            },
        }
    }
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(e: crate::vault::VaultError) -> Self {
        match e {
            e @ crate::vault::VaultError::Tampered { .. } => ApiError::Unreadable(e),
            e => ApiError::internal(e),
        }
    }
}
