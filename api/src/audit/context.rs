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

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::client::{ClientContext, RequestContext};
use crate::state::AppState;

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
    req.extensions_mut()
        .insert(RequestContext::new(ClientContext { ip, user_agent }));
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
        || context.sealed().is_some()
        || (context.plain().ip.is_none() && context.plain().user_agent.is_none())
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
            serde_json::to_string(context.plain()).map_err(crate::error::ApiError::internal)?;
        context.seal_once(key.seal(&json));
    }
    Ok(())
}
