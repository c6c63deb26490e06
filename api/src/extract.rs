//! Extractors: JSON bodies whose every rejection is a problem document,
//! `Gatehouse-Min-Position`, and the signed-in session.

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
        if !is_json(req.headers()) {
            return Err(ApiError::bad_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON with content-type application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::bad_body(status, "the body is larger than this server accepts")
                } else {
                    ApiError::bad_body(StatusCode::BAD_REQUEST, rejection.body_text())
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: none at all (an empty body) is `None`; anything
/// else is read as [`ApiJson`] reads it.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::bad_body(status, "the body is larger than this server accepts")
                } else {
                    ApiError::bad_body(StatusCode::BAD_REQUEST, rejection.body_text())
                }
            })?;
        if bytes.is_empty() {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(ApiError::bad_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON with content-type application/json",
            ));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads `bytes` as a `T`: syntax errors are 400 `malformed-body`; a body
/// of the wrong shape (a wrong type, a missing or unknown field) is 422
/// `invalid-body` naming the field by JSON pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The plain parse first: tracking the path costs on every body, and
    // only a refused one needs it (it is parsed again to name the field).
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut *de).map_err(|e| {
        let inner = e.inner();
        if !inner.is_data() {
            return ApiError::bad_body(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        let mut pointer = pointer_of(e.path());
        // serde names the missing or unknown field in its message, and the
        // path stops at the object holding it.
        for prefix in ["missing field `", "unknown field `"] {
            if let Some(field) = message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
            {
                if !pointer.ends_with(&format!("/{}", escape(field))) {
                    pointer.push('/');
                    pointer.push_str(&escape(field));
                }
            }
        }
        let detail = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::InvalidBody {
            errors: vec![domain::FieldError {
                pointer,
                detail: detail.clone(),
            }],
            detail,
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_body(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&escape(key));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// RFC 6901 escaping of one pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    fn pointer(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::InvalidBody { errors, .. }) => errors[0].pointer.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_of_the_wrong_shape_names_the_field_by_pointer() {
        assert_eq!(pointer(r#"{"name": 1, "items": []}"#), "/name");
        assert_eq!(
            pointer(r#"{"name": "a", "items": [{"count": 1}, {"count": "x"}]}"#),
            "/items/1/count"
        );
        assert_eq!(pointer(r#"{"items": []}"#), "/name");
        assert_eq!(pointer(r#"{"name": "a", "items": [{}]}"#), "/items/0/count");
        assert_eq!(
            pointer(r#"{"name": "a", "items": [], "admin": true}"#),
            "/admin"
        );
    }

    #[test]
    fn broken_json_is_malformed_not_invalid() {
        for text in ["{", "nul", r#"{"name": "a", "items": []} x"#] {
            let e = parse_json::<Body>(text.as_bytes()).unwrap_err();
            assert_eq!(e.status_code(), StatusCode::BAD_REQUEST, "{text}");
        }
    }
}

/// Path parameters; one that does not parse (an id that is not a UUID) is
/// 400 `invalid-path` naming what was expected, not a body error.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => Err(ApiError::BadBody {
                status: StatusCode::BAD_REQUEST,
                code: "invalid-path",
                detail: format!("a path parameter is invalid: {}", rejection.body_text()),
            }),
        }
    }
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
                .ok_or_else(|| ApiError::BadBody {
                    status: StatusCode::BAD_REQUEST,
                    code: "invalid-min-position",
                    detail: "Gatehouse-Min-Position must be a non-negative integer".into(),
                }),
        }
    }
}

impl MinPosition {
    /// Refuses (400) a position the log never reached: the client's
    /// mistake, not a read model behind, so no wait could satisfy it.
    pub async fn within_log(&self, state: &AppState) -> Result<(), ApiError> {
        let Some(p) = self.0 else { return Ok(()) };
        let head = event_store::EventStore::head(state.store.as_ref()).await?;
        if p > head {
            return Err(ApiError::BadBody {
                status: StatusCode::BAD_REQUEST,
                code: "invalid-min-position",
                detail: format!(
                    "Gatehouse-Min-Position {p} is past the log's last position {head}; send a \
                     Gatehouse-Position a response carried"
                ),
            });
        }
        Ok(())
    }

    /// Waits until the named read models have reached the position.
    pub async fn wait(
        self,
        state: &AppState,
        projections: &[&'static str],
    ) -> Result<(), ApiError> {
        let Some(p) = self.0 else { return Ok(()) };
        if state.read_models.reached(projections, p) {
            return Ok(());
        }
        self.within_log(state).await?;
        state
            .read_models
            .wait_for(projections, p, state.read_wait)
            .await?;
        Ok(())
    }
}

/// Whether `token` is one of the configured gateway tokens. Compared as
/// digests (equal length), each in constant time and all of them always,
/// so the time taken tells nothing of how close a guess came, nor which
/// token it was near.
pub fn is_gateway_token(state: &AppState, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    let found = state
        .gateway_tokens
        .iter()
        .fold(subtle::Choice::from(0), |found, t| found | t.ct_eq(&digest));
    found.into()
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
        // Already authenticated by an outer layer (the tenancy guard).
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(*session);
        }
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
        let now = Utc::now();
        let last_seen: chrono::DateTime<Utc> = row.get(4);
        if !domain::accounts::session_is_live(
            row.get(2),
            row.get(3),
            last_seen,
            state.session_idle,
            now,
        ) {
            return Err(ApiError::Unauthenticated);
        }
        let session = Session {
            session_id: row.get(0),
            user_id: row.get(1),
        };
        // Recorded at most once a minute: the idle timeout needs no finer
        // grain, and a request should not cost a write.
        if now - last_seen > chrono::Duration::minutes(1) {
            let client = state.pool.get().await?;
            client
                .execute(
                    "INSERT INTO session_activity (session_id, last_seen_at) VALUES ($1, $2) \
                     ON CONFLICT (session_id) DO UPDATE SET last_seen_at = \
                     GREATEST(session_activity.last_seen_at, EXCLUDED.last_seen_at)",
                    &[&session.session_id, &now],
                )
                .await?;
        }
        crate::audit::context::seal_for(
            state,
            &parts.method,
            parts
                .extensions
                .get::<crate::audit::client::RequestContext>(),
            session.user_id,
        )
        .await?;
        Ok(session)
    }
}

async fn find_session(
    state: &AppState,
    hash: &str,
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    let client = state.pool.get().await?;
    Ok(client
        .query_opt(
            "SELECT s.session_id, s.user_id, s.expires_at, s.ended_at IS NOT NULL, \
                    COALESCE(a.last_seen_at, s.started_at) \
             FROM rm.sessions s LEFT JOIN session_activity a USING (session_id) \
             WHERE s.token_hash = $1",
            &[&hash],
        )
        .await?)
}

/// Whether `user` is platform staff: granted, not revoked, and holding a
/// proven address (a grant made before addresses were proven does not
/// count until the account proves one).
pub async fn is_staff(state: &AppState, user: Uuid) -> Result<bool, ApiError> {
    let client = state.pool.get().await?;
    Ok(client
        .query_opt(
            "SELECT 1 FROM rm.staff s JOIN rm.users u USING (user_id) \
             WHERE s.user_id = $1 AND u.email_verified AND u.erased_at IS NULL",
            &[&user],
        )
        .await?
        .is_some())
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
        if !is_staff(state, session.user_id).await? {
            return Err(ApiError::Forbidden {
                code: "staff-only",
                detail: "this is for platform staff".into(),
                permission: None,
            });
        }
        Ok(Staff(session))
    }
}
