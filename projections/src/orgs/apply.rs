//! The organisations read model's write side: a batch loads the rows it
//! touches, folds its events in log order, and writes back what changed.
//! The onboarding lane is decided by the domain's own rule
//! ([`domain::orgs::Lane`]) from this model's rows, never by re-reading
//! the organisation's stream.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use domain::orgs::{Lane, LaneProgress, ReviewProgress, Sandbox, INITIAL_TERMS, REVIEW_STEPS};
use event_schemas::key::{KeyEvent, UsageEvent};
use event_schemas::org::{OrgEvent, TermsEvent, TERMS_STREAM};
use event_schemas::webhook::WebhookEvent;
use event_schemas::RecordedEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::table::{self, row, Table};
use crate::ProjectionError;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Org {
    org_id: Uuid,
    slug: String,
    name: String,
    terms_version: Option<String>,
    sandbox_state: String,
    sandbox_tenant_id: Option<Uuid>,
    sandbox_requested_at: Option<DateTime<Utc>>,
    production_state: String,
    production_requested_at: Option<DateTime<Utc>>,
    plan: Option<String>,
    modules: Vec<String>,
    monthly_call_limit: Option<i64>,
    subscription_state: Option<String>,
    billing_window_start: Option<DateTime<Utc>>,
    billing_window_end: Option<DateTime<Utc>>,
    next_step: String,
    first_key_at: Option<DateTime<Utc>>,
    webhook_at: Option<DateTime<Utc>>,
    usage_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}
row!(Org, "orgs", [org_id], Uuid, |r: &Org| r.org_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Team {
    team_id: Uuid,
    org_id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}
row!(Team, "teams", [team_id], Uuid, |r: &Team| r.team_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TeamMember {
    team_id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    team_role: String,
}
row!(
    TeamMember,
    "team_members",
    [team_id, user_id],
    (Uuid, Uuid),
    |r: &TeamMember| (r.team_id, r.user_id)
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    org_id: Uuid,
    step: String,
    state: String,
    reason: Option<String>,
    decided_at: Option<DateTime<Utc>>,
}
row!(
    Step,
    "review_steps",
    [org_id, step],
    (Uuid, String),
    |r: &Step| (r.org_id, r.step.clone())
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    org_id: Uuid,
    user_id: Uuid,
    role: String,
    joined_at: DateTime<Utc>,
}
row!(
    Member,
    "members",
    [org_id, user_id],
    (Uuid, Uuid),
    |r: &Member| (r.org_id, r.user_id)
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Invitation {
    invitation_id: Uuid,
    org_id: Uuid,
    role: String,
    status: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    email_sealed: String,
    invited_by: Option<Uuid>,
}
row!(
    Invitation,
    "invitations",
    [invitation_id],
    Uuid,
    |r: &Invitation| r.invitation_id
);

/// Which first-time mark of an organisation's row an event sets.
type LaneMark = fn(&mut Org) -> &mut Option<DateTime<Utc>>;

/// The rows one batch works on.
#[derive(Default)]
struct Batch {
    orgs: Table<Org>,
    teams: Table<Team>,
    team_members: Table<TeamMember>,
    steps: Table<Step>,
    members: Table<Member>,
    invitations: Table<Invitation>,
    /// The developer terms version in force, once read (`None` inside: the
    /// initial version).
    terms_in_force: Option<Option<String>>,
}

/// Applies a batch of events.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    events: &[&RecordedEvent],
) -> Result<(), ProjectionError> {
    table::fold::<Batch>(tx, events).await
}

/// The organisation of an `org-<id>` stream.
fn org_id(e: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    e.stream_id
        .strip_prefix("org-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("organisation event on stream {}", e.stream_id),
        })
}

/// The organisation an event of another family counts for in the lane.
fn lane_org(e: &RecordedEvent) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Named {
        org_id: Option<Uuid>,
    }
    match e.event_type.as_str() {
        "api_key.issued" | "usage.recorded" | "webhook.endpoint_created" => {
            serde_json::from_str::<Named>(e.data.get()).ok()?.org_id
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl table::Batch for Batch {
    /// Loads, in one query per table, the rows the batch's events name.
    async fn prefetch(
        &mut self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut orgs = HashSet::new();
        let mut reviewed = HashSet::new();
        let mut invitations = Vec::new();
        let mut teams = HashSet::new();
        let mut members = Vec::new();
        let mut team_members = Vec::new();
        let mut steps = Vec::new();
        for e in events {
            if let Some(org) = e
                .stream_id
                .strip_prefix("org-")
                .and_then(|id| id.parse::<Uuid>().ok())
            {
                orgs.insert(org);
                if e.event_type.starts_with("production.") || e.event_type.starts_with("sandbox.") {
                    reviewed.insert(org);
                }
                if e.event_type == "production.requested" {
                    // Its review steps are written new: known absent
                    // until then, not looked up one by one.
                    steps.extend(REVIEW_STEPS.iter().map(|s| (org, (*s).to_owned())));
                }
                #[derive(Deserialize)]
                struct Ids {
                    invitation_id: Option<Uuid>,
                    team_id: Option<Uuid>,
                    user_id: Option<Uuid>,
                }
                if let Ok(ids) = serde_json::from_str::<Ids>(e.data.get()) {
                    invitations.extend(ids.invitation_id);
                    teams.extend(ids.team_id);
                    if let Some(user) = ids.user_id {
                        if e.event_type.starts_with("member.") {
                            members.push((org, user));
                        }
                        if let Some(team) = ids.team_id {
                            team_members.push((team, user));
                        }
                    }
                }
            } else if let Some(org) = lane_org(e) {
                orgs.insert(org);
            }
        }
        let reviewed: Vec<Uuid> = reviewed.into_iter().collect();
        self.orgs.load(tx, orgs).await?;
        self.steps.load_by(tx, "org_id", &reviewed).await?;
        self.steps.load(tx, steps).await?;
        self.invitations.load(tx, invitations).await?;
        self.members.load(tx, members).await?;
        self.team_members.load(tx, team_members).await?;
        self.teams.load(tx, teams).await
    }

    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        self.orgs.flush(tx).await?;
        self.teams.flush(tx).await?;
        self.team_members.flush(tx).await?;
        self.steps.flush(tx).await?;
        self.members.flush(tx).await?;
        self.invitations.flush(tx).await
    }

    async fn event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if e.stream_id == TERMS_STREAM {
            if let Some(TermsEvent::Published(p)) = crate::decode(e, TermsEvent::decode)? {
                // Every organisation that has not accepted this version
                // (none yet) is back to accepting the terms: set-based, so a
                // barrier on the organisations.
                self.orgs.flush(tx).await?;
                let add = tx
                    .prepare_cached(
                        "INSERT INTO developer_terms (position, version, published_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .await?;
                tx.execute(
                    &add,
                    &[&(e.global_position as i64), &p.version, &e.recorded_at],
                )
                .await?;
                let reset = tx
                    .prepare_cached(
                        "UPDATE orgs SET next_step = 'accept_developer_terms' \
                         WHERE terms_version IS DISTINCT FROM $1",
                    )
                    .await?;
                tx.execute(&reset, &[&p.version]).await?;
                self.orgs.reload(tx).await?;
                self.terms_in_force = Some(Some(p.version.clone()));
            }
            return Ok(());
        }
        if let Some(org) = self.lane_progress(tx, e).await? {
            return self.move_lane(tx, org).await;
        }
        let Some(event) = crate::decode(e, OrgEvent::decode)? else {
            return Ok(());
        };
        if matches!(event, OrgEvent::SlugClaimed(_)) {
            return Ok(());
        }
        let org = org_id(e)?;
        let at = e.recorded_at;
        let moves_lane = matches!(
            event,
            OrgEvent::Created(_)
                | OrgEvent::TermsAccepted(_)
                | OrgEvent::SandboxRequested(_)
                | OrgEvent::SandboxGranted(_)
                | OrgEvent::ProductionRequested(_)
                | OrgEvent::ProductionStepCompleted(_)
                | OrgEvent::ProductionStepRejected(_)
                | OrgEvent::SandboxPromoted(_)
        );
        let twice = |what: &str| ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("{what} recorded twice"),
        };
        match event {
            OrgEvent::Created(c) => {
                let row = Org {
                    org_id: org,
                    slug: c.slug,
                    name: c.name,
                    terms_version: None,
                    sandbox_state: "none".to_owned(),
                    sandbox_tenant_id: None,
                    sandbox_requested_at: None,
                    production_state: "none".to_owned(),
                    production_requested_at: None,
                    plan: None,
                    modules: Vec::new(),
                    monthly_call_limit: None,
                    subscription_state: None,
                    billing_window_start: None,
                    billing_window_end: None,
                    next_step: "accept_developer_terms".to_owned(),
                    first_key_at: None,
                    webhook_at: None,
                    usage_at: None,
                    created_at: at,
                };
                if !self.orgs.insert(tx, row).await? {
                    return Err(twice("org.created"));
                }
            }
            OrgEvent::MemberAdded(m) => {
                let row = Member {
                    org_id: org,
                    user_id: m.user_id,
                    role: m.role,
                    joined_at: at,
                };
                if !self.members.insert(tx, row).await? {
                    return Err(twice("a membership"));
                }
            }
            OrgEvent::MemberRoleChanged(m) => {
                if let Some(row) = self.members.get_mut(tx, &(org, m.user_id)).await? {
                    row.role = m.to;
                }
            }
            OrgEvent::MemberRemoved(m) => {
                self.members.delete(tx, &(org, m.user_id)).await?;
                // Its teams: set-based over the organisation's teams, so a
                // barrier on team members.
                self.team_members.flush(tx).await?;
                let stmt = tx
                    .prepare_cached("DELETE FROM team_members WHERE org_id = $1 AND user_id = $2")
                    .await?;
                tx.execute(&stmt, &[&org, &m.user_id]).await?;
                self.team_members.reload(tx).await?;
            }
            OrgEvent::InvitationCreated(i) => {
                let invited_by = e
                    .parsed_metadata()
                    .ok()
                    .and_then(|m| m.actor.id)
                    .and_then(|id| id.parse::<Uuid>().ok());
                let row = Invitation {
                    invitation_id: i.invitation_id,
                    org_id: org,
                    role: i.role,
                    status: "pending".to_owned(),
                    expires_at: i.expires_at,
                    created_at: at,
                    email_sealed: i.email.0,
                    invited_by,
                };
                if !self.invitations.insert(tx, row).await? {
                    return Err(twice("an invitation"));
                }
            }
            OrgEvent::InvitationAccepted(i) => {
                if let Some(row) = self.invitations.get_mut(tx, &i.invitation_id).await? {
                    row.status = "accepted".to_owned();
                }
            }
            OrgEvent::InvitationRevoked(i) => {
                if let Some(row) = self.invitations.get_mut(tx, &i.invitation_id).await? {
                    row.status = "revoked".to_owned();
                }
            }
            OrgEvent::TermsAccepted(t) => {
                if let Some(row) = self.orgs.get_mut(tx, &org).await? {
                    row.terms_version = Some(t.version);
                }
            }
            OrgEvent::SandboxRequested(_) => {
                if let Some(row) = self.orgs.get_mut(tx, &org).await? {
                    row.sandbox_state = "requested".to_owned();
                    row.sandbox_requested_at = Some(at);
                }
            }
            OrgEvent::SandboxGranted(g) => {
                if let Some(row) = self.orgs.get_mut(tx, &org).await? {
                    row.sandbox_state = "granted".to_owned();
                    row.sandbox_tenant_id = Some(g.sandbox_tenant_id);
                }
            }
            OrgEvent::ProductionRequested(_) => {
                if let Some(row) = self.orgs.get_mut(tx, &org).await? {
                    row.production_state = "in_review".to_owned();
                    row.production_requested_at = Some(at);
                }
                for step in REVIEW_STEPS {
                    let row = Step {
                        org_id: org,
                        step: step.to_owned(),
                        state: "pending".to_owned(),
                        reason: None,
                        decided_at: None,
                    };
                    if !self.steps.insert(tx, row).await? {
                        return Err(twice("a production review"));
                    }
                }
            }
            OrgEvent::ProductionStepCompleted(c) => {
                if let Some(row) = self.steps.get_mut(tx, &(org, c.step)).await? {
                    row.state = "completed".to_owned();
                    row.reason = None;
                    row.decided_at = Some(at);
                }
            }
            OrgEvent::ProductionStepRejected(r) => {
                if let Some(row) = self.steps.get_mut(tx, &(org, r.step)).await? {
                    row.state = "rejected".to_owned();
                    row.reason = Some(r.reason);
                    row.decided_at = Some(at);
                }
            }
            OrgEvent::SandboxPromoted(_) => {
                if let Some(row) = self.orgs.get_mut(tx, &org).await? {
                    row.production_state = "granted".to_owned();
                }
            }
            OrgEvent::PlanSet(p) => {
                if let Some(row) = self.orgs.get_mut(tx, &org).await? {
                    row.plan = Some(p.plan);
                    row.modules = p.modules;
                    row.monthly_call_limit = Some(p.monthly_call_limit.min(i64::MAX as u64) as i64);
                    row.subscription_state = Some(p.subscription_state);
                    row.billing_window_start = Some(p.billing_window_start);
                    row.billing_window_end = Some(p.billing_window_end);
                }
            }
            OrgEvent::TeamCreated(t) => {
                let row = Team {
                    team_id: t.team_id,
                    org_id: org,
                    name: t.name,
                    created_at: at,
                };
                if !self.teams.insert(tx, row).await? {
                    return Err(twice("a team"));
                }
            }
            OrgEvent::TeamMemberAdded(m) => self.team_members.put(TeamMember {
                team_id: m.team_id,
                org_id: org,
                user_id: m.user_id,
                team_role: m.team_role,
            }),
            OrgEvent::TeamMemberRemoved(m) => {
                self.team_members
                    .delete(tx, &(m.team_id, m.user_id))
                    .await?
            }
            OrgEvent::SlugClaimed(_) => {}
        }
        if moves_lane {
            self.move_lane(tx, org).await?;
        }
        Ok(())
    }
}

impl Batch {
    /// The developer terms version in force.
    async fn terms_in_force(&mut self, tx: &Transaction<'_>) -> Result<String, ProjectionError> {
        if self.terms_in_force.is_none() {
            let stmt = tx
                .prepare_cached(
                    "SELECT version FROM developer_terms ORDER BY position DESC LIMIT 1",
                )
                .await?;
            self.terms_in_force = Some(tx.query_opt(&stmt, &[]).await?.map(|r| r.get(0)));
        }
        Ok(self
            .terms_in_force
            .clone()
            .flatten()
            .unwrap_or_else(|| INITIAL_TERMS.to_owned()))
    }

    /// Decides `org`'s next step from its rows.
    async fn move_lane(&mut self, tx: &Transaction<'_>, org: Uuid) -> Result<(), ProjectionError> {
        let terms = self.terms_in_force(tx).await?;
        let Some(row) = self.orgs.get(tx, &org).await? else {
            return Ok(());
        };
        let sandbox = match row.sandbox_state.as_str() {
            "requested" => Sandbox::Requested,
            "granted" => Sandbox::Granted(row.sandbox_tenant_id.unwrap_or_default()),
            _ => Sandbox::None,
        };
        let progress = LaneProgress {
            first_key: row.first_key_at.is_some(),
            usage: row.usage_at.is_some(),
            webhook: row.webhook_at.is_some(),
        };
        let terms_accepted = row.terms_version.as_deref() == Some(terms.as_str());
        let production = match row.production_state.as_str() {
            "none" => None,
            state => {
                let mut open_step = None;
                for (i, step) in REVIEW_STEPS.iter().enumerate() {
                    let key = (org, (*step).to_owned());
                    let done = self
                        .steps
                        .get(tx, &key)
                        .await?
                        .is_some_and(|s| s.state == "completed");
                    if !done {
                        open_step = Some(i);
                        break;
                    }
                }
                Some(ReviewProgress {
                    granted: state == "granted",
                    open_step,
                })
            }
        };
        let step = Lane {
            terms_accepted,
            sandbox,
            production,
            progress,
        }
        .next_step();
        if let Some(row) = self.orgs.get_mut(tx, &org).await? {
            row.next_step = step.to_owned();
        }
        Ok(())
    }

    /// Records a first key, first usage or first webhook endpoint of an
    /// organisation; whether it was its first (the lane may move).
    async fn lane_progress(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<Option<Uuid>, ProjectionError> {
        let (org, field): (Uuid, LaneMark) =
            if let Some(KeyEvent::Issued(k)) = crate::decode(e, KeyEvent::decode)? {
                (k.org_id, |o| &mut o.first_key_at)
            } else if let Some(UsageEvent::Recorded(u)) = crate::decode(e, UsageEvent::decode)? {
                if u.calls == 0 {
                    return Ok(None);
                }
                (u.org_id, |o| &mut o.usage_at)
            } else if let Some(WebhookEvent::Created(c)) = crate::decode(e, WebhookEvent::decode)? {
                (c.org_id, |o| &mut o.webhook_at)
            } else {
                return Ok(None);
            };
        let Some(row) = self.orgs.get_mut(tx, &org).await? else {
            return Ok(None);
        };
        let at = field(row);
        if at.is_some() {
            return Ok(None);
        }
        *at = Some(e.recorded_at);
        Ok(Some(org))
    }
}
