//! The token endpoint (`POST /v1/oauth/token`, client credentials, with
//! RFC 6749 §5.2 errors), the JWKS, and the signing keys' rotation.
//!
//! A signing key is a random Ed25519 seed, sealed under the KEK in
//! `token_signing_keys` (resealed with every KEK rotation); the log carries
//! only its id and public half (`crate::oauth` makes and opens them).
//! Rotation (`POST /v1/staff/oauth/signing-keys/rotate`) adds a new one;
//! the previous stays published until the last token it signed has
//! expired. Keys of earlier versions were derived from the index key,
//! which outlives KEK rotations: a node that finds the newest key is one of
//! those rotates at start, so no token is signed with a derived key again.

#[allow(unused_imports)]
use super::*;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use domain::oauth::SigningKeys;
use event_schemas::oauth::SIGNING_KEYS_STREAM;
use verifier::token::{self, Claims};

use crate::extract::Staff;

/// A signing key rotation's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyRotated {
    /// The new key's id: tokens are signed with it from now on.
    pub kid: String,
    /// When the previous key stops verifying.
    pub previous_retires_at: Option<DateTime<Utc>>,
}

/// Rotate the token signing key (staff): new tokens are signed with a new
/// key; the previous one stays published until its tokens have expired.
#[utoipa::path(post, path = "/v1/staff/oauth/signing-keys/rotate", tag = "oauth",
    responses((status = 201, body = SigningKeyRotated), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    _staff: Staff,
) -> Result<Committed<SigningKeyRotated>, ApiError> {
    let (kid, position) = crate::oauth::add_signing_key(&state, false).await?;
    let keys = state
        .commands
        .load::<SigningKeys>(SIGNING_KEYS_STREAM)
        .await?;
    let previous = keys.keys.iter().rev().nth(1).and_then(|k| k.2);
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(SigningKeyRotated {
            kid,
            previous_retires_at: previous,
        }),
    })
}

/// One published key (RFC 8037 OKP JWK).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub alg: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// The JWKS.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// The keys tokens may be signed with now.
    pub keys: Vec<Jwk>,
}

/// The keys access tokens are signed with (the current one and, during a
/// rotation's overlap, the previous one).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth",
    responses((status = 200, body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, ApiError> {
    let keys = state
        .commands
        .load::<SigningKeys>(SIGNING_KEYS_STREAM)
        .await?;
    let now = crate::command::now();
    Ok(Json(Jwks {
        keys: keys
            .published(now)
            .map(|(kid, x, _)| Jwk {
                kty: "OKP",
                crv: "Ed25519",
                x: x.clone(),
                kid: kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            })
            .collect(),
    }))
}

/// A token request, as a form or as JSON.
#[derive(Deserialize, ToSchema)]
pub struct OAuthTokenRequest {
    /// `client_credentials`.
    pub grant_type: Option<String>,
    /// The client id (or in HTTP Basic authentication).
    pub client_id: Option<String>,
    /// The client secret (or in HTTP Basic authentication).
    pub client_secret: Option<String>,
    /// Space-separated scopes, among the client's (default: all of them).
    pub scope: Option<String>,
}

crate::redacted_debug!(OAuthTokenRequest);

/// An access token.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The scopes it carries.
    pub scope: String,
}

crate::redacted_debug!(TokenResponse);

/// An RFC 6749 §5.2 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, or `slow_down` (429).
    pub error: &'static str,
    /// For a person.
    pub error_description: String,
    #[serde(skip)]
    status: StatusCode,
}

fn oauth_error(
    status: StatusCode,
    error: &'static str,
    description: impl Into<String>,
) -> OAuthError {
    OAuthError {
        error,
        error_description: description.into(),
        status,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut res = (status, Json(self)).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<OAuthTokenRequest, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bad = |what: String| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", what);
    let mut req: OAuthTokenRequest = match content_type.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(body)
            .map_err(|e| bad(format!("the form does not read: {e}")))?,
        "application/json" => {
            serde_json::from_slice(body).map_err(|e| bad(format!("the JSON does not read: {e}")))?
        }
        _ => {
            return Err(bad(
                "send application/x-www-form-urlencoded (or application/json)".into(),
            ))
        }
    };
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Basic credentials do not read",
                )
            })?;
        let (id, secret) = decoded.split_once(':').ok_or_else(|| {
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Basic credentials do not read",
            )
        })?;
        if req.client_secret.is_some() {
            return Err(bad(
                "authenticate one way: HTTP Basic or the body, not both".into(),
            ));
        }
        req.client_id = Some(id.to_owned());
        req.client_secret = Some(secret.to_owned());
    }
    Ok(req)
}

/// Exchange client credentials for a short-lived access token (RFC 6749
/// §4.4), a JWT in the RFC 9068 profile signed with EdDSA (keys at
/// `/.well-known/jwks.json`). `POST /v1/keys/verify` accepts it.
#[utoipa::path(post, path = "/v1/oauth/token", tag = "oauth",
    request_body(content = OAuthTokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError),
        (status = 401, body = OAuthError), (status = 429, body = OAuthError)))]
pub async fn token(
    State(state): State<AppState>,
    context: Option<axum::Extension<crate::audit::client::RequestContext>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let address = context.as_ref().map_or("unknown", |c| c.client_ip());
    match issue_token(&state, address, &headers, &body).await {
        Ok(t) => {
            let mut res = Json(t).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(Ok(e)) => e.into_response(),
        Err(Err(e)) => e.into_response(),
    }
}

async fn issue_token(
    state: &AppState,
    address: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, Result<OAuthError, ApiError>> {
    let req = parse_request(headers, body).map_err(Ok)?;
    match req.grant_type.as_deref() {
        Some("client_credentials") => {}
        None => {
            return Err(Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            )))
        }
        Some(_) => {
            return Err(Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            )))
        }
    }
    let slow_down = |what: &str| {
        Ok(oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            format!("too many {what}; retry later"),
        ))
    };
    // Reserved before the secret is checked, given back when it was right.
    let failure_key = address.to_owned();
    if state.oauth.failures.reserve(&failure_key).is_err() {
        return Err(slow_down("failed authentications from this address"));
    }
    let invalid_client = || {
        Ok(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        ))
    };
    let client_id = req
        .client_id
        .as_deref()
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or_else(invalid_client)?;
    let secret = req.client_secret.as_deref().ok_or_else(invalid_client)?;
    let now = crate::command::now();
    let client = state
        .commands
        .load::<OAuthClient>(&oauth_client_stream(client_id))
        .await
        .map_err(Err)?;
    if !client.exists || !client.accepts(&format::hash_hex(&format::hash(secret)), now) {
        return Err(invalid_client());
    }
    state.oauth.failures.release(&failure_key);
    if state
        .oauth
        .issued
        .reserve(&format!("{client_id} {address}"))
        .is_err()
    {
        return Err(slow_down("token requests for this client"));
    }
    let app = state
        .commands
        .load::<domain::apps::App>(&event_schemas::app::app_stream(client.app_id))
        .await
        .map_err(Err)?;
    let mode = client.mode.ok_or_else(invalid_client)?;
    match app.status() {
        domain::apps::Status::Active => {}
        domain::apps::Status::Deleted => return Err(invalid_client()),
        other => {
            return Err(Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                format!("the client's app is {}", other.as_str()),
            )))
        }
    }
    let allowed: Vec<String> = if client.scopes.is_empty() {
        app.approved_scopes(mode).into_iter().collect()
    } else {
        client.scopes.clone()
    };
    let scope = match req
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => allowed.join(" "),
        Some(asked) => {
            if let Some(bad) = asked
                .split_whitespace()
                .find(|s| !allowed.iter().any(|a| a == s))
            {
                return Err(Ok(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!("{bad:?} is not among the client's scopes"),
                )));
            }
            asked.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    let keys = state
        .commands
        .load::<SigningKeys>(SIGNING_KEYS_STREAM)
        .await
        .map_err(Err)?;
    let kid = keys
        .keys
        .last()
        .map(|k| k.0.clone())
        .ok_or_else(|| Err(ApiError::Internal("no signing key".into())))?;
    let settings = &state.oauth;
    let claims = Claims {
        iss: settings.issuer.clone(),
        sub: client_id.to_string(),
        aud: settings.audience.clone(),
        exp: (now + settings.ttl).timestamp(),
        iat: now.timestamp(),
        jti: Uuid::now_v7().to_string(),
        client_id: client_id.to_string(),
        scope: scope.clone(),
        app_id: client.app_id,
        org_id: client.org_id,
        mode: mode.as_str().into(),
    };
    Ok(TokenResponse {
        access_token: token::sign(
            &claims,
            &kid,
            &crate::oauth::signing_key(state, &kid).await.map_err(Err)?,
        ),
        token_type: "Bearer",
        expires_in: settings.ttl.num_seconds(),
        scope,
    })
}
