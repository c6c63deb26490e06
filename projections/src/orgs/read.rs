//! Typed queries over the `orgs` read model (the views `rm.<table>`), for the API, the console and the tools.
//!
//! Organisations (plan, onboarding lane, environments), members (with the
//! sealed names and emails of `rm.users`, opened by the caller), teams,
//! invitations, the review steps and the developer terms.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::{Error, Row};
use uuid::Uuid;

use crate::read_models::{keyset, Keyset, TimeKey};

/// A member's role in an organisation, as stored (`owner`, `manager`...).
pub async fn member_role(
    client: &impl GenericClient,
    org: Uuid,
    user: Uuid,
) -> Result<Option<String>, Error> {
    Ok(client
        .query_opt(
            "SELECT role FROM rm.members WHERE org_id = $1 AND user_id = $2",
            &[&org, &user],
        )
        .await?
        .map(|r| r.get(0)))
}

/// An organisation's plan as staff set it (every column `None`, and no
/// modules, before they have).
#[derive(Debug, Clone)]
pub struct PlanRow {
    /// Plan name.
    pub plan: Option<String>,
    /// Modules.
    pub modules: Vec<String>,
    /// Platform calls per billing window.
    pub monthly_call_limit: Option<i64>,
    /// `trialing`, `active`, `past_due` or `canceled`.
    pub subscription_state: Option<String>,
    /// The plan's billing window start.
    pub billing_window_start: Option<DateTime<Utc>>,
    /// The plan's billing window end.
    pub billing_window_end: Option<DateTime<Utc>>,
}

/// The organisation's plan (an error when the read model has no row for
/// the organisation).
pub async fn plan(client: &impl GenericClient, org: Uuid) -> Result<PlanRow, Error> {
    let row = client
        .query_one(
            "SELECT plan, modules, monthly_call_limit, subscription_state, \
             billing_window_start, billing_window_end FROM rm.orgs WHERE org_id = $1",
            &[&org],
        )
        .await?;
    Ok(PlanRow {
        plan: row.get(0),
        modules: row.get(1),
        monthly_call_limit: row.get(2),
        subscription_state: row.get(3),
        billing_window_start: row.get(4),
        billing_window_end: row.get(5),
    })
}

/// What the onboarding lane counts beyond the organisation's own stream.
#[derive(Debug, Clone, Copy)]
pub struct LaneRow {
    /// An API key was issued for one of its apps.
    pub first_key: bool,
    /// Calls were verified.
    pub usage: bool,
    /// A webhook endpoint was created for one of its apps.
    pub webhook: bool,
}

/// The organisation's lane progress, if the read model has it yet.
pub async fn lane(client: &impl GenericClient, org: Uuid) -> Result<Option<LaneRow>, Error> {
    Ok(client
        .query_opt(
            "SELECT first_key_at IS NOT NULL, usage_at IS NOT NULL, webhook_at IS NOT NULL \
             FROM rm.orgs WHERE org_id = $1",
            &[&org],
        )
        .await?
        .map(|r| LaneRow {
            first_key: r.get(0),
            usage: r.get(1),
            webhook: r.get(2),
        }))
}

/// The organisation's name.
pub async fn org_name(client: &impl GenericClient, org: Uuid) -> Result<Option<String>, Error> {
    Ok(client
        .query_opt("SELECT name FROM rm.orgs WHERE org_id = $1", &[&org])
        .await?
        .map(|r| r.get(0)))
}

/// A pending sandbox or production request in the staff queue.
#[derive(Debug, Clone)]
pub struct QueueRow {
    /// Organisation id.
    pub org_id: Uuid,
    /// Its slug.
    pub slug: String,
    /// `sandbox` or `production`.
    pub kind: String,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Production steps not yet completed.
    pub open_steps: Vec<String>,
}

/// A page of the pending sandbox and production requests, oldest first.
pub async fn staff_queue(
    client: &impl GenericClient,
    page: Keyset,
) -> Result<Vec<(TimeKey, QueueRow)>, Error> {
    // An org is in at most one queue: production review needs sandbox granted.
    let select = "SELECT * FROM ( \
             SELECT o.org_id, o.slug, 'sandbox' AS kind, o.sandbox_requested_at AS at, \
                    ARRAY[]::text[] AS open_steps \
             FROM rm.orgs o WHERE o.sandbox_state = 'requested' \
             UNION ALL \
             SELECT o.org_id, o.slug, 'production', o.production_requested_at, \
                    ARRAY(SELECT s.step FROM rm.review_steps s \
                          WHERE s.org_id = o.org_id AND s.state <> 'completed' ORDER BY s.step) \
             FROM rm.orgs o WHERE o.production_state = 'in_review') q WHERE true";
    keyset(client, select, ("at", "org_id"), &[], page, |r| QueueRow {
        org_id: r.get(0),
        slug: r.get(1),
        kind: r.get(2),
        requested_at: r.get(3),
        open_steps: r.get(4),
    })
    .await
}

/// The onboarding lane as the read model holds it.
#[derive(Debug, Clone)]
pub struct OnboardingRow {
    /// The exact next step.
    pub next_step: String,
    /// Whether the developer terms in force are accepted.
    pub terms_accepted: bool,
    /// `none`, `requested` or `granted`.
    pub sandbox_state: String,
    /// The linked sandbox tenant, once granted.
    pub sandbox_tenant_id: Option<Uuid>,
    /// `none`, `in_review` or `granted`.
    pub production_state: String,
}

/// The organisation's onboarding lane; the terms in force are the newest
/// published, else `initial_terms` (an error when the read model has no
/// row for the organisation).
pub async fn onboarding(
    client: &impl GenericClient,
    org: Uuid,
    initial_terms: &str,
) -> Result<OnboardingRow, Error> {
    let row = client
        .query_one(
            "SELECT next_step, terms_version IS NOT DISTINCT FROM COALESCE( \
                 (SELECT version FROM rm.developer_terms ORDER BY position DESC LIMIT 1), $2), \
             sandbox_state, sandbox_tenant_id, production_state \
             FROM rm.orgs WHERE org_id = $1",
            &[&org, &initial_terms],
        )
        .await?;
    Ok(OnboardingRow {
        next_step: row.get(0),
        terms_accepted: row.get(1),
        sandbox_state: row.get(2),
        sandbox_tenant_id: row.get(3),
        production_state: row.get(4),
    })
}

/// One production review step.
#[derive(Debug, Clone)]
pub struct ReviewStepRow {
    /// Its name.
    pub step: String,
    /// `pending`, `completed` or `rejected`.
    pub state: String,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// The organisation's review steps, in the order of `order` (step names).
pub async fn review_steps(
    client: &impl GenericClient,
    org: Uuid,
    order: &[&str],
) -> Result<Vec<ReviewStepRow>, Error> {
    Ok(client
        .query(
            "SELECT step, state, reason FROM rm.review_steps WHERE org_id = $1 \
             ORDER BY array_position($2::text[], step)",
            &[&org, &order],
        )
        .await?
        .iter()
        .map(|r| ReviewStepRow {
            step: r.get(0),
            state: r.get(1),
            reason: r.get(2),
        })
        .collect())
}

/// A member before their personal data is opened.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// User id.
    pub user_id: Uuid,
    /// Role.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Their name, sealed under their key (`None` without an account row).
    pub name_sealed: Option<String>,
    /// Their email, sealed under their key.
    pub email_sealed: Option<String>,
}

const MEMBER_SELECT: &str = "SELECT m.user_id, m.role, m.joined_at, u.name_sealed, u.email_sealed \
     FROM rm.members m LEFT JOIN rm.users u ON u.user_id = m.user_id WHERE m.org_id = $1";

fn member_row(r: &Row) -> MemberRow {
    MemberRow {
        user_id: r.get(0),
        role: r.get(1),
        joined_at: r.get(2),
        name_sealed: r.get(3),
        email_sealed: r.get(4),
    }
}

/// A page of the organisation's members, by when they joined.
pub async fn members(
    client: &impl GenericClient,
    org: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, MemberRow)>, Error> {
    let key = ("m.joined_at", "m.user_id");
    keyset(client, MEMBER_SELECT, key, &[&org], page, member_row).await
}

/// One member of the organisation.
pub async fn member(
    client: &impl GenericClient,
    org: Uuid,
    user: Uuid,
) -> Result<Option<MemberRow>, Error> {
    Ok(client
        .query_opt(
            &format!("{MEMBER_SELECT} AND m.user_id = $2"),
            &[&org, &user],
        )
        .await?
        .as_ref()
        .map(member_row))
}

/// An organisation a user belongs to, as their account page shows it.
#[derive(Debug, Clone)]
pub struct MembershipRow {
    /// The organisation.
    pub org_id: Uuid,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// The user's role.
    pub role: String,
    /// The developer terms version it accepted.
    pub terms_version: Option<String>,
    /// Its next onboarding step.
    pub next_step: String,
}

/// The user's organisations, in the order they joined them.
pub async fn memberships(
    client: &impl GenericClient,
    user: Uuid,
) -> Result<Vec<MembershipRow>, Error> {
    Ok(client
        .query(
            "SELECT o.org_id, o.slug, o.name, m.role, o.terms_version, o.next_step \
             FROM rm.members m JOIN rm.orgs o USING (org_id) \
             WHERE m.user_id = $1 ORDER BY m.joined_at, o.org_id",
            &[&user],
        )
        .await?
        .iter()
        .map(|r| MembershipRow {
            org_id: r.get(0),
            slug: r.get(1),
            name: r.get(2),
            role: r.get(3),
            terms_version: r.get(4),
            next_step: r.get(5),
        })
        .collect())
}

/// One team's row joined with one of its members (both member columns
/// `None` for a team without members).
#[derive(Debug, Clone)]
pub struct TeamMemberRow {
    /// The team.
    pub team_id: Uuid,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// A member.
    pub user_id: Option<Uuid>,
    /// Their team role (`admin` or `member`).
    pub team_role: Option<String>,
}

/// A page of the organisation's teams (at most `limit`, oldest first, after
/// `after`), each with its members, one row per member ordered by team then
/// user.
pub async fn teams(
    client: &impl GenericClient,
    org: Uuid,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<TeamMemberRow>, Error> {
    let (after_at, after_id) = after.unzip();
    Ok(client
        .query(
            "WITH page AS ( \
                 SELECT team_id, name, created_at FROM rm.teams WHERE org_id = $1 \
                 AND ($2::timestamptz IS NULL OR (created_at, team_id) > ($2, $3)) \
                 ORDER BY created_at, team_id LIMIT $4) \
             SELECT t.team_id, t.name, t.created_at, m.user_id, m.team_role FROM page t \
             LEFT JOIN rm.team_members m USING (team_id) \
             ORDER BY t.created_at, t.team_id, m.user_id",
            &[&org, &after_at, &after_id, &limit],
        )
        .await?
        .iter()
        .map(|r| TeamMemberRow {
            team_id: r.get(0),
            name: r.get(1),
            created_at: r.get(2),
            user_id: r.get(3),
            team_role: r.get(4),
        })
        .collect())
}

/// A pending invitation, its email still sealed.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    /// Id.
    pub invitation_id: Uuid,
    /// The invitee's email, sealed under the invitation's key.
    pub email_sealed: String,
    /// Role on acceptance.
    pub role: String,
    /// Who invited them.
    pub invited_by: Option<Uuid>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A page of the organisation's pending invitations that have not
/// expired, oldest first.
pub async fn pending_invitations(
    client: &impl GenericClient,
    org: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, InvitationRow)>, Error> {
    let select = "SELECT invitation_id, email_sealed, role, invited_by, created_at, expires_at \
         FROM rm.invitations WHERE org_id = $1 AND status = 'pending' AND expires_at > now()";
    keyset(
        client,
        select,
        ("created_at", "invitation_id"),
        &[&org],
        page,
        |r| InvitationRow {
            invitation_id: r.get(0),
            email_sealed: r.get(1),
            role: r.get(2),
            invited_by: r.get(3),
            created_at: r.get(4),
            expires_at: r.get(5),
        },
    )
    .await
}

/// The organisation an invitation is to.
pub async fn invitation_org(
    client: &impl GenericClient,
    invitation: Uuid,
) -> Result<Option<Uuid>, Error> {
    Ok(client
        .query_opt(
            "SELECT org_id FROM rm.invitations WHERE invitation_id = $1",
            &[&invitation],
        )
        .await?
        .map(|r| r.get(0)))
}
