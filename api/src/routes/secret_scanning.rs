//! `POST /v1/secret-scanning/github`: GitHub's secret scanning partner
//! program reports tokens it found in public. The request is signed with
//! ECDSA P-256 (`GITHUB-PUBLIC-KEY-IDENTIFIER`,
//! `GITHUB-PUBLIC-KEY-SIGNATURE`: base64 of a DER signature over the raw
//! body), checked against the public keys in configuration. A reported
//! token that is one of our keys is recorded as leaked and revoked (test
//! keys; live keys with `--secret-scanning-revoke-live`), and the app's
//! owners are told; each token is answered `true_positive` or
//! `false_positive`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use domain::keys::{self, format, Key};
use event_schemas::key::key_stream;
use event_schemas::{Actor, ActorKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::command::{Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/secret-scanning/github", post(github))
}

/// One token GitHub found.
#[derive(Deserialize, ToSchema)]
pub struct FoundToken {
    /// The token.
    pub token: String,
    /// The token type GitHub matched.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it was found.
    #[serde(default)]
    pub url: Option<String>,
    /// What was scanned (`content`, `commit`, ...).
    #[serde(default)]
    pub source: Option<String>,
}

crate::redacted_debug!(FoundToken);

/// The verdict on one token, as the partner program expects.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenLabel {
    /// SHA-256 of the token, hex (the token itself is not echoed).
    pub token_hash: String,
    /// The type it was reported as.
    pub token_type: String,
    /// `true_positive` (one of our keys) or `false_positive`.
    pub label: &'static str,
}

/// Tokens found in public by GitHub's secret scanning (signed by GitHub).
#[utoipa::path(post, path = "/v1/secret-scanning/github", tag = "keys",
    request_body = Vec<FoundToken>,
    params(
        ("GITHUB-PUBLIC-KEY-IDENTIFIER" = String, Header, description = "The signing key's identifier"),
        ("GITHUB-PUBLIC-KEY-SIGNATURE" = String, Header, description = "Base64 DER ECDSA P-256 signature of the body"),
    ),
    responses((status = 200, body = Vec<TokenLabel>), (status = 403, description = "invalid-signature", body = Problem)))]
pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    meta: RequestMeta,
    body: Bytes,
) -> Result<Json<Vec<TokenLabel>>, ApiError> {
    state.secret_scanning.check(&headers, &body)?;
    let found: Vec<FoundToken> = crate::extract::parse_json(&body)?;
    if found.len() > 1000 {
        return Err(ApiError::bad_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 1000 tokens per report",
        ));
    }
    let mut labels = Vec::with_capacity(found.len());
    for t in found {
        let hash = format::hash_hex(&format::hash(&t.token));
        let key_id: Option<uuid::Uuid> = {
            let client = state.read_models.client().await?;
            projections::keys::read::key_by_hash(&client, &hash).await?
        };
        let label = match key_id {
            Some(key_id) => {
                report::<Key, _>(
                    &state,
                    &meta,
                    &key_stream(key_id),
                    &t,
                    keys::report_leak,
                    |k| k.org_id,
                )
                .await?;
                "true_positive"
            }
            None => match client_with_secret(&state, &hash).await? {
                Some(client_id) => {
                    report::<domain::oauth::OAuthClient, _>(
                        &state,
                        &meta,
                        &event_schemas::oauth::oauth_client_stream(client_id),
                        &t,
                        domain::oauth::report_leak,
                        |c| c.org_id,
                    )
                    .await?;
                    "true_positive"
                }
                None => "false_positive",
            },
        };
        labels.push(TokenLabel {
            token_hash: hash,
            token_type: t.kind,
            label,
        });
    }
    Ok(Json(labels))
}

/// The OAuth client whose current secret, or previous one still in its
/// overlap, hashes to `hash`.
async fn client_with_secret(state: &AppState, hash: &str) -> Result<Option<uuid::Uuid>, ApiError> {
    let client = state.read_models.client().await?;
    Ok(projections::keys::read::client_by_secret(&client, hash).await?)
}

fn scanner() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: Some("github-secret-scanning".into()),
    }
}

/// A credential's rule for a leak report (`keys::report_leak`,
/// `oauth::report_leak`): the report and whether live ones are revoked.
type LeakRule<A, E> =
    fn(&A, keys::LeakReport, bool) -> Result<Vec<<A as crate::command::Aggregate>::Event>, E>;

/// Records a leak on the credential's stream (and the revocation the rules
/// call for): `decide` is the credential's own rule (`keys::report_leak`,
/// `oauth::report_leak`), `org_of` where its events belong.
async fn report<A: crate::command::Aggregate, E>(
    state: &AppState,
    meta: &RequestMeta,
    stream: &str,
    found: &FoundToken,
    decide: LeakRule<A, E>,
    org_of: fn(&A) -> uuid::Uuid,
) -> Result<(), ApiError>
where
    ApiError: From<E>,
{
    let actor = scanner();
    let leak = keys::LeakReport {
        url: found.url.clone(),
        source: found.source.clone(),
    };
    let revoke_live = state.secret_scanning.revoke_live;
    let (actor, leak) = (&actor, &leak);
    state
        .commands
        .execute::<A, _>(stream, &meta.ids(), move |loaded| async move {
            let events = decide(&loaded, leak.clone(), revoke_live)?;
            Ok(Plan::new(
                events,
                meta.in_org(actor.clone(), org_of(&loaded)),
            ))
        })
        .await?;
    Ok(())
}
