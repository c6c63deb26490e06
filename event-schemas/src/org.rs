//! The `org.*`, `member.*`, `invitation.*`, `terms.*`, `sandbox.*` and
//! `production.*` families: an organisation (workspace), its people and their
//! roles, and its way from public docs to production. Stream
//! `org-<org_id>`; slugs are reserved in `org_slug-<slug>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sealed::Sealed;

/// `org.created` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrgCreated {
    /// The organisation.
    pub org_id: Uuid,
    /// URL name, unique.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The creator, its first owner.
    pub owner: Uuid,
}

/// `org.slug_claimed` v1, in `org_slug-<slug>`: reserves a slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrgSlugClaimed {
    /// The organisation holding it.
    pub org_id: Uuid,
}

/// `member.added` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberAdded {
    /// The user.
    pub user_id: Uuid,
    /// Their role.
    pub role: String,
    /// The invitation that brought them, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<Uuid>,
}

/// `member.role_changed` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberRoleChanged {
    /// The user.
    pub user_id: Uuid,
    /// The role before.
    pub from: String,
    /// The role now.
    pub to: String,
}

/// `member.removed` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberRemoved {
    /// The user.
    pub user_id: Uuid,
}

/// `invitation.created` v1. The email is sealed under the invitation's own
/// key (its subject), and indexed by keyed hash for matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvitationCreated {
    /// The invitation.
    pub invitation_id: Uuid,
    /// Keyed hash of the invitee's normalised email.
    pub email_index: String,
    /// The invitee's email, sealed.
    pub email: Sealed,
    /// The role on acceptance.
    pub role: String,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
}

/// `invitation.accepted` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvitationAccepted {
    /// The invitation.
    pub invitation_id: Uuid,
    /// Who accepted it.
    pub user_id: Uuid,
}

/// `invitation.revoked` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvitationRevoked {
    /// The invitation.
    pub invitation_id: Uuid,
}

/// `terms.accepted` v1: the organisation accepted a version of the developer
/// terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TermsAccepted {
    /// The terms version.
    pub version: String,
    /// Who accepted on the organisation's behalf.
    pub user_id: Uuid,
}

/// `terms.published` v1, in the platform's `developer_terms` stream: staff
/// put a new version of the developer terms in force; every organisation
/// accepts it before its gated actions work again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TermsPublished {
    /// The new version.
    pub version: String,
    /// The staff member who published it.
    pub by: Uuid,
}

/// The stream of the platform's developer terms versions.
pub const TERMS_STREAM: &str = "developer_terms";

event_family! {
    /// The platform's developer terms versions.
    pub enum TermsEvent {
        /// `terms.published`
        Published(TermsPublished) = "terms.published",
    }
}

/// `sandbox.requested` v1: the organisation asked for sandbox access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SandboxRequested {
    /// Who asked.
    pub user_id: Uuid,
}

/// `sandbox.granted` v1: sandbox access with its linked (shadow test) tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SandboxGranted {
    /// The linked sandbox tenant.
    pub sandbox_tenant_id: Uuid,
    /// Who granted it: a staff member, or none for an automatic grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<Uuid>,
}

/// `production.requested` v1: a production review was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductionRequested {
    /// Who asked.
    pub user_id: Uuid,
}

/// `production.step_completed` v1: staff completed one review step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductionStepCompleted {
    /// `consent_review`, `billing_setup`, `integration_verification` or
    /// `audit_ready`.
    pub step: String,
    /// The staff member.
    pub by: Uuid,
}

/// `production.step_rejected` v1: staff rejected one review step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductionStepRejected {
    /// The step.
    pub step: String,
    /// The staff member.
    pub by: Uuid,
    /// Why, shown to the organisation.
    pub reason: String,
}

/// `sandbox.promoted` v1: every review step is complete; production granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SandboxPromoted {
    /// The staff member whose step completed the review.
    pub by: Uuid,
}

/// `plan.set` v1: staff set the organisation's plan and modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanSet {
    /// Plan name, e.g. `pro`.
    pub plan: String,
    /// Enabled modules, e.g. `platform.api`.
    pub modules: Vec<String>,
    /// Platform calls allowed per billing window.
    pub monthly_call_limit: u64,
    /// `trialing`, `active`, `past_due` or `canceled`.
    pub subscription_state: String,
    /// First instant of the current billing window.
    pub billing_window_start: DateTime<Utc>,
    /// First instant after it.
    pub billing_window_end: DateTime<Utc>,
    /// The staff member.
    pub by: Uuid,
}

/// `team.created` v1: a team inside the organisation (teams own apps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamCreated {
    /// The team.
    pub team_id: Uuid,
    /// Its name, unique in the organisation.
    pub name: String,
}

/// `team.member_added` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamMemberAdded {
    /// The team.
    pub team_id: Uuid,
    /// The organisation member.
    pub user_id: Uuid,
    /// `admin` (manages the team's apps) or `member` (views them).
    pub team_role: String,
}

/// `team.member_removed` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamMemberRemoved {
    /// The team.
    pub team_id: Uuid,
    /// The user.
    pub user_id: Uuid,
}

event_family! {
    /// Every event of these families.
    pub enum OrgEvent {
        /// `org.created`
        Created(OrgCreated) = "org.created",
        /// `org.slug_claimed`
        SlugClaimed(OrgSlugClaimed) = "org.slug_claimed",
        /// `member.added`
        MemberAdded(MemberAdded) = "member.added",
        /// `member.role_changed`
        MemberRoleChanged(MemberRoleChanged) = "member.role_changed",
        /// `member.removed`
        MemberRemoved(MemberRemoved) = "member.removed",
        /// `invitation.created`
        InvitationCreated(InvitationCreated) = "invitation.created",
        /// `invitation.accepted`
        InvitationAccepted(InvitationAccepted) = "invitation.accepted",
        /// `invitation.revoked`
        InvitationRevoked(InvitationRevoked) = "invitation.revoked",
        /// `terms.accepted`
        TermsAccepted(TermsAccepted) = "terms.accepted",
        /// `sandbox.requested`
        SandboxRequested(SandboxRequested) = "sandbox.requested",
        /// `sandbox.granted`
        SandboxGranted(SandboxGranted) = "sandbox.granted",
        /// `production.requested`
        ProductionRequested(ProductionRequested) = "production.requested",
        /// `production.step_completed`
        ProductionStepCompleted(ProductionStepCompleted) = "production.step_completed",
        /// `production.step_rejected`
        ProductionStepRejected(ProductionStepRejected) = "production.step_rejected",
        /// `sandbox.promoted`
        SandboxPromoted(SandboxPromoted) = "sandbox.promoted",
        /// `plan.set`
        PlanSet(PlanSet) = "plan.set",
        /// `team.created`
        TeamCreated(TeamCreated) = "team.created",
        /// `team.member_added`
        TeamMemberAdded(TeamMemberAdded) = "team.member_added",
        /// `team.member_removed`
        TeamMemberRemoved(TeamMemberRemoved) = "team.member_removed",
    }
}
