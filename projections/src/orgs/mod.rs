//! Organisations, their members, invitations and production review, and the
//! developer terms versions in force: the membership checks of every
//! org-scoped read, the members page, `/v1/me`'s memberships, the onboarding
//! lane, and the staff queue of sandbox and production requests.

pub mod read;

use async_trait::async_trait;
use std::sync::LazyLock;

use event_schemas::org::{OrgEvent, TermsEvent, TERMS_STREAM};
use event_schemas::RecordedEvent;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::{Projection, ProjectionError};

/// The production review steps, in order (mirrors `domain::orgs::REVIEW_STEPS`).
const REVIEW_STEPS: [&str; 4] = [
    "consent_review",
    "billing_setup",
    "integration_verification",
    "audit_ready",
];

/// The organisations read model.
pub struct Orgs;

static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    OrgEvent::TYPES
        .iter()
        .chain(TermsEvent::TYPES)
        .chain(&[
            "api_key.issued",
            "usage.recorded",
            "webhook.endpoint_created",
        ])
        .copied()
        .collect()
});

fn org_id(e: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    e.stream_id
        .strip_prefix("org-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("organisation event on stream {}", e.stream_id),
        })
}

/// The next step of organisation `org` as of event `e`, decided by the
/// domain's own rules over its stream up to `e` and the lane progress this
/// read model recorded (so a rebuild gives the same lane).
async fn lane_step(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    org_id: Uuid,
) -> Result<&'static str, ProjectionError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {} FROM public.events WHERE stream_id = $1 AND global_position <= $2 \
                 ORDER BY stream_version",
                event_store::postgres::EVENT_COLUMNS
            ),
            &[&format!("org-{org_id}"), &(e.global_position as i64)],
        )
        .await?;
    let progress = tx
        .query_opt(
            "SELECT first_key_at IS NOT NULL, usage_at IS NOT NULL, webhook_at IS NOT NULL \
             FROM orgs WHERE org_id = $1",
            &[&org_id],
        )
        .await?
        .map_or(Default::default(), |r| domain::orgs::LaneProgress {
            first_key: r.get(0),
            usage: r.get(1),
            webhook: r.get(2),
        });
    let terms_in_force = tx
        .query_opt(
            "SELECT version FROM developer_terms ORDER BY position DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    let mut org = domain::orgs::Org {
        terms_in_force,
        ..Default::default()
    };
    for row in &rows {
        let recorded = event_store::postgres::decode_row(row)?;
        let decoded = crate::decode(&recorded, OrgEvent::decode)?;
        if let Some(event) = decoded {
            org.apply(&event)
                .map_err(|reason| ProjectionError::Invariant {
                    position: recorded.global_position,
                    reason,
                })?;
        }
    }
    Ok(org.next_step_with(progress))
}

/// Records a first key, first usage or first webhook endpoint of an
/// organisation; the organisation whose lane may move, if it was its first.
async fn lane_progress(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
) -> Result<Option<Uuid>, ProjectionError> {
    use event_schemas::key::{KeyEvent, UsageEvent};
    let (org, column) = if let Some(KeyEvent::Issued(k)) = crate::decode(e, KeyEvent::decode)? {
        (k.org_id, "first_key_at")
    } else if let Some(UsageEvent::Recorded(u)) = crate::decode(e, UsageEvent::decode)? {
        if u.calls == 0 {
            return Ok(None);
        }
        (u.org_id, "usage_at")
    } else if let Some(event_schemas::webhook::WebhookEvent::Created(c)) =
        crate::decode(e, event_schemas::webhook::WebhookEvent::decode)?
    {
        (c.org_id, "webhook_at")
    } else {
        return Ok(None);
    };
    let first = tx
        .execute(
            &format!("UPDATE orgs SET {column} = $2 WHERE org_id = $1 AND {column} IS NULL"),
            &[&org, &e.recorded_at],
        )
        .await?;
    Ok((first == 1).then_some(org))
}

#[async_trait]
impl Projection for Orgs {
    fn name(&self) -> &'static str {
        "orgs"
    }

    fn version(&self) -> u32 {
        // 6: invitations keep the sealed email and the inviter.
        // 7: the lane's first key and usage.
        // 8: and its first webhook endpoint.
        8
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE orgs (
             org_id        UUID PRIMARY KEY,
             slug          TEXT NOT NULL UNIQUE,
             name          TEXT NOT NULL,
             terms_version TEXT,
             sandbox_state TEXT NOT NULL DEFAULT 'none',
             sandbox_tenant_id UUID,
             sandbox_requested_at TIMESTAMPTZ,
             production_state TEXT NOT NULL DEFAULT 'none',
             production_requested_at TIMESTAMPTZ,
             plan          TEXT,
             modules       TEXT[] NOT NULL DEFAULT '{}',
             monthly_call_limit BIGINT,
             subscription_state TEXT,
             billing_window_start TIMESTAMPTZ,
             billing_window_end   TIMESTAMPTZ,
             next_step     TEXT NOT NULL DEFAULT 'accept_developer_terms',
             first_key_at  TIMESTAMPTZ,
             webhook_at    TIMESTAMPTZ,
             usage_at      TIMESTAMPTZ,
             created_at    TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE teams (
             team_id    UUID PRIMARY KEY,
             org_id     UUID NOT NULL,
             name       TEXT NOT NULL,
             created_at TIMESTAMPTZ NOT NULL
         );
         CREATE INDEX teams_org_idx ON teams (org_id);
         CREATE TABLE team_members (
             team_id   UUID NOT NULL,
             org_id    UUID NOT NULL,
             user_id   UUID NOT NULL,
             team_role TEXT NOT NULL,
             PRIMARY KEY (team_id, user_id)
         );
         CREATE TABLE review_steps (
             org_id     UUID NOT NULL,
             step       TEXT NOT NULL,
             state      TEXT NOT NULL,
             reason     TEXT,
             decided_at TIMESTAMPTZ,
             PRIMARY KEY (org_id, step)
         );
         CREATE TABLE members (
             org_id    UUID NOT NULL,
             user_id   UUID NOT NULL,
             role      TEXT NOT NULL,
             joined_at TIMESTAMPTZ NOT NULL,
             PRIMARY KEY (org_id, user_id)
         );
         CREATE INDEX members_user_idx ON members (user_id);
         CREATE TABLE invitations (
             invitation_id UUID PRIMARY KEY,
             org_id        UUID NOT NULL,
             role          TEXT NOT NULL,
             status        TEXT NOT NULL,
             expires_at    TIMESTAMPTZ NOT NULL,
             created_at    TIMESTAMPTZ NOT NULL,
             email_sealed  TEXT NOT NULL,
             invited_by    UUID
         );
         CREATE INDEX invitations_org_idx ON invitations (org_id, created_at, invitation_id);
         CREATE TABLE developer_terms (
             position     BIGINT PRIMARY KEY,
             version      TEXT NOT NULL,
             published_at TIMESTAMPTZ NOT NULL
         );"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "orgs",
            "members",
            "invitations",
            "review_steps",
            "teams",
            "team_members",
            "developer_terms",
        ]
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES.as_slice())
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            if e.stream_id == TERMS_STREAM {
                if let Some(TermsEvent::Published(p)) = crate::decode(e, TermsEvent::decode)? {
                    tx.execute(
                        "INSERT INTO developer_terms (position, version, published_at) VALUES ($1, $2, $3)",
                        &[&(e.global_position as i64), &p.version, &e.recorded_at],
                    )
                    .await?;
                    // Every organisation that has not accepted this version
                    // (none yet) is back to accepting the terms.
                    tx.execute(
                        "UPDATE orgs SET next_step = 'accept_developer_terms' \
                         WHERE terms_version IS DISTINCT FROM $1",
                        &[&p.version],
                    )
                    .await?;
                }
                continue;
            }
            if let Some(org) = lane_progress(tx, e).await? {
                let step = lane_step(tx, e, org).await?;
                tx.execute(
                    "UPDATE orgs SET next_step = $2 WHERE org_id = $1",
                    &[&org, &step],
                )
                .await?;
                continue;
            }
            let decoded = crate::decode(e, OrgEvent::decode)?;
            let Some(event) = decoded else { continue };
            if matches!(event, OrgEvent::SlugClaimed(_)) {
                continue;
            }
            let org = org_id(e)?;
            let at = &e.recorded_at;
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
            match event {
                OrgEvent::Created(c) => {
                    tx.execute(
                        "INSERT INTO orgs (org_id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
                        &[&org, &c.slug, &c.name, at],
                    )
                    .await?;
                }
                OrgEvent::MemberAdded(m) => {
                    tx.execute(
                        "INSERT INTO members (org_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
                        &[&org, &m.user_id, &m.role, at],
                    )
                    .await?;
                }
                OrgEvent::MemberRoleChanged(m) => {
                    tx.execute(
                        "UPDATE members SET role = $3 WHERE org_id = $1 AND user_id = $2",
                        &[&org, &m.user_id, &m.to],
                    )
                    .await?;
                }
                OrgEvent::MemberRemoved(m) => {
                    tx.execute(
                        "DELETE FROM members WHERE org_id = $1 AND user_id = $2",
                        &[&org, &m.user_id],
                    )
                    .await?;
                    tx.execute(
                        "DELETE FROM team_members WHERE org_id = $1 AND user_id = $2",
                        &[&org, &m.user_id],
                    )
                    .await?;
                }
                OrgEvent::InvitationCreated(i) => {
                    let invited_by = e
                        .parsed_metadata()
                        .ok()
                        .and_then(|m| m.actor.id)
                        .and_then(|id| id.parse::<Uuid>().ok());
                    tx.execute(
                        "INSERT INTO invitations (invitation_id, org_id, role, status, expires_at, \
                             created_at, email_sealed, invited_by) \
                         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7)",
                        &[&i.invitation_id, &org, &i.role, &i.expires_at, at, &i.email.0, &invited_by],
                    )
                    .await?;
                }
                OrgEvent::InvitationAccepted(i) => {
                    tx.execute(
                        "UPDATE invitations SET status = 'accepted' WHERE invitation_id = $1",
                        &[&i.invitation_id],
                    )
                    .await?;
                }
                OrgEvent::InvitationRevoked(i) => {
                    tx.execute(
                        "UPDATE invitations SET status = 'revoked' WHERE invitation_id = $1",
                        &[&i.invitation_id],
                    )
                    .await?;
                }
                OrgEvent::TermsAccepted(t) => {
                    tx.execute(
                        "UPDATE orgs SET terms_version = $2 WHERE org_id = $1",
                        &[&org, &t.version],
                    )
                    .await?;
                }
                OrgEvent::SandboxRequested(_) => {
                    tx.execute(
                        "UPDATE orgs SET sandbox_state = 'requested', sandbox_requested_at = $2 WHERE org_id = $1",
                        &[&org, at],
                    )
                    .await?;
                }
                OrgEvent::SandboxGranted(g) => {
                    tx.execute(
                        "UPDATE orgs SET sandbox_state = 'granted', sandbox_tenant_id = $2 WHERE org_id = $1",
                        &[&org, &g.sandbox_tenant_id],
                    )
                    .await?;
                }
                OrgEvent::ProductionRequested(_) => {
                    tx.execute(
                        "UPDATE orgs SET production_state = 'in_review', production_requested_at = $2 \
                         WHERE org_id = $1",
                        &[&org, at],
                    )
                    .await?;
                    tx.execute(
                        "INSERT INTO review_steps (org_id, step, state) \
                         SELECT $1, s, 'pending' FROM unnest($2::text[]) AS s",
                        &[&org, &REVIEW_STEPS.as_slice()],
                    )
                    .await?;
                }
                OrgEvent::ProductionStepCompleted(c) => {
                    tx.execute(
                        "UPDATE review_steps SET state = 'completed', reason = NULL, decided_at = $3 \
                         WHERE org_id = $1 AND step = $2",
                        &[&org, &c.step, at],
                    )
                    .await?;
                }
                OrgEvent::ProductionStepRejected(r) => {
                    tx.execute(
                        "UPDATE review_steps SET state = 'rejected', reason = $3, decided_at = $4 \
                         WHERE org_id = $1 AND step = $2",
                        &[&org, &r.step, &r.reason, at],
                    )
                    .await?;
                }
                OrgEvent::SandboxPromoted(_) => {
                    tx.execute(
                        "UPDATE orgs SET production_state = 'granted' WHERE org_id = $1",
                        &[&org],
                    )
                    .await?;
                }
                OrgEvent::PlanSet(p) => {
                    tx.execute(
                        "UPDATE orgs SET plan = $2, modules = $3, monthly_call_limit = $4, \
                         subscription_state = $5, billing_window_start = $6, billing_window_end = $7 \
                         WHERE org_id = $1",
                        &[
                            &org,
                            &p.plan,
                            &p.modules,
                            &(p.monthly_call_limit.min(i64::MAX as u64) as i64),
                            &p.subscription_state,
                            &p.billing_window_start,
                            &p.billing_window_end,
                        ],
                    )
                    .await?;
                }
                OrgEvent::TeamCreated(t) => {
                    tx.execute(
                        "INSERT INTO teams (team_id, org_id, name, created_at) VALUES ($1, $2, $3, $4)",
                        &[&t.team_id, &org, &t.name, at],
                    )
                    .await?;
                }
                OrgEvent::TeamMemberAdded(m) => {
                    tx.execute(
                        "INSERT INTO team_members (team_id, org_id, user_id, team_role) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (team_id, user_id) DO UPDATE SET team_role = excluded.team_role",
                        &[&m.team_id, &org, &m.user_id, &m.team_role],
                    )
                    .await?;
                }
                OrgEvent::TeamMemberRemoved(m) => {
                    tx.execute(
                        "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2",
                        &[&m.team_id, &m.user_id],
                    )
                    .await?;
                }
                OrgEvent::SlugClaimed(_) => {}
            }
            if moves_lane {
                let step = lane_step(tx, e, org).await?;
                tx.execute(
                    "UPDATE orgs SET next_step = $2 WHERE org_id = $1",
                    &[&org, &step],
                )
                .await?;
            }
        }
        Ok(())
    }
}
