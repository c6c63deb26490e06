//! The audit trail over HTTP: an organisation's history and the platform's
//! (readable entries, filtered and paged), their exports with a signed
//! manifest, and the published checkpoints with their public key.
//!
//! # Layout
//! - `entry`: one entry as a person reads it, rendered from the read model.
//! - `history`: the filters and the pages.
//! - `export`: JSON Lines and CSV exports ending with a signed manifest.
//! - `checkpoints`: `GET /v1/audit/checkpoints`, `GET /v1/audit/public-key`.
//! - `streams`: audit log streams to a SIEM, delivered as webhooks.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::roles::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authorize::OrgMember;
use crate::error::{ApiError, Problem};
use crate::extract::{MinPosition, Staff};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

mod checkpoints;
mod entry;
mod export;
mod history;
mod streams;

pub use checkpoints::*;
pub use entry::*;
pub use export::*;
pub use history::*;
pub use streams::*;

/// The audit routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/audit", get(org_audit))
        .route("/v1/orgs/{org}/audit/export", get(org_export))
        .route("/v1/staff/audit", get(staff_audit))
        .route("/v1/staff/audit/export", get(staff_export))
        .route("/v1/audit/checkpoints", get(checkpoints))
        .route("/v1/audit/public-key", get(public_key))
        .route(
            "/v1/orgs/{org}/audit/streams",
            post(create_stream).get(list_streams),
        )
        .route(
            "/v1/orgs/{org}/audit/streams/{id}",
            get(get_stream).delete(delete_stream),
        )
        .route(
            "/v1/orgs/{org}/audit/streams/{id}/enable",
            post(enable_stream),
        )
        .route(
            "/v1/orgs/{org}/audit/streams/{id}/rotate-secret",
            post(rotate_stream_secret),
        )
        .route(
            "/v1/orgs/{org}/audit/streams/{id}/deliveries",
            get(stream_deliveries),
        )
}
