//! `Idempotency-Key` on POST: a repeat with the same key and body gets the
//! first response again (marked `Idempotent-Replayed: true`) without running
//! the command twice; the same key with another body is refused with 422.
//!
//! Keys are scoped to the caller's credentials (the `Authorization` header,
//! or none) so one client cannot replay another's response. Stored responses
//! can hold secrets shown once (a session token, an API key), so their
//! bodies are sealed under the KEK, and everything is a keyed fingerprint:
//! the table reveals neither requests nor responses. Entries are kept for
//! [`RETENTION`].
//!
//! The first request runs in its own task, so a client that disconnects
//! mid-request does not leave the key half-claimed: the command finishes and
//! its response is stored for the retry. A 5xx response is not stored; the
//! key is released so a retry runs the command again.

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
/// A claim older than this without a response belongs to a process that
/// died mid-command; the key may be claimed again.
const ABANDONED_AFTER_SECS: f64 = 300.0;
const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

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
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    match run(idem, key, req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
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
    let path = parts.uri.path().as_bytes();
    let fingerprint = vault.fingerprint("idempotency/request", &[path, &bytes]);
    let context = [&scope[..], key.as_bytes()].concat();

    let client = idem.state.pool.get().await?;
    let claimed = client
        .execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
                 created_at = now() \
             WHERE idempotency_keys.status IS NULL \
               AND idempotency_keys.created_at < now() - make_interval(secs => $4)",
            &[&&scope[..], &key, &&fingerprint[..], &ABANDONED_AFTER_SECS],
        )
        .await?
        == 1;
    if !claimed {
        let row = client
            .query_opt(
                "SELECT fingerprint, status, content_type, position, body \
                 FROM idempotency_keys WHERE scope = $1 AND key = $2",
                &[&&scope[..], &key],
            )
            .await?;
        let Some(row) = row else {
            // Released by a failed first attempt since: the client retries.
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
        let body = match row.get::<_, Option<&[u8]>>(4) {
            Some(sealed) => vault
                .open_service(&context, sealed)
                .map_err(ApiError::internal)?,
            None => Vec::new(),
        };
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = StatusCode::from_u16(status as u16).map_err(ApiError::internal)?;
        let headers = res.headers_mut();
        if let Some(ct) = row.get::<_, Option<&str>>(2) {
            headers.insert(header::CONTENT_TYPE, header_value(ct)?);
        }
        if let Some(position) = row.get::<_, Option<i64>>(3) {
            headers.insert(POSITION_HEADER, header_value(&position.to_string())?);
        }
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
        return Ok(res);
    }
    drop(client);

    // The first attempt: run it to completion whatever the client does.
    let mut req = Request::from_parts(parts, Body::from(bytes));
    // The command's ids follow from the caller and the key, so a retry of
    // an append whose outcome was unknown is a duplicate, not a second
    // command.
    req.extensions_mut().insert(CommandSeed(
        vault.fingerprint("idempotency/command", &[&context]),
    ));
    let task = tokio::spawn(async move {
        let res = next.run(req).await;
        record(&idem, &scope, &key, &context, res).await
    });
    task.await.map_err(ApiError::internal)?
}

async fn record(
    idem: &Idempotency,
    scope: &[u8],
    key: &str,
    context: &[u8],
    res: Response,
) -> Result<Response, ApiError> {
    let client = idem.state.pool.get().await?;
    if res.status().is_server_error() {
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2",
                &[&scope, &key],
            )
            .await?;
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(ApiError::internal)?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let position: Option<i64> = parts
        .headers
        .get(POSITION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let sealed = idem.state.vault.seal_service(context, &bytes);
    client
        .execute(
            "UPDATE idempotency_keys SET status = $3, content_type = $4, position = $5, body = $6 \
             WHERE scope = $1 AND key = $2",
            &[
                &scope,
                &key,
                &(parts.status.as_u16() as i16),
                &content_type,
                &position,
                &sealed,
            ],
        )
        .await?;
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

fn header_value(s: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(s).map_err(ApiError::internal)
}
