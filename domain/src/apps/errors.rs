//! What an app command can be refused for.

#[allow(unused_imports)]
use super::*;

/// What an app command can be refused for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// A rule of the organisation (not a member, lacking a permission,
    /// terms not accepted).
    #[error(transparent)]
    Org(#[from] OrgError),
    /// Fields failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such app (or the caller may not know of it).
    #[error("no such app")]
    NotFound,
    /// The caller may view the app but not change it.
    #[error("you may view this app but not manage it (apps.manage, or admin of its team or app)")]
    ViewOnly,
    /// The app is deleted.
    #[error("this app has been deleted")]
    Deleted,
    /// The app is suspended.
    #[error("this app is suspended")]
    Suspended,
    /// Not suspended.
    #[error("this app is not suspended")]
    NotSuspended,
    /// A distribution request is already open.
    #[error("a distribution request is already waiting for staff")]
    DistributionPending,
    /// No such distribution request open.
    #[error("no distribution request is waiting")]
    NoDistributionRequest,
    /// No such version.
    #[error("no such version")]
    NoSuchVersion,
    /// The label is taken.
    #[error("a version with this label already exists")]
    VersionLabelTaken,
    /// Published versions never change.
    #[error("this version is published and can no longer change")]
    VersionPublished,
    /// Only published versions are installed.
    #[error("this version is a draft; publish it first")]
    VersionNotPublished,
    /// No such install link.
    #[error("no such install link")]
    NoSuchLink,
    /// The link expired.
    #[error("this install link has expired")]
    LinkExpired,
    /// The single-use link was used.
    #[error("this install link has already been used")]
    LinkUsed,
    /// The workspace may not install this private app.
    #[error("this app is private and your workspace is not on its install allowlist")]
    NotAllowlisted,
    /// Already installed at this version.
    #[error("this version is already installed in your workspace")]
    AlreadyInstalled,
    /// Not installed.
    #[error("this app is not installed in your workspace")]
    NotInstalled,
    /// The product is already requested or granted for this mode.
    #[error("this product is already requested or granted for this mode")]
    AccessAlreadyRequested,
    /// No such access request.
    #[error("no such product access request")]
    NoSuchAccessRequest,
    /// The request was already decided.
    #[error("this request has already been decided")]
    AccessDecided,
    /// No such product.
    #[error("no such product")]
    NoSuchProduct,
}
