//! The organisation aggregate's state: members, invitations, teams, terms,
//! environments and plan, folded from `org-<id>`.

#[allow(unused_imports)]
use super::*;

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

/// What the onboarding lane counts beyond the organisation's own stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneProgress {
    /// An API key was issued for one of its apps.
    pub first_key: bool,
    /// Calls were verified, so there is usage to review.
    pub usage: bool,
    /// A webhook endpoint was created for one of its apps.
    pub webhook: bool,
}

/// Where a production review stands, as the onboarding lane needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewProgress {
    /// Production was granted (`sandbox.promoted`).
    pub granted: bool,
    /// The first step not completed, by its place in [`REVIEW_STEPS`].
    pub open_step: Option<usize>,
}

/// What the onboarding lane is decided from. The aggregate and the orgs
/// read model (from its rows) both decide with [`Lane::next_step`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lane {
    /// The developer terms in force are accepted.
    pub terms_accepted: bool,
    /// Sandbox access.
    pub sandbox: Sandbox,
    /// The production review, once requested.
    pub production: Option<ReviewProgress>,
    /// What the organisation did outside its stream.
    pub progress: LaneProgress,
}

impl Lane {
    /// The exact next step: in the sandbox, issue a first key, then make
    /// calls whose usage can be reviewed, then connect a webhook, then
    /// request production (which it may do at any time: these steps guide,
    /// they do not gate).
    pub fn next_step(&self) -> &'static str {
        if !self.terms_accepted {
            return "accept_developer_terms";
        }
        let progress = self.progress;
        match (self.sandbox, self.production) {
            (Sandbox::None, _) => "request_sandbox",
            (Sandbox::Requested, _) => "await_sandbox_grant",
            (Sandbox::Granted(_), None) if !progress.first_key => "issue_first_key",
            (Sandbox::Granted(_), None) if !progress.usage => "review_usage",
            (Sandbox::Granted(_), None) if !progress.webhook => "connect_webhook",
            (Sandbox::Granted(_), None) => "request_production",
            (Sandbox::Granted(_), Some(p)) if p.granted => "production_granted",
            (Sandbox::Granted(_), Some(p)) => p
                .open_step
                .map_or("production_granted", |i| REVIEW_STEPS[i]),
        }
    }
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

/// A stored role name.
fn role(name: &str) -> Result<Role, String> {
    name.parse().map_err(|_| format!("unknown role {name:?}"))
}

impl Org {
    /// Folds one event. An event naming a role, an invitation, a step or a
    /// team the state does not know is an error, never silently skipped:
    /// the log and the code disagree and someone must look.
    pub fn apply(&mut self, event: &OrgEvent) -> Result<(), String> {
        match event {
            OrgEvent::Created(e) => {
                self.id = e.org_id;
                self.exists = true;
            }
            OrgEvent::SlugClaimed(_) => {}
            OrgEvent::MemberAdded(e) => {
                self.members.insert(e.user_id, role(&e.role)?);
            }
            OrgEvent::MemberRoleChanged(e) => {
                self.members.insert(e.user_id, role(&e.to)?);
            }
            OrgEvent::MemberRemoved(e) => {
                self.members.remove(&e.user_id);
                for team in self.teams.values_mut() {
                    team.members.remove(&e.user_id);
                }
            }
            OrgEvent::InvitationCreated(e) => {
                self.invitations.insert(
                    e.invitation_id,
                    Invitation {
                        email_index: e.email_index.clone(),
                        role: role(&e.role)?,
                        expires_at: e.expires_at,
                        status: InvitationStatus::Pending,
                    },
                );
            }
            OrgEvent::InvitationAccepted(e) => {
                self.invitation_mut(e.invitation_id)?.status = InvitationStatus::Accepted;
            }
            OrgEvent::InvitationRevoked(e) => {
                self.invitation_mut(e.invitation_id)?.status = InvitationStatus::Revoked;
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
            OrgEvent::ProductionStepCompleted(e) => self.set_step(&e.step, StepState::Completed)?,
            OrgEvent::ProductionStepRejected(e) => {
                self.set_step(&e.step, StepState::Rejected(e.reason.clone()))?
            }
            OrgEvent::SandboxPromoted(_) => self.review_mut()?.granted = true,
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
                self.team_mut(m.team_id)?
                    .members
                    .insert(m.user_id, m.team_role.clone());
            }
            OrgEvent::TeamMemberRemoved(m) => {
                self.team_mut(m.team_id)?.members.remove(&m.user_id);
            }
        }
        Ok(())
    }

    fn invitation_mut(&mut self, id: Uuid) -> Result<&mut Invitation, String> {
        self.invitations
            .get_mut(&id)
            .ok_or_else(|| format!("unknown invitation {id}"))
    }

    fn team_mut(&mut self, id: Uuid) -> Result<&mut Team, String> {
        self.teams
            .get_mut(&id)
            .ok_or_else(|| format!("unknown team {id}"))
    }

    fn review_mut(&mut self) -> Result<&mut ProductionReview, String> {
        self.production
            .as_mut()
            .ok_or_else(|| "a review step before the production review".to_owned())
    }

    fn set_step(&mut self, step: &str, state: StepState) -> Result<(), String> {
        let step =
            ReviewStep::parse(step).ok_or_else(|| format!("unknown review step {step:?}"))?;
        self.review_mut()?.steps[step.index()] = state;
        Ok(())
    }

    /// Folds many events.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a OrgEvent>) -> Result<Self, String> {
        let mut org = Org::default();
        for e in events {
            org.apply(e)?;
        }
        Ok(org)
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

    /// Whether the plan unlocks the Developers workspace
    /// ([`plan_unlocks_workspace`]); without a plan it is locked.
    pub fn unlocks_workspace(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| {
            plan_unlocks_workspace(&p.modules, Some(p.subscription_state.as_str()))
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

    /// The organisation's exact next step on its way to production, from
    /// its own stream alone (as if it had issued no key yet).
    pub fn next_step(&self) -> &'static str {
        self.next_step_with(LaneProgress::default())
    }

    /// The exact next step ([`Lane::next_step`]), given what the
    /// organisation did outside its stream.
    pub fn next_step_with(&self, progress: LaneProgress) -> &'static str {
        Lane {
            terms_accepted: self.terms_accepted(),
            sandbox: self.sandbox,
            production: self.production.as_ref().map(|p| ReviewProgress {
                granted: p.granted,
                open_step: p.steps.iter().position(|s| *s != StepState::Completed),
            }),
            progress,
        }
        .next_step()
    }

    pub(crate) fn owners(&self) -> usize {
        self.members.values().filter(|r| **r == Role::Owner).count()
    }
}
