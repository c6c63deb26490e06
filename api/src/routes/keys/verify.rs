//! `POST /v1/keys/verify`: the platform gateway's call on every request its
//! customers make. Served from the node's in-memory index: no database
//! round trip, no session lookup; the gateway authenticates with its own
//! bearer token (`--gateway-token`).

#[allow(unused_imports)]
use super::*;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The platform's gateway, authenticated by one of the configured tokens.
#[derive(Debug, Clone, Copy)]
pub struct Gateway;

impl FromRequestParts<AppState> for Gateway {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated)?;
        if crate::extract::is_gateway_token(state, token) {
            Ok(Gateway)
        } else {
            Err(ApiError::Unauthenticated)
        }
    }
}

/// `POST /v1/keys/verify` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The API key the gateway's caller presented.
    #[schema(max_length = 200)]
    pub key: String,
    /// The scope the call needs, if any.
    pub scope: Option<String>,
}

crate::redacted_debug!(VerifyRequest);

/// A verdict: always 200, `valid` or not with the `reason`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether the call may proceed.
    pub valid: bool,
    /// Why not: `unknown`, `revoked`, `expired`, `app_pending`,
    /// `app_suspended`, `app_deleted`, `quota_exceeded`, `rate_limited`,
    /// `scope_denied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "revoked")]
    pub reason: Option<&'static str>,
    /// The key, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// Its app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<Uuid>,
    /// The app's organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// `live` or `test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// What the key may do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The browser origins the key's app allows (`https://app.example.com`):
    /// a call from a browser whose `Origin` is not one of them should be
    /// refused by the gateway. Empty: no browser origin is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
    /// Calls left in the organisation's billing window (when it has a plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// When a rate-limited key may verify again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<DateTime<Utc>>,
}

impl From<verifier::Verdict> for VerifyResponse {
    fn from(v: verifier::Verdict) -> Self {
        let key = v.key.as_ref();
        VerifyResponse {
            valid: v.valid(),
            reason: v.reason.map(verifier::Reason::as_str),
            key_id: key.map(|k| k.key_id),
            app_id: key.map(|k| k.app_id),
            org_id: key.map(|k| k.org_id),
            mode: key.map(|k| k.mode.as_str()),
            scopes: key.map(|k| k.scopes.to_vec()),
            origins: key.map(|k| k.origins.to_vec()),
            remaining: v.remaining,
            reset_at: v.retry_at_ms.and_then(DateTime::from_timestamp_millis),
        }
    }
}

/// Verify an API key (the gateway's call). Answers from memory; 503 while
/// this node's index is loading.
#[utoipa::path(post, path = "/v1/keys/verify", tag = "gateway",
    request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = 503, body = Problem)),
    security(("gateway" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    _gateway: Gateway,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    if !state.index.is_ready() {
        return Err(ApiError::Unavailable {
            reason: "the verification index is loading",
            source: "not ready".into(),
        });
    }
    let verdict = state.index.verify(&body.key, body.scope.as_deref());
    Ok(Json(verdict.into()))
}
