//! Organisations, their members, invitations and production review, and the
//! developer terms versions in force: the membership checks of every
//! org-scoped read, the members page, `/v1/me`'s memberships, the onboarding
//! lane, and the staff queue of sandbox and production requests.

mod apply;
pub mod read;

use async_trait::async_trait;
use std::sync::LazyLock;

use deadpool_postgres::Transaction;
use event_schemas::org::{OrgEvent, TermsEvent};
use event_schemas::RecordedEvent;

use crate::{Projection, ProjectionError};

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

#[async_trait]
impl Projection for Orgs {
    fn name(&self) -> &'static str {
        "orgs"
    }

    fn version(&self) -> u32 {
        // 6: invitations keep the sealed email and the inviter.
        // 7: the lane's first key and usage.
        // 8: and its first webhook endpoint.
        // 9: batch-shaped; the lane decided from these rows.
        9
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
         CREATE TABLE developer_terms (
             position     BIGINT PRIMARY KEY,
             version      TEXT NOT NULL,
             published_at TIMESTAMPTZ NOT NULL
         );"
    }

    fn indexes(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS teams_org_idx ON teams (org_id);
         CREATE INDEX IF NOT EXISTS members_user_idx ON members (user_id);
         CREATE INDEX IF NOT EXISTS invitations_org_idx ON invitations (org_id, created_at, invitation_id);"
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
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        apply::apply(tx, events).await
    }
}
