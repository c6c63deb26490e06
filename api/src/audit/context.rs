//! The request context recorded with every command a person makes: the
//! client's address and user agent, sealed under that person's key before
//! it enters an event, so erasing them erases it too.
//!
//! The [`capture`] layer takes both from the request; the session extractor,
//! the one place the acting user is known, seals them (only for requests
//! that can change something); [`crate::command::RequestMeta`] carries the
//! sealed value into the events' metadata. The slot is shared, so the order
//! in which a handler's extractors run does not matter.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use event_schemas::sealed::Sealed;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state::AppState;

/// What is sealed: the request's client address and user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientContext {
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The `User-Agent` header, at most 512 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The context of one request and, once its user is known, the sealed form.
#[derive(Clone)]
pub struct RequestContext {
    plain: Arc<ClientContext>,
    sealed: Arc<OnceLock<Sealed>>,
}

impl std::fmt::Debug for RequestContext {
    // Personal data: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestContext(..)")
    }
}

impl RequestContext {
    /// The client's address, as taken for the audit trail (throttles key
    /// on it too).
    pub fn client_ip(&self) -> &str {
        self.plain.ip.as_deref().unwrap_or("unknown")
    }

    /// The sealed context, once sealed.
    pub fn sealed(&self) -> Option<Sealed> {
        self.sealed.get().cloned()
    }
}

/// Takes the client address (from `--client-ip-header` when configured,
/// the peer address otherwise) and user agent of every request. Of a list
/// (`X-Forwarded-For: a, b, c`) the right-most value is taken: the one the
/// trusted proxy itself added; anything left of it the client wrote.
pub async fn capture(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let forwarded = state.client_ip_header.as_ref().and_then(|name| {
        req.headers()
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().chars().take(64).collect::<String>())
            .filter(|v| !v.is_empty())
    });
    let ip = forwarded.or_else(|| {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
    });
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect());
    req.extensions_mut().insert(RequestContext {
        plain: Arc::new(ClientContext { ip, user_agent }),
        sealed: Arc::new(OnceLock::new()),
    });
    next.run(req).await
}

/// Seals the request's context under `user`'s key, for a request that can
/// change something. A user without a key (erased) gets none recorded.
pub async fn seal_for(
    state: &AppState,
    method: &Method,
    context: Option<&RequestContext>,
    user: Uuid,
) -> Result<(), crate::error::ApiError> {
    let Some(context) = context else {
        return Ok(());
    };
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || context.sealed.get().is_some()
        || (context.plain.ip.is_none() && context.plain.user_agent.is_none())
    {
        return Ok(());
    }
    let client = state.pool.get().await?;
    if let Some(key) = state
        .vault
        .subject_key(&client, user)
        .await
        .map_err(crate::error::ApiError::internal)?
    {
        let json =
            serde_json::to_string(&*context.plain).map_err(crate::error::ApiError::internal)?;
        let _ = context.sealed.set(key.seal(&json));
    }
    Ok(())
}
