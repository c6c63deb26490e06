//! Apps: create, read, update, delete; app team members (the Security
//! page); visibility and distribution requests; the private-install
//! allowlist; the developer dashboard.
//!
//! Commands load the app's stream and its organisation's stream and decide
//! with the domain's rules. Concurrency, per command: `PATCH /v1/apps/{app}`
//! with `If-Match: <version>` answers 409 `version-conflict` when the app
//! has moved on (the client re-reads and decides); without `If-Match`, and
//! for every other command, a concurrent change makes the server re-decide
//! on fresh state (up to 16 times, with jittered backoff), which is safe because each command
//! states its whole intent (fields to set, a member's role).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::{self, App, AppError, AppRole, Details, Visibility};
use domain::orgs::{Org, PLATFORM_API};
use event_schemas::app::{
    app_slug_stream, app_stream, AppEvent, AppSlug, AppSlugEvent, AppUpdated,
};
use event_schemas::{Actor, ExpectedVersion};
use event_store::StreamAppend;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::orgs::load as load_org;
use crate::authorize::{AppReader, WorkspaceReader};
use crate::command::{CommandIds, Committed, Plan, RequestMeta, SlugHolder};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Session};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

mod command;
mod crud;
mod dashboard;
mod distribution;
mod marketplace;
mod members;
mod security;
mod views;

pub(crate) use command::*;
pub use crud::*;
pub use dashboard::*;
pub use distribution::*;
pub use marketplace::*;
pub use members::*;
pub use security::*;
pub use views::*;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/apps", post(create_app).get(list_apps))
        .route("/v1/orgs/{org}/dashboard", get(dashboard))
        .route(
            "/v1/apps/{app}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route("/v1/apps/{app}/members", get(list_app_members))
        .route("/v1/apps/{app}/security", get(security))
        .route("/v1/marketplace", get(marketplace))
        .route(
            "/v1/apps/{app}/members/{user}",
            put(set_app_member).delete(remove_app_member),
        )
        .route("/v1/apps/{app}/visibility", post(set_visibility))
        .route("/v1/apps/{app}/allowlist", put(set_allowlist))
}
