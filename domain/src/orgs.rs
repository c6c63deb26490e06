//! Organisations: creation, developer terms, invitations and members.
//!
//! State is folded from the organisation's events ([`Org::apply`]); each
//! command is a function of that state, the caller and `now`, returning the
//! events to append or the rule it breaks.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use event_schemas::org::{
    InvitationAccepted, InvitationCreated, InvitationRevoked, MemberAdded, MemberRemoved,
    MemberRoleChanged, OrgCreated, OrgEvent, PlanSet, ProductionRequested, ProductionStepCompleted,
    ProductionStepRejected, SandboxGranted, SandboxPromoted, SandboxRequested, TeamCreated,
    TeamMemberAdded, TeamMemberRemoved, TermsAccepted, TermsEvent, TermsPublished,
};
use event_schemas::sealed::Sealed;
use uuid::Uuid;

use crate::roles::{allows, Permission, Role};
use crate::validate::{Checks, Invalid};

/// The developer terms version in force until staff publish another
/// (`terms.published`).
pub const INITIAL_TERMS: &str = "2026-01";
/// How long an invitation can be accepted unless the deployment says
/// otherwise.
pub fn default_invitation_ttl() -> Duration {
    Duration::days(7)
}

/// An invitation's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Keyed hash of the invitee's email.
    pub email_index: String,
    /// Role on acceptance.
    pub role: Role,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// `pending`, `accepted` or `revoked`.
    pub status: InvitationStatus,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Can be accepted until it expires.
    Pending,
    /// Used (invitations are single-use).
    Accepted,
    /// Withdrawn.
    Revoked,
}

/// An organisation, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Org {
    /// Its id (nil before creation).
    pub id: Uuid,
    /// Whether `org.created` has happened.
    pub exists: bool,
    /// Members and their roles.
    pub members: BTreeMap<Uuid, Role>,
    /// Invitations by id.
    pub invitations: BTreeMap<Uuid, Invitation>,
    /// The accepted developer terms version.
    pub terms_version: Option<String>,
    /// Sandbox access.
    pub sandbox: Sandbox,
    /// The production review, once requested.
    pub production: Option<ProductionReview>,
    /// The plan staff set, if any.
    pub plan: Option<PlanSet>,
    /// Teams by id: name and members with their team roles.
    pub teams: BTreeMap<Uuid, Team>,
    /// The platform's developer terms in force, from its `developer_terms`
    /// stream (set by whoever loads the organisation); `None` means
    /// [`INITIAL_TERMS`].
    pub terms_in_force: Option<String>,
}

/// A team inside an organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Team {
    /// Its name.
    pub name: String,
    /// Members and their team roles (`admin` or `member`).
    pub members: BTreeMap<Uuid, String>,
}

/// Team roles.
pub const TEAM_ROLES: [&str; 2] = ["admin", "member"];

/// The module that opens the Developers workspace.
pub const PLATFORM_API: &str = "platform.api";

/// Subscription states a plan can be in.
pub const SUBSCRIPTION_STATES: [&str; 4] = ["trialing", "active", "past_due", "canceled"];

/// Where sandbox access stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sandbox {
    /// Public docs only.
    #[default]
    None,
    /// Asked for, awaiting staff.
    Requested,
    /// Granted, with the linked sandbox tenant.
    Granted(Uuid),
}

/// The four production review steps, in order.
pub const REVIEW_STEPS: [&str; 4] = [
    "consent_review",
    "billing_setup",
    "integration_verification",
    "audit_ready",
];

/// A production review step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStep {
    /// Consent and terms review.
    ConsentReview,
    /// Billing set up.
    BillingSetup,
    /// The integration verified.
    IntegrationVerification,
    /// Ready for audit.
    AuditReady,
}

impl ReviewStep {
    /// Every step, in review order.
    pub const ALL: [ReviewStep; 4] = [
        ReviewStep::ConsentReview,
        ReviewStep::BillingSetup,
        ReviewStep::IntegrationVerification,
        ReviewStep::AuditReady,
    ];

    /// Its place in the review.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        REVIEW_STEPS[self.index()]
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == s)
    }
}

/// A review step's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// Not decided yet.
    Pending,
    /// Completed by staff.
    Completed,
    /// Rejected by staff, with the reason.
    Rejected(String),
}

/// The production review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionReview {
    /// Each step's state, in [`REVIEW_STEPS`] order.
    pub steps: [StepState; 4],
    /// Whether production was granted (`sandbox.promoted`).
    pub granted: bool,
}

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

impl Org {
    /// Folds one event.
    pub fn apply(&mut self, event: &OrgEvent) {
        match event {
            OrgEvent::Created(e) => {
                self.id = e.org_id;
                self.exists = true;
            }
            OrgEvent::SlugClaimed(_) => {}
            OrgEvent::MemberAdded(e) => {
                if let Ok(role) = e.role.parse() {
                    self.members.insert(e.user_id, role);
                }
            }
            OrgEvent::MemberRoleChanged(e) => {
                if let Ok(role) = e.to.parse() {
                    self.members.insert(e.user_id, role);
                }
            }
            OrgEvent::MemberRemoved(e) => {
                self.members.remove(&e.user_id);
                for team in self.teams.values_mut() {
                    team.members.remove(&e.user_id);
                }
            }
            OrgEvent::InvitationCreated(e) => {
                if let Ok(role) = e.role.parse() {
                    self.invitations.insert(
                        e.invitation_id,
                        Invitation {
                            email_index: e.email_index.clone(),
                            role,
                            expires_at: e.expires_at,
                            status: InvitationStatus::Pending,
                        },
                    );
                }
            }
            OrgEvent::InvitationAccepted(e) => {
                if let Some(i) = self.invitations.get_mut(&e.invitation_id) {
                    i.status = InvitationStatus::Accepted;
                }
            }
            OrgEvent::InvitationRevoked(e) => {
                if let Some(i) = self.invitations.get_mut(&e.invitation_id) {
                    i.status = InvitationStatus::Revoked;
                }
            }
            OrgEvent::TermsAccepted(e) => self.terms_version = Some(e.version.clone()),
            OrgEvent::SandboxRequested(_) => self.sandbox = Sandbox::Requested,
            OrgEvent::SandboxGranted(e) => self.sandbox = Sandbox::Granted(e.sandbox_tenant_id),
            OrgEvent::ProductionRequested(_) => {
                self.production = Some(ProductionReview {
                    steps: std::array::from_fn(|_| StepState::Pending),
                    granted: false,
                })
            }
            OrgEvent::ProductionStepCompleted(e) => self.set_step(&e.step, StepState::Completed),
            OrgEvent::ProductionStepRejected(e) => {
                self.set_step(&e.step, StepState::Rejected(e.reason.clone()))
            }
            OrgEvent::SandboxPromoted(_) => {
                if let Some(p) = self.production.as_mut() {
                    p.granted = true;
                }
            }
            OrgEvent::PlanSet(p) => self.plan = Some(p.clone()),
            OrgEvent::TeamCreated(t) => {
                self.teams.insert(
                    t.team_id,
                    Team {
                        name: t.name.clone(),
                        members: BTreeMap::new(),
                    },
                );
            }
            OrgEvent::TeamMemberAdded(m) => {
                if let Some(t) = self.teams.get_mut(&m.team_id) {
                    t.members.insert(m.user_id, m.team_role.clone());
                }
            }
            OrgEvent::TeamMemberRemoved(m) => {
                if let Some(t) = self.teams.get_mut(&m.team_id) {
                    t.members.remove(&m.user_id);
                }
            }
        }
    }

    fn set_step(&mut self, step: &str, state: StepState) {
        if let (Some(p), Some(i)) = (
            self.production.as_mut(),
            REVIEW_STEPS.iter().position(|s| *s == step),
        ) {
            p.steps[i] = state;
        }
    }

    /// Folds many events.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a OrgEvent>) -> Self {
        let mut org = Org::default();
        for e in events {
            org.apply(e);
        }
        org
    }

    /// The caller's role, or `NotFound` for outsiders (never a hint that the
    /// organisation exists).
    pub fn role_of(&self, user: Uuid) -> Result<Role, OrgError> {
        if !self.exists {
            return Err(OrgError::NotFound);
        }
        self.members.get(&user).copied().ok_or(OrgError::NotFound)
    }

    /// Checks that `user` is a member with `permission`.
    pub fn authorize(&self, user: Uuid, permission: Permission) -> Result<Role, OrgError> {
        let role = self.role_of(user)?;
        if allows(role, permission) {
            Ok(role)
        } else {
            Err(OrgError::Forbidden(permission))
        }
    }

    /// Whether the plan includes `module` (and its subscription is not
    /// canceled).
    pub fn has_module(&self, module: &str) -> bool {
        self.plan.as_ref().is_some_and(|p| {
            p.subscription_state != "canceled" && p.modules.iter().any(|m| m == module)
        })
    }

    /// Whether production access has been granted.
    pub fn in_production(&self) -> bool {
        self.production.as_ref().is_some_and(|p| p.granted)
    }

    /// The developer terms version in force.
    pub fn current_terms(&self) -> &str {
        self.terms_in_force.as_deref().unwrap_or(INITIAL_TERMS)
    }

    /// Whether the developer terms in force are accepted.
    pub fn terms_accepted(&self) -> bool {
        self.terms_version.as_deref() == Some(self.current_terms())
    }

    /// The organisation's exact next step on its way to production.
    pub fn next_step(&self) -> &'static str {
        if !self.terms_accepted() {
            return "accept_developer_terms";
        }
        match (&self.sandbox, &self.production) {
            (Sandbox::None, _) => "request_sandbox",
            (Sandbox::Requested, _) => "await_sandbox_grant",
            (Sandbox::Granted(_), None) => "request_production",
            (Sandbox::Granted(_), Some(p)) if p.granted => "production_granted",
            (Sandbox::Granted(_), Some(p)) => p
                .steps
                .iter()
                .position(|s| *s != StepState::Completed)
                .map_or("production_granted", |i| REVIEW_STEPS[i]),
        }
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|r| **r == Role::Owner).count()
    }
}

/// Checks a slug: 3 to 40 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn valid_slug(slug: &str) -> bool {
    (3..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// `CreateOrg`: the creator becomes its first owner.
pub fn create(
    org_id: Uuid,
    slug: &str,
    name: &str,
    creator: Uuid,
) -> Result<Vec<OrgEvent>, OrgError> {
    let name = name.trim();
    let mut checks = Checks::default();
    checks.slug("/slug", slug).display_name("/name", name, 100);
    checks.finish()?;
    Ok(vec![
        OrgEvent::Created(OrgCreated {
            org_id,
            slug: slug.to_owned(),
            name: name.to_owned(),
            owner: creator,
        }),
        OrgEvent::MemberAdded(MemberAdded {
            user_id: creator,
            role: Role::Owner.as_str().to_owned(),
            invitation_id: None,
        }),
    ])
}

/// `AcceptDeveloperTerms`: idempotent for the version already accepted.
pub fn accept_terms(org: &Org, actor: Uuid, version: &str) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::AcceptTerms)?;
    let mut checks = Checks::default();
    let current = org.current_terms();
    checks.check(
        version == current,
        "/version",
        format!("must be the current terms version, {current}"),
    );
    checks.finish()?;
    if org.terms_version.as_deref() == Some(version) {
        return Ok(Vec::new());
    }
    Ok(vec![OrgEvent::TermsAccepted(TermsAccepted {
        version: version.to_owned(),
        user_id: actor,
    })])
}

/// The platform's developer terms, folded from `developer_terms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformTerms {
    /// Every version published, oldest first.
    pub published: Vec<String>,
}

impl PlatformTerms {
    /// Applies one event.
    pub fn apply(&mut self, event: &TermsEvent) {
        let TermsEvent::Published(p) = event;
        self.published.push(p.version.clone());
    }

    /// The version in force.
    pub fn current(&self) -> &str {
        self.published.last().map_or(INITIAL_TERMS, String::as_str)
    }
}

/// `PublishTerms` (staff): a version never in force before (1 to 32 of
/// `A-Z a-z 0-9 . -`, such as `2027-01`).
pub fn publish_terms(
    terms: &PlatformTerms,
    staff: Uuid,
    version: &str,
) -> Result<Vec<TermsEvent>, OrgError> {
    let mut checks = Checks::default();
    checks.check(
        (1..=32).contains(&version.len())
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        "/version",
        "must be 1 to 32 of A-Z, a-z, 0-9, . and - (such as 2027-01)",
    );
    checks.finish()?;
    if version == INITIAL_TERMS || terms.published.iter().any(|v| v == version) {
        return Err(OrgError::TermsVersionUsed);
    }
    Ok(vec![TermsEvent::Published(TermsPublished {
        version: version.to_owned(),
        by: staff,
    })])
}

/// `Invite`: a single-use invitation that expires.
#[allow(clippy::too_many_arguments)]
pub fn invite(
    org: &Org,
    actor: Uuid,
    invitation_id: Uuid,
    email_index: String,
    sealed_email: Sealed,
    role: Role,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = org.authorize(actor, Permission::ManageMembers)?;
    if role == Role::Owner && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    Ok(vec![OrgEvent::InvitationCreated(InvitationCreated {
        invitation_id,
        email_index,
        email: sealed_email,
        role: role.as_str().to_owned(),
        expires_at: now + ttl,
    })])
}

/// `AcceptInvitation`, by the signed-in user whose email index is given.
pub fn accept_invitation(
    org: &Org,
    user: Uuid,
    user_email_index: &str,
    invitation_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<OrgEvent>, OrgError> {
    let invitation = org
        .invitations
        .get(&invitation_id)
        .ok_or(OrgError::NoSuchInvitation)?;
    if invitation.email_index != user_email_index {
        // Not theirs: as good as absent.
        return Err(OrgError::NoSuchInvitation);
    }
    if invitation.status != InvitationStatus::Pending {
        return Err(OrgError::InvitationNotPending);
    }
    if now >= invitation.expires_at {
        return Err(OrgError::InvitationExpired);
    }
    if org.members.contains_key(&user) {
        return Err(OrgError::AlreadyMember);
    }
    Ok(vec![
        OrgEvent::InvitationAccepted(InvitationAccepted {
            invitation_id,
            user_id: user,
        }),
        OrgEvent::MemberAdded(MemberAdded {
            user_id: user,
            role: invitation.role.as_str().to_owned(),
            invitation_id: Some(invitation_id),
        }),
    ])
}

/// `RevokeInvitation`.
pub fn revoke_invitation(
    org: &Org,
    actor: Uuid,
    invitation_id: Uuid,
) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = org.authorize(actor, Permission::ManageMembers)?;
    let invitation = org
        .invitations
        .get(&invitation_id)
        .ok_or(OrgError::NoSuchInvitation)?;
    if invitation.role == Role::Owner && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    if invitation.status != InvitationStatus::Pending {
        return Err(OrgError::InvitationNotPending);
    }
    Ok(vec![OrgEvent::InvitationRevoked(InvitationRevoked {
        invitation_id,
    })])
}

/// `ChangeRole`.
pub fn change_role(
    org: &Org,
    actor: Uuid,
    member: Uuid,
    to: Role,
) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = org.authorize(actor, Permission::ManageMembers)?;
    let from = *org.members.get(&member).ok_or(OrgError::NoSuchMember)?;
    if from == to {
        return Ok(Vec::new());
    }
    if (from == Role::Owner || to == Role::Owner) && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    if from == Role::Owner && org.owners() == 1 {
        return Err(OrgError::LastOwner);
    }
    Ok(vec![OrgEvent::MemberRoleChanged(MemberRoleChanged {
        user_id: member,
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
    })])
}

/// `RemoveMember` (or leave, when `member == actor`).
pub fn remove_member(org: &Org, actor: Uuid, member: Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    let actor_role = if actor == member {
        org.role_of(actor)?
    } else {
        org.authorize(actor, Permission::ManageMembers)?
    };
    let role = *org.members.get(&member).ok_or(OrgError::NoSuchMember)?;
    if role == Role::Owner && actor_role != Role::Owner {
        return Err(OrgError::OnlyOwnersManageOwners);
    }
    if role == Role::Owner && org.owners() == 1 {
        return Err(OrgError::LastOwner);
    }
    Ok(vec![OrgEvent::MemberRemoved(MemberRemoved {
        user_id: member,
    })])
}

/// `RequestSandbox`: gated by the developer terms; granted at once when
/// `auto_grant` (configuration), otherwise queued for staff.
pub fn request_sandbox(
    org: &Org,
    actor: Uuid,
    auto_grant: Option<Uuid>,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::RequestEnvironments)?;
    if !org.terms_accepted() {
        return Err(OrgError::TermsNotAccepted);
    }
    if org.sandbox != Sandbox::None {
        return Err(OrgError::SandboxAlreadyRequested);
    }
    let mut events = vec![OrgEvent::SandboxRequested(SandboxRequested {
        user_id: actor,
    })];
    if let Some(tenant) = auto_grant {
        events.push(OrgEvent::SandboxGranted(SandboxGranted {
            sandbox_tenant_id: tenant,
            granted_by: None,
        }));
    }
    Ok(events)
}

/// `GrantSandbox` (staff; the caller checked the staff role).
pub fn grant_sandbox(org: &Org, staff: Uuid, tenant: Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    if !org.exists {
        return Err(OrgError::NotFound);
    }
    if org.sandbox != Sandbox::Requested {
        return Err(OrgError::NoSandboxRequest);
    }
    Ok(vec![OrgEvent::SandboxGranted(SandboxGranted {
        sandbox_tenant_id: tenant,
        granted_by: Some(staff),
    })])
}

/// `RequestProduction`: opens the review with its four steps.
pub fn request_production(org: &Org, actor: Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::RequestEnvironments)?;
    if !matches!(org.sandbox, Sandbox::Granted(_)) {
        return Err(OrgError::SandboxRequired);
    }
    if org.production.is_some() {
        return Err(OrgError::ProductionAlreadyRequested);
    }
    Ok(vec![OrgEvent::ProductionRequested(ProductionRequested {
        user_id: actor,
    })])
}

/// `CompleteStep` or, with a reason, `RejectStep` (staff). Completing the
/// last open step grants production (`sandbox.promoted`) in the same append.
pub fn decide_step(
    org: &Org,
    staff: Uuid,
    step: ReviewStep,
    rejection: Option<&str>,
) -> Result<Vec<OrgEvent>, OrgError> {
    if !org.exists {
        return Err(OrgError::NotFound);
    }
    let review = org
        .production
        .as_ref()
        .ok_or(OrgError::NoProductionReview)?;
    if review.granted {
        return Err(OrgError::ProductionAlreadyRequested);
    }
    let index = step.index();
    if let Some(reason) = rejection {
        let reason = reason.trim();
        let mut checks = Checks::default();
        checks
            .check(!reason.is_empty(), "/reason", "must say why")
            .check(
                reason.chars().count() <= 1000,
                "/reason",
                "must be at most 1000 characters",
            );
        checks.finish()?;
        return Ok(vec![OrgEvent::ProductionStepRejected(
            ProductionStepRejected {
                step: step.as_str().to_owned(),
                by: staff,
                reason: reason.to_owned(),
            },
        )]);
    }
    if review.steps[index] == StepState::Completed {
        return Ok(Vec::new());
    }
    let mut events = vec![OrgEvent::ProductionStepCompleted(ProductionStepCompleted {
        step: step.as_str().to_owned(),
        by: staff,
    })];
    let others_done = review
        .steps
        .iter()
        .enumerate()
        .all(|(i, s)| i == index || *s == StepState::Completed);
    if others_done {
        events.push(OrgEvent::SandboxPromoted(SandboxPromoted { by: staff }));
    }
    Ok(events)
}

/// `CreateTeam`.
pub fn create_team(
    org: &Org,
    actor: Uuid,
    team_id: Uuid,
    name: &str,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::ManageTeams)?;
    let name = name.trim();
    let mut checks = Checks::default();
    checks.display_name("/name", name, 100);
    checks.finish()?;
    if org
        .teams
        .values()
        .any(|t| t.name.eq_ignore_ascii_case(name))
    {
        return Err(OrgError::TeamNameTaken);
    }
    Ok(vec![OrgEvent::TeamCreated(TeamCreated {
        team_id,
        name: name.to_owned(),
    })])
}

/// `AddTeamMember` (or change their team role): only organisation members.
pub fn add_team_member(
    org: &Org,
    actor: Uuid,
    team_id: Uuid,
    user: Uuid,
    team_role: &str,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::ManageTeams)?;
    let team = org.teams.get(&team_id).ok_or(OrgError::NoSuchTeam)?;
    let mut checks = Checks::default();
    checks.check(
        TEAM_ROLES.contains(&team_role),
        "/team_role",
        "must be admin or member",
    );
    checks.finish()?;
    if !org.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember);
    }
    if team.members.get(&user).map(String::as_str) == Some(team_role) {
        return Ok(Vec::new());
    }
    Ok(vec![OrgEvent::TeamMemberAdded(TeamMemberAdded {
        team_id,
        user_id: user,
        team_role: team_role.to_owned(),
    })])
}

/// `RemoveTeamMember`.
pub fn remove_team_member(
    org: &Org,
    actor: Uuid,
    team_id: Uuid,
    user: Uuid,
) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::ManageTeams)?;
    let team = org.teams.get(&team_id).ok_or(OrgError::NoSuchTeam)?;
    if !team.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember);
    }
    Ok(vec![OrgEvent::TeamMemberRemoved(TeamMemberRemoved {
        team_id,
        user_id: user,
    })])
}

/// A plan as staff set it.
#[derive(Debug, Clone)]
pub struct SetPlan {
    /// Plan name.
    pub plan: String,
    /// Modules.
    pub modules: Vec<String>,
    /// Platform calls per billing window.
    pub monthly_call_limit: u64,
    /// Subscription state.
    pub subscription_state: String,
    /// Billing window start.
    pub billing_window_start: DateTime<Utc>,
    /// Billing window end.
    pub billing_window_end: DateTime<Utc>,
}

/// `SetPlan` (staff).
pub fn set_plan(org: &Org, staff: Uuid, cmd: SetPlan) -> Result<Vec<OrgEvent>, OrgError> {
    if !org.exists {
        return Err(OrgError::NotFound);
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 50
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    };
    let mut checks = Checks::default();
    checks
        .check(
            name_ok(&cmd.plan),
            "/plan",
            "must be 1 to 50 of a-z, 0-9, '.', '_', '-'",
        )
        .check(
            cmd.modules.len() <= 50,
            "/modules",
            "must list at most 50 modules",
        );
    for (i, m) in cmd.modules.iter().enumerate() {
        checks.check(
            name_ok(m),
            &format!("/modules/{i}"),
            "must be 1 to 50 of a-z, 0-9, '.', '_', '-'",
        );
    }
    checks
        .check(
            SUBSCRIPTION_STATES.contains(&cmd.subscription_state.as_str()),
            "/subscription_state",
            "must be one of trialing, active, past_due, canceled",
        )
        .check(
            cmd.billing_window_end > cmd.billing_window_start,
            "/billing_window_end",
            "must be after billing_window_start",
        );
    checks.finish()?;
    let mut modules = cmd.modules;
    modules.sort();
    modules.dedup();
    Ok(vec![OrgEvent::PlanSet(PlanSet {
        plan: cmd.plan,
        modules,
        monthly_call_limit: cmd.monthly_call_limit,
        subscription_state: cmd.subscription_state,
        billing_window_start: cmd.billing_window_start,
        billing_window_end: cmd.billing_window_end,
        by: staff,
    })])
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Uuid = Uuid::from_u128(1);
    const MANAGER: Uuid = Uuid::from_u128(2);
    const DEV: Uuid = Uuid::from_u128(3);
    const STRANGER: Uuid = Uuid::from_u128(9);
    const ORG: Uuid = Uuid::from_u128(100);
    const INV: Uuid = Uuid::from_u128(200);

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
    }

    /// given(events).then(command) -> outcome
    struct Given(Org);

    #[track_caller]
    fn given(events: &[OrgEvent]) -> Given {
        Given(Org::from_events(events))
    }

    impl Given {
        #[track_caller]
        fn then_ok(&self, outcome: Result<Vec<OrgEvent>, OrgError>, count: usize) -> Vec<OrgEvent> {
            let events = outcome.expect("the command is accepted");
            assert_eq!(events.len(), count, "{events:?}");
            events
        }
    }

    fn team() -> Vec<OrgEvent> {
        let mut events = create(ORG, "acme", "Acme", OWNER).expect("valid");
        for (user, role) in [(MANAGER, Role::Manager), (DEV, Role::Developer)] {
            events.push(OrgEvent::MemberAdded(MemberAdded {
                user_id: user,
                role: role.as_str().into(),
                invitation_id: None,
            }));
        }
        events
    }

    fn invited(role: Role) -> Vec<OrgEvent> {
        let mut events = team();
        events.push(OrgEvent::InvitationCreated(InvitationCreated {
            invitation_id: INV,
            email_index: "idx-new".into(),
            email: Sealed("x".into()),
            role: role.as_str().into(),
            expires_at: now() + default_invitation_ttl(),
        }));
        events
    }

    #[test]
    fn creating_an_org_makes_the_creator_its_owner() {
        let events = create(ORG, "acme-labs", " Acme Labs ", OWNER).unwrap();
        let org = Org::from_events(&events);
        assert_eq!(org.role_of(OWNER), Ok(Role::Owner));
        assert!(matches!(&events[0], OrgEvent::Created(c) if c.name == "Acme Labs"));
    }

    #[test]
    fn bad_slugs_and_names_are_refused_by_pointer() {
        for slug in ["ab", "Acme", "-acme", "acme-", "ac me", &"a".repeat(41)] {
            let Err(OrgError::Invalid(Invalid(errors))) = create(ORG, slug, "Acme", OWNER) else {
                panic!("{slug:?} accepted")
            };
            assert_eq!(errors[0].pointer, "/slug");
        }
        assert!(matches!(
            create(ORG, "acme", "  ", OWNER),
            Err(OrgError::Invalid(_))
        ));
    }

    #[test]
    fn outsiders_get_not_found_and_members_without_permission_get_forbidden() {
        let org = given(&team()).0;
        assert_eq!(
            org.authorize(STRANGER, Permission::ViewOrg),
            Err(OrgError::NotFound)
        );
        assert_eq!(
            org.authorize(DEV, Permission::ManageMembers),
            Err(OrgError::Forbidden(Permission::ManageMembers))
        );
        assert_eq!(Org::default().role_of(OWNER), Err(OrgError::NotFound));
    }

    #[test]
    fn accepting_the_current_terms_once_records_it_and_again_changes_nothing() {
        let g = given(&team());
        let events = g.then_ok(accept_terms(&g.0, MANAGER, INITIAL_TERMS), 1);
        let mut all = team();
        all.extend(events);
        let g = given(&all);
        g.then_ok(accept_terms(&g.0, OWNER, INITIAL_TERMS), 0);
    }

    #[test]
    fn accepting_unknown_terms_or_without_permission_is_refused() {
        let org = given(&team()).0;
        assert!(matches!(
            accept_terms(&org, OWNER, "1999-01"),
            Err(OrgError::Invalid(_))
        ));
        assert_eq!(
            accept_terms(&org, DEV, INITIAL_TERMS),
            Err(OrgError::Forbidden(Permission::AcceptTerms))
        );
    }

    #[test]
    fn only_owners_invite_owners() {
        let org = given(&team()).0;
        let sealed = Sealed("x".into());
        assert_eq!(
            invite(
                &org,
                MANAGER,
                INV,
                "i".into(),
                sealed.clone(),
                Role::Owner,
                now(),
                default_invitation_ttl()
            ),
            Err(OrgError::OnlyOwnersManageOwners)
        );
        assert!(invite(
            &org,
            OWNER,
            INV,
            "i".into(),
            sealed.clone(),
            Role::Owner,
            now(),
            default_invitation_ttl()
        )
        .is_ok());
        assert_eq!(
            invite(
                &org,
                DEV,
                INV,
                "i".into(),
                sealed,
                Role::Developer,
                now(),
                default_invitation_ttl()
            ),
            Err(OrgError::Forbidden(Permission::ManageMembers))
        );
    }

    #[test]
    fn an_invitation_is_single_use() {
        let g = given(&invited(Role::Developer));
        let events = g.then_ok(accept_invitation(&g.0, STRANGER, "idx-new", INV, now()), 2);
        let mut all = invited(Role::Developer);
        all.extend(events);
        let org = Org::from_events(&all);
        assert_eq!(org.role_of(STRANGER), Ok(Role::Developer));
        let other = Uuid::from_u128(10);
        assert_eq!(
            accept_invitation(&org, other, "idx-new", INV, now()),
            Err(OrgError::InvitationNotPending)
        );
    }

    #[test]
    fn an_expired_revoked_or_someone_elses_invitation_is_refused() {
        let org = given(&invited(Role::Developer)).0;
        let later = now() + default_invitation_ttl();
        assert_eq!(
            accept_invitation(&org, STRANGER, "idx-new", INV, later),
            Err(OrgError::InvitationExpired)
        );
        assert_eq!(
            accept_invitation(&org, STRANGER, "idx-other", INV, now()),
            Err(OrgError::NoSuchInvitation)
        );
        let mut all = invited(Role::Developer);
        all.extend(revoke_invitation(&org, MANAGER, INV).unwrap());
        let org = Org::from_events(&all);
        assert_eq!(
            accept_invitation(&org, STRANGER, "idx-new", INV, now()),
            Err(OrgError::InvitationNotPending)
        );
        assert_eq!(
            revoke_invitation(&org, MANAGER, INV),
            Err(OrgError::InvitationNotPending)
        );
    }

    #[test]
    fn the_last_owner_can_neither_leave_nor_be_demoted() {
        let org = given(&team()).0;
        assert_eq!(remove_member(&org, OWNER, OWNER), Err(OrgError::LastOwner));
        assert_eq!(
            change_role(&org, OWNER, OWNER, Role::Manager),
            Err(OrgError::LastOwner)
        );
        let mut all = team();
        all.extend(change_role(&org, OWNER, MANAGER, Role::Owner).unwrap());
        let org = Org::from_events(&all);
        assert_eq!(remove_member(&org, OWNER, OWNER).map(|e| e.len()), Ok(1));
    }

    #[test]
    fn managers_cannot_touch_owners_and_developers_cannot_manage_members() {
        let org = given(&team()).0;
        assert_eq!(
            change_role(&org, MANAGER, OWNER, Role::Developer),
            Err(OrgError::OnlyOwnersManageOwners)
        );
        assert_eq!(
            change_role(&org, MANAGER, DEV, Role::Owner),
            Err(OrgError::OnlyOwnersManageOwners)
        );
        assert_eq!(
            remove_member(&org, MANAGER, OWNER),
            Err(OrgError::OnlyOwnersManageOwners)
        );
        assert_eq!(
            remove_member(&org, DEV, MANAGER),
            Err(OrgError::Forbidden(Permission::ManageMembers))
        );
        assert_eq!(
            remove_member(&org, DEV, DEV).map(|e| e.len()),
            Ok(1),
            "anyone may leave"
        );
        assert_eq!(
            change_role(&org, MANAGER, STRANGER, Role::Developer),
            Err(OrgError::NoSuchMember)
        );
    }

    fn with(mut events: Vec<OrgEvent>, more: Vec<OrgEvent>) -> Vec<OrgEvent> {
        events.extend(more);
        events
    }

    const STAFF: Uuid = Uuid::from_u128(77);
    const TENANT: Uuid = Uuid::from_u128(88);

    #[test]
    fn sandbox_is_refused_until_the_terms_are_accepted_and_names_the_next_step() {
        let org = given(&team()).0;
        assert_eq!(org.next_step(), "accept_developer_terms");
        let err = request_sandbox(&org, OWNER, None).unwrap_err();
        assert_eq!(err, OrgError::TermsNotAccepted);
        assert!(err.to_string().contains("accept_developer_terms"));
    }

    #[test]
    fn the_lane_runs_from_terms_to_production_granted() {
        let mut log = with(
            team(),
            accept_terms(&Org::from_events(&team()), OWNER, INITIAL_TERMS).unwrap(),
        );
        let org = Org::from_events(&log);
        assert_eq!(org.next_step(), "request_sandbox");
        assert_eq!(
            request_sandbox(&org, DEV, None),
            Err(OrgError::Forbidden(Permission::RequestEnvironments))
        );
        log = with(log, request_sandbox(&org, MANAGER, None).unwrap());
        let org = Org::from_events(&log);
        assert_eq!(org.next_step(), "await_sandbox_grant");
        assert_eq!(
            request_sandbox(&org, OWNER, None),
            Err(OrgError::SandboxAlreadyRequested)
        );
        assert_eq!(
            request_production(&org, OWNER),
            Err(OrgError::SandboxRequired)
        );
        log = with(log, grant_sandbox(&org, STAFF, TENANT).unwrap());
        let org = Org::from_events(&log);
        assert_eq!(org.sandbox, Sandbox::Granted(TENANT));
        assert_eq!(org.next_step(), "request_production");
        assert_eq!(
            decide_step(&org, STAFF, ReviewStep::ConsentReview, None),
            Err(OrgError::NoProductionReview)
        );
        log = with(log, request_production(&org, OWNER).unwrap());
        let mut org = Org::from_events(&log);
        assert_eq!(org.next_step(), "consent_review");
        let rejected = decide_step(
            &org,
            STAFF,
            ReviewStep::BillingSetup,
            Some("no card on file"),
        )
        .unwrap();
        log = with(log, rejected);
        org = Org::from_events(&log);
        assert_eq!(
            org.production.as_ref().unwrap().steps[1],
            StepState::Rejected("no card on file".into())
        );
        for (i, step) in ReviewStep::ALL.into_iter().enumerate() {
            assert!(!org.in_production());
            let events = decide_step(&org, STAFF, step, None).unwrap();
            assert_eq!(
                events.len(),
                if i == 3 { 2 } else { 1 },
                "the last step promotes"
            );
            log = with(log, events);
            org = Org::from_events(&log);
        }
        assert!(org.in_production());
        assert_eq!(org.next_step(), "production_granted");
        assert!(matches!(log.last(), Some(OrgEvent::SandboxPromoted(_))));
    }

    #[test]
    fn an_automatic_sandbox_grant_comes_in_the_same_append() {
        let log = with(
            team(),
            accept_terms(&Org::from_events(&team()), OWNER, INITIAL_TERMS).unwrap(),
        );
        let events = request_sandbox(&Org::from_events(&log), OWNER, Some(TENANT)).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            Org::from_events(&with(log, events)).sandbox,
            Sandbox::Granted(TENANT)
        );
    }

    #[test]
    fn review_decisions_need_a_known_step_and_a_reason_to_reject() {
        let mut log = with(
            team(),
            accept_terms(&Org::from_events(&team()), OWNER, INITIAL_TERMS).unwrap(),
        );
        log = with(
            log.clone(),
            request_sandbox(&Org::from_events(&log), OWNER, Some(TENANT)).unwrap(),
        );
        log = with(
            log.clone(),
            request_production(&Org::from_events(&log), OWNER).unwrap(),
        );
        let org = Org::from_events(&log);
        assert_eq!(
            ReviewStep::parse("vibes_check"),
            None,
            "unknown steps do not parse"
        );
        assert!(matches!(
            decide_step(&org, STAFF, ReviewStep::AuditReady, Some("  ")),
            Err(OrgError::Invalid(_))
        ));
        assert_eq!(
            request_production(&org, OWNER),
            Err(OrgError::ProductionAlreadyRequested)
        );
    }

    fn plan(modules: &[&str], state: &str) -> SetPlan {
        SetPlan {
            plan: "pro".into(),
            modules: modules.iter().map(|m| m.to_string()).collect(),
            monthly_call_limit: 100_000,
            subscription_state: state.into(),
            billing_window_start: now(),
            billing_window_end: now() + Duration::days(30),
        }
    }

    #[test]
    fn the_platform_api_module_opens_the_workspace_unless_canceled() {
        let org = given(&team()).0;
        assert!(!org.has_module(PLATFORM_API), "no plan, no module");
        let with_api = with(
            team(),
            set_plan(&org, STAFF, plan(&[PLATFORM_API], "active")).unwrap(),
        );
        assert!(Org::from_events(&with_api).has_module(PLATFORM_API));
        let canceled = with(
            team(),
            set_plan(&org, STAFF, plan(&[PLATFORM_API], "canceled")).unwrap(),
        );
        assert!(!Org::from_events(&canceled).has_module(PLATFORM_API));
        let without = with(
            team(),
            set_plan(&org, STAFF, plan(&["billing"], "active")).unwrap(),
        );
        assert!(!Org::from_events(&without).has_module(PLATFORM_API));
    }

    #[test]
    fn a_bad_plan_names_each_bad_field() {
        let org = given(&team()).0;
        let mut bad = plan(&["Not OK"], "lapsed");
        bad.plan = String::new();
        bad.billing_window_end = bad.billing_window_start;
        let Err(OrgError::Invalid(Invalid(errors))) = set_plan(&org, STAFF, bad) else {
            panic!("a bad plan was accepted")
        };
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            vec![
                "/plan",
                "/modules/0",
                "/subscription_state",
                "/billing_window_end"
            ]
        );
    }

    const TEAM: Uuid = Uuid::from_u128(300);

    #[test]
    fn teams_hold_only_organisation_members_and_names_are_unique() {
        let org = given(&team()).0;
        assert_eq!(
            create_team(&org, DEV, TEAM, "Mobile"),
            Err(OrgError::Forbidden(Permission::ManageTeams))
        );
        let log = with(team(), create_team(&org, MANAGER, TEAM, "Mobile").unwrap());
        let org = Org::from_events(&log);
        assert_eq!(
            create_team(&org, OWNER, Uuid::from_u128(301), " mobile "),
            Err(OrgError::TeamNameTaken)
        );
        assert_eq!(
            add_team_member(&org, OWNER, TEAM, STRANGER, "member"),
            Err(OrgError::NoSuchMember)
        );
        assert!(matches!(
            add_team_member(&org, OWNER, TEAM, DEV, "boss"),
            Err(OrgError::Invalid(_))
        ));
        let log = with(
            log,
            add_team_member(&org, OWNER, TEAM, DEV, "admin").unwrap(),
        );
        let org = Org::from_events(&log);
        assert_eq!(
            org.teams[&TEAM].members.get(&DEV).map(String::as_str),
            Some("admin")
        );
        // Leaving the organisation leaves its teams too.
        let log = with(log, remove_member(&org, DEV, DEV).unwrap());
        assert!(Org::from_events(&log).teams[&TEAM].members.is_empty());
    }

    #[test]
    fn new_terms_must_be_accepted_again_before_gated_actions() {
        let accepted = {
            let mut log = team();
            log.extend(accept_terms(&Org::from_events(&log), OWNER, INITIAL_TERMS).unwrap());
            log
        };
        let mut org = Org::from_events(&accepted);
        assert!(org.terms_accepted());
        let mut terms = PlatformTerms::default();
        for e in publish_terms(&terms, STAFF, "2027-01").unwrap() {
            terms.apply(&e);
        }
        assert_eq!(terms.current(), "2027-01");
        org.terms_in_force = Some(terms.current().to_owned());
        assert!(!org.terms_accepted());
        assert_eq!(org.next_step(), "accept_developer_terms");
        assert_eq!(
            request_sandbox(&org, OWNER, None),
            Err(OrgError::TermsNotAccepted)
        );
        assert!(
            matches!(
                accept_terms(&org, OWNER, INITIAL_TERMS),
                Err(OrgError::Invalid(_))
            ),
            "the old version no longer counts"
        );
        let events = accept_terms(&org, OWNER, "2027-01").unwrap();
        for e in &events {
            org.apply(e);
        }
        assert!(org.terms_accepted());
    }

    #[test]
    fn a_terms_version_is_published_once() {
        let mut terms = PlatformTerms::default();
        assert_eq!(
            publish_terms(&terms, STAFF, INITIAL_TERMS),
            Err(OrgError::TermsVersionUsed)
        );
        assert!(matches!(
            publish_terms(&terms, STAFF, "no spaces"),
            Err(OrgError::Invalid(_))
        ));
        for e in publish_terms(&terms, STAFF, "2027-01").unwrap() {
            terms.apply(&e);
        }
        assert_eq!(
            publish_terms(&terms, STAFF, "2027-01"),
            Err(OrgError::TermsVersionUsed)
        );
    }
}
