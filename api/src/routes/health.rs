//! Liveness (`/healthz`) and readiness (`/readyz`: the database answers, and
//! each projection's lag behind the log head, failed ones named, and the
//! key-verification index loaded).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use projections::ProjectionState;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: `status` for anyone; the rest only for operators (the
/// gateway token or a staff session).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Why not ready, when the cause is not in the fields below (the log
    /// went backwards under this node). Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the database answered. Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<bool>,
    /// The log head. Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
    /// Each projection. Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projections: Option<Vec<ProjectionReadiness>>,
    /// This node's key-verification index. Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationReadiness>,
}

/// The key-verification index of this node.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationReadiness {
    /// Loaded and caught up with the log: `POST /v1/keys/verify` answers.
    pub ready: bool,
    /// Keys indexed.
    pub keys: usize,
    /// The last log position applied.
    pub position: u64,
    /// Keys refused for their shape or checksum, without a lookup.
    pub malformed: u64,
    /// Verifications that looked a key up.
    pub lookups: u64,
}

/// One projection's readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionReadiness {
    /// Name.
    pub name: &'static str,
    /// Checkpoint.
    pub position: u64,
    /// Events behind the head.
    pub lag: Option<u64>,
    /// `starting`, `active`, `standby` or `failed`.
    pub state: &'static str,
    /// The error of a failed projection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Ready when the database answers, the log has not gone backwards, the
/// verification index is loaded and no projection has failed. Anyone sees
/// the status; the details (positions, counters, error text) only an
/// operator presenting the gateway token or a staff session.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready (`status` only, unless the caller is an operator)", body = Readiness),
        (status = 503, description = "Not ready (`status` only, unless the caller is an operator)", body = Readiness)),
    security((), ("gateway" = []), ("bearer" = [])))]
pub async fn readyz(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let head = tokio::time::timeout(Duration::from_secs(2), state.store.head())
        .await
        .ok()
        .and_then(Result::ok);
    let projections: Vec<ProjectionReadiness> = state
        .statuses
        .snapshot()
        .into_iter()
        .map(|(name, s)| {
            let (label, error) = match s.state {
                ProjectionState::Starting => ("starting", None),
                ProjectionState::Active => ("active", None),
                ProjectionState::Standby => ("standby", None),
                ProjectionState::Failed { error, .. } => ("failed", Some(error)),
            };
            ProjectionReadiness {
                name,
                position: s.position,
                lag: head.map(|h| h.saturating_sub(s.position)),
                state: label,
                error,
            }
        })
        .collect();
    let index = state.index.stats();
    let rewound = state.log_guard.fenced();
    let ready = head.is_some()
        && rewound.is_none()
        && index.ready
        && projections.iter().all(|p| p.state != "failed");
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        reason: rewound.map(|r| r.to_string()),
        database: Some(head.is_some()),
        head,
        projections: Some(projections),
        verification: Some(VerificationReadiness {
            ready: index.ready,
            keys: index.keys,
            position: index.position,
            malformed: index.malformed,
            lookups: index.lookups,
        }),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if operator(&state, &headers).await {
        (status, Json(body)).into_response()
    } else {
        (
            status,
            Json(Readiness {
                status: body.status,
                reason: None,
                database: None,
                head: None,
                projections: None,
                verification: None,
            }),
        )
            .into_response()
    }
}

/// Whether the caller presents the gateway token or a staff session.
async fn operator(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    if crate::extract::is_gateway_token(state, token) {
        return true;
    }
    let (mut parts, ()) = axum::http::Request::builder()
        .header(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        )
        .body(())
        .map(|r| r.into_parts())
        .unwrap_or_else(|_| axum::http::Request::new(()).into_parts());
    use axum::extract::FromRequestParts;
    crate::extract::Staff::from_request_parts(&mut parts, state)
        .await
        .is_ok()
}
