//! What an organisation command can be refused for.

#[allow(unused_imports)]
use super::*;

/// Why an organisation command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    /// Fields are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The organisation does not exist, or the caller is not in it.
    #[error("no such organization")]
    NotFound,
    /// The caller is a member without the permission.
    #[error("your role lacks the permission {}", .0.as_str())]
    Forbidden(Permission),
    /// No such member.
    #[error("no such member")]
    NoSuchMember,
    /// No such invitation.
    #[error("no such invitation")]
    NoSuchInvitation,
    /// Only owners grant, change or remove the owner role.
    #[error("only owners can grant, change or remove the owner role")]
    OnlyOwnersManageOwners,
    /// The last owner cannot leave or be demoted.
    #[error("the last owner can neither leave nor be demoted")]
    LastOwner,
    /// The invitation was used or revoked.
    #[error("this invitation has already been used or revoked")]
    InvitationNotPending,
    /// The invitation expired.
    #[error("this invitation has expired")]
    InvitationExpired,
    /// The invitation is for another email address.
    #[error("this invitation is for another email address")]
    InvitationForAnotherEmail,
    /// Developer terms must be accepted first; names the next step.
    #[error("accept the developer terms first (next step: accept_developer_terms)")]
    TermsNotAccepted,
    /// Sandbox access was already requested or granted.
    #[error("sandbox access has already been requested")]
    SandboxAlreadyRequested,
    /// There is no sandbox request to grant.
    #[error("no sandbox request is waiting")]
    NoSandboxRequest,
    /// Production needs sandbox access first.
    #[error("request sandbox access first (next step: request_sandbox)")]
    SandboxRequired,
    /// A production review is already open or done.
    #[error("a production review is already open or complete")]
    ProductionAlreadyRequested,
    /// No production review is open.
    #[error("no production review is open")]
    NoProductionReview,
    /// Not a review step.
    #[error("no such review step")]
    NoSuchStep,
    /// A team with this name exists.
    #[error("a team with this name already exists")]
    TeamNameTaken,
    /// No such team.
    #[error("no such team")]
    NoSuchTeam,
    /// The user is already a member.
    #[error("already a member of this organization")]
    AlreadyMember,
    /// This terms version was already in force once.
    #[error("this developer terms version has already been published")]
    TermsVersionUsed,
    /// The slug is taken.
    #[error("an organization with this slug already exists")]
    SlugTaken,
}
