//! Extractors: JSON bodies whose every rejection is a problem document,
//! `Gatehouse-Min-Position`, and the signed-in session.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::Utc;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::MIN_POSITION_HEADER;

/// A JSON body; malformed JSON, a wrong content type, a body over the limit
/// and a body of the wrong shape each become a problem document.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let detail = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the body must be JSON with content-type application/json".to_owned()
        }
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "the body is larger than this server accepts".to_owned()
        }
        _ => rejection.body_text(),
    };
    ApiError::bad_body(status, detail)
}

/// The `Gatehouse-Min-Position` a read asks its read models to reach.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinPosition(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get(MIN_POSITION_HEADER) {
            None => Ok(MinPosition(None)),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(|p| MinPosition(Some(p)))
                .ok_or_else(|| {
                    ApiError::bad_body(
                        StatusCode::BAD_REQUEST,
                        "Gatehouse-Min-Position must be a non-negative integer",
                    )
                }),
        }
    }
}

impl MinPosition {
    /// Waits until the named read models have reached the position.
    pub async fn wait(
        self,
        state: &AppState,
        projections: &[&'static str],
    ) -> Result<(), ApiError> {
        if let Some(p) = self.0 {
            state
                .statuses
                .wait_for(projections, p, state.read_wait)
                .await?;
        }
        Ok(())
    }
}

/// The SHA-256 of a bearer token, hex: how tokens are stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A caller signed in with a session token (`Authorization: Bearer ...`).
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user_id: Uuid,
}

impl Session {
    /// The user actor recorded in events.
    pub fn actor(&self) -> event_schemas::Actor {
        event_schemas::Actor::user(self.user_id)
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let min = MinPosition::from_request_parts(parts, state).await?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        let hash = token_hash(token);
        let mut row = find_session(state, &hash).await?;
        if row.is_none() && min.0.is_some() {
            // A session started by a write the caller names may not be
            // projected yet; only then is waiting worth it.
            min.wait(state, &["accounts"]).await?;
            row = find_session(state, &hash).await?;
        }
        let row = row.ok_or(ApiError::Unauthenticated)?;
        if !domain::accounts::session_is_live(row.get(2), row.get(3), Utc::now()) {
            return Err(ApiError::Unauthenticated);
        }
        Ok(Session {
            session_id: row.get(0),
            user_id: row.get(1),
        })
    }
}

async fn find_session(
    state: &AppState,
    hash: &str,
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    let client = state.pool.get().await?;
    Ok(client
        .query_opt(
            "SELECT session_id, user_id, expires_at, ended_at IS NOT NULL \
             FROM rm.sessions WHERE token_hash = $1",
            &[&hash],
        )
        .await?)
}

/// A signed-in platform staff member.
#[derive(Debug, Clone, Copy)]
pub struct Staff(pub Session);

impl Staff {
    /// The staff actor recorded in events.
    pub fn actor(&self) -> event_schemas::Actor {
        event_schemas::Actor {
            kind: event_schemas::ActorKind::Staff,
            id: Some(self.0.user_id.to_string()),
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        let client = state.pool.get().await?;
        let staff = client
            .query_opt(
                "SELECT 1 FROM rm.staff WHERE user_id = $1",
                &[&session.user_id],
            )
            .await?
            .is_some();
        if !staff {
            return Err(ApiError::Forbidden {
                code: "staff-only",
                detail: "this is for platform staff".into(),
                permission: None,
            });
        }
        Ok(Staff(session))
    }
}
