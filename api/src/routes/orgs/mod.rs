//! Organisations: create, developer terms, invitations, members.
//!
//! Commands load the organisation from its own stream, decide with the
//! domain's rules (which also authorise), and append with the exact version
//! they decided on. On a concurrent change they re-load and decide again
//! (at most five times), so no update is lost and nobody gets a spurious
//! 409. Reads check membership in the read model: an outsider gets 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::orgs::{self, OrgError, PlatformTerms};
use domain::roles::{Permission, Role};
use event_schemas::org::{OrgEvent, OrgSlugClaimed, TERMS_STREAM};
use event_schemas::ExpectedVersion;
use event_store::{AppendError, StreamAppend};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authorize::OrgMember;
use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Session, Staff};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

mod create;
mod invitations;
mod members;
mod terms;

pub(crate) use crate::command::orgs::{execute, load, platform_terms, stream};
pub use create::*;
pub use invitations::*;
pub use members::*;
pub use terms::*;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs", post(create_org))
        .route("/v1/orgs/{org}/members", get(list_members))
        .route(
            "/v1/orgs/{org}/members/{user}",
            delete(remove_member).patch(change_role),
        )
        .route(
            "/v1/orgs/{org}/invitations",
            post(invite).get(list_invitations),
        )
        .route(
            "/v1/orgs/{org}/invitations/{invitation}/revoke",
            post(revoke_invitation),
        )
        .route(
            "/v1/invitations/{invitation}/accept",
            post(accept_invitation),
        )
        .route("/v1/invitations/accept", post(accept_invitation_with_token))
        .route("/v1/orgs/{org}/developer-terms/accept", post(accept_terms))
        .route("/v1/developer-terms", get(current_terms))
        .route("/v1/staff/developer-terms", post(publish_terms))
}
