//! `Idempotency-Key` on POST: a repeat with the same key and body gets the
//! first response again (marked `Idempotent-Replayed: true`) without running
//! the command twice; the same key with another body is refused with 422.
//!
//! Only authenticated, routed commands are kept: the layer sits on the
//! routes (a request to no route never reaches it), and a request without
//! a live session or gateway token runs as if it carried no key, so a
//! stranger cannot make the server store anything. Keys are scoped to the
//! caller's credentials (the `Authorization` header) so one client cannot
//! replay another's response. Stored responses
//! can hold secrets shown once (a session token, an API key), so their
//! bodies are sealed under the KEK, and everything is a keyed fingerprint:
//! the table reveals neither requests nor responses. Entries are kept for
//! [`RETENTION`].
//!
//! The first request runs in its own task, so a client that disconnects
//! mid-request does not leave the key half-claimed: the command finishes and
//! its response is stored for the retry. A claim has an owner and a lease
//! the owner renews while the request runs ([`LEASE`]); only a lapsed lease
//! (its process died) lets another request take the key over, and the
//! owner stores its response only while it still holds the claim.
//!
//! A 5xx response is not stored; the claim lapses so a retry runs the
//! command again. That is safe because the command's ids and secrets
//! derive from the caller, the key, the operation and a random salt kept
//! (sealed) with the claim ([`crate::command::ids`]): if the first
//! attempt's append did commit, the retry's events are duplicates the
//! store and the executor recognise, not a second command. A key reused
//! after its retention gets a new salt, so it never mints a secret again.
//!
//! A response holding a subject's personal data (sign-up answers with the
//! email and name) is sealed under that subject's own key instead of the
//! KEK (the handler says so with [`SealResponseFor`]), so erasing the
//! subject erases the stored copy too; a replay after that answers 410.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::command::CommandSeed;
use crate::error::ApiError;
use crate::state::AppState;
use crate::POSITION_HEADER;

/// How long a key and its response are kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a claim holds without renewal. The owner renews it every
/// third of this while its request runs, so only a dead owner's claim
/// lapses.
pub const LEASE: Duration = Duration::from_secs(30);
const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// Response headers a replay repeats besides the body.
const KEPT_HEADERS: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::RETRY_AFTER,
    header::ETAG,
    header::LOCATION,
];

/// Put on a response by a handler whose answer holds personal data of
/// this subject: the stored copy is sealed under the subject's own key.
#[derive(Debug, Clone, Copy)]
pub struct SealResponseFor(pub uuid::Uuid);

/// What the middleware needs besides the application state.
#[derive(Clone)]
pub struct Idempotency {
    /// The application.
    pub state: AppState,
    /// Largest request body, as for the handlers.
    pub body_limit: usize,
}

/// The middleware.
pub async fn layer(State(idem): State<Idempotency>, req: Request, next: Next) -> Response {
    // A verdict is a read made by POST: replaying a stored one could
    // answer `valid` for a key revoked since, and storing it would put a
    // database write on the gateway's hot path. The header is ignored.
    if req.method() != Method::POST || req.uri().path() == "/v1/keys/verify" {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    if !authenticated(&mut parts, &idem.state).await {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let req = Request::from_parts(parts, body);
    match run(idem, key, req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

/// Whether the request carries a live session (kept in the request's
/// extensions, so the handler does not look it up again) or a gateway
/// token.
async fn authenticated(parts: &mut axum::http::request::Parts, state: &AppState) -> bool {
    use axum::extract::FromRequestParts;
    if let Ok(session) = crate::extract::Session::from_request_parts(parts, state).await {
        parts.extensions.insert(session);
        return true;
    }
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| crate::extract::is_gateway_token(state, token))
}

async fn run(
    idem: Idempotency,
    key: HeaderValue,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| ApiError::BadBody {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-idempotency-key",
            detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        })?
        .to_owned();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, idem.body_limit)
        .await
        .map_err(|_| {
            ApiError::bad_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over the limit of {} bytes", idem.body_limit),
            )
        })?;
    let vault = &idem.state.vault;
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let scope = vault.fingerprint("idempotency/scope", &[authorization]);
    let path = parts.uri.path().as_bytes().to_vec();
    let parts_method = parts.method.clone();
    let fingerprint = vault.fingerprint("idempotency/request", &[&path, &bytes]);
    let context = [&scope[..], key.as_bytes()].concat();

    let client = idem.state.pool.get().await?;
    let owner = uuid::Uuid::new_v4();
    // A salt for what the command mints, random at the first claim and
    // kept by a takeover (a retry after a 5xx or a dead owner), so the
    // retry mints what the first attempt may have recorded.
    let salt_context = [&context[..], b"/salt"].concat();
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let claimed = client
        .query_opt(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, owner, lease_until, salt) \
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6) \
             ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
                 created_at = now(), owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, \
                 salt = COALESCE(idempotency_keys.salt, EXCLUDED.salt) \
             WHERE idempotency_keys.status IS NULL \
               AND idempotency_keys.lease_until < now() \
               AND idempotency_keys.fingerprint = EXCLUDED.fingerprint \
             RETURNING salt",
            &[
                &&scope[..],
                &key,
                &&fingerprint[..],
                &owner,
                &LEASE.as_secs_f64(),
                &vault.seal_service(&salt_context, &salt),
            ],
        )
        .await?;
    let Some(claimed) = claimed else {
        let row = client
            .query_opt(
                "SELECT fingerprint, status, headers, position, body, subject_id \
                 FROM idempotency_keys WHERE scope = $1 AND key = $2",
                &[&&scope[..], &key],
            )
            .await?;
        let Some(row) = row else {
            // Swept meanwhile (its retention passed): the client retries.
            return Err(in_progress());
        };
        if row.get::<_, &[u8]>(0) != fingerprint {
            return Err(ApiError::BadBody {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "idempotency-key-reused",
                detail: "this Idempotency-Key was used with a different request".into(),
            });
        }
        let Some(status) = row.get::<_, Option<i16>>(1) else {
            return Err(in_progress());
        };
        let body = match (
            row.get::<_, Option<&[u8]>>(4),
            row.get::<_, Option<uuid::Uuid>>(5),
        ) {
            (None, _) => Vec::new(),
            (Some(sealed), None) => vault
                .open_service(&context, sealed)
                .map_err(ApiError::internal)?,
            (Some(sealed), Some(subject)) => {
                let Some(key) = vault
                    .subject_key(&client, subject)
                    .await
                    .map_err(ApiError::internal)?
                else {
                    return Err(erased());
                };
                key.open_bytes(&context, sealed)
                    .map_err(ApiError::internal)?
            }
        };
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = StatusCode::from_u16(status as u16).map_err(ApiError::internal)?;
        let headers = res.headers_mut();
        if let Some(tokio_postgres::types::Json(kept)) =
            row.get::<_, Option<tokio_postgres::types::Json<Vec<(String, String)>>>>(2)
        {
            for (name, value) in kept {
                let name =
                    header::HeaderName::from_bytes(name.as_bytes()).map_err(ApiError::internal)?;
                headers.insert(name, header_value(&value)?);
            }
        }
        if let Some(position) = row.get::<_, Option<i64>>(3) {
            headers.insert(POSITION_HEADER, header_value(&position.to_string())?);
        }
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
        return Ok(res);
    };
    drop(client);
    let salt = vault
        .open_service(&salt_context, claimed.get(0))
        .map_err(ApiError::internal)?;

    // The first attempt: run it to completion whatever the client does.
    let mut req = Request::from_parts(parts, Body::from(bytes));
    // The command's ids follow from the caller and the key, so a retry of
    // an append whose outcome was unknown is a duplicate, not a second
    // command.
    // The operation is in the seed (the method and path name it and the
    // entity it acts on), and so is the salt: a key reused for another
    // operation, or after its retention, never mints the same secret.
    let operation = [parts_method.as_str().as_bytes(), b" ", path.as_slice()].concat();
    req.extensions_mut().insert(CommandSeed(
        vault.fingerprint("idempotency/command", &[&context, &operation, &salt]),
    ));
    let task = tokio::spawn(async move {
        let renewing = tokio::spawn(renew(idem.clone(), scope.to_vec(), key.clone(), owner));
        let res = next.run(req).await;
        renewing.abort();
        record(&idem, &scope, &key, owner, &context, res).await
    });
    task.await.map_err(ApiError::internal)?
}

/// Renews the claim every third of [`LEASE`] while the request runs; stops
/// if the claim was taken over (the lease lapsed, say during a long
/// database outage). The request itself runs on: its events' ids are the
/// new owner's too, so the two cannot both take effect.
async fn renew(idem: Idempotency, scope: Vec<u8>, key: String, owner: uuid::Uuid) {
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let Ok(client) = idem.state.pool.get().await else {
            continue;
        };
        let renewed = client
            .execute(
                "UPDATE idempotency_keys SET lease_until = now() + make_interval(secs => $4) \
                 WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL",
                &[&scope, &key, &owner, &LEASE.as_secs_f64()],
            )
            .await;
        if let Ok(0) = renewed {
            tracing::warn!("an idempotency claim lapsed while its request ran");
            return;
        }
    }
}

async fn record(
    idem: &Idempotency,
    scope: &[u8],
    key: &str,
    owner: uuid::Uuid,
    context: &[u8],
    res: Response,
) -> Result<Response, ApiError> {
    let client = idem.state.pool.get().await?;
    if res.status().is_server_error() {
        // Not an answer to keep: the claim lapses at once so a retry runs
        // the command again, with this claim's salt.
        client
            .execute(
                "UPDATE idempotency_keys SET lease_until = now() - interval '1 second' \
                 WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL",
                &[&scope, &key, &owner],
            )
            .await?;
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(ApiError::internal)?;
    let kept: Vec<(String, String)> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let position: Option<i64> = parts
        .headers
        .get(POSITION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let subject = parts.extensions.get::<SealResponseFor>().map(|s| s.0);
    let sealed = match subject {
        None => idem.state.vault.seal_service(context, &bytes),
        Some(subject) => idem
            .state
            .vault
            .subject_key(&client, subject)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(erased)?
            .seal_bytes(context, &bytes),
    };
    let stored = client
        .execute(
            "UPDATE idempotency_keys SET status = $4, headers = $5, position = $6, body = $7, \
                 subject_id = $8 \
             WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL",
            &[
                &scope,
                &key,
                &owner,
                &(parts.status.as_u16() as i16),
                &tokio_postgres::types::Json(&kept),
                &position,
                &sealed,
                &subject,
            ],
        )
        .await?;
    if stored == 0 {
        // The claim lapsed and another request took the key: its answer is
        // the one kept; this one still reaches its own client.
        tracing::warn!("an idempotency claim was taken over before its response was stored");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Forgets keys older than [`RETENTION`]; returns how many.
pub async fn sweep(state: &AppState) -> Result<u64, ApiError> {
    let client = state.pool.get().await?;
    Ok(client
        .execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            &[&RETENTION.as_secs_f64()],
        )
        .await?)
}

fn in_progress() -> ApiError {
    ApiError::Conflict {
        code: "idempotency-key-in-progress",
        detail: "a request with this Idempotency-Key is still running; retry shortly".into(),
    }
}

fn erased() -> ApiError {
    ApiError::Gone {
        code: "response-erased",
        detail: "the first response to this Idempotency-Key held personal data that has since \
                 been erased"
            .into(),
    }
}

fn header_value(s: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(s).map_err(ApiError::internal)
}
