//! A request's client context as a value: its address and user agent, and
//! their sealed form once the acting user is known. Kept apart from the
//! layer that captures it, so the command path can carry it without
//! depending on the server's state.

use std::sync::{Arc, OnceLock};

use event_schemas::sealed::Sealed;
use serde::{Deserialize, Serialize};

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

    /// A request's context, not sealed yet.
    pub fn new(plain: ClientContext) -> Self {
        RequestContext {
            plain: Arc::new(plain),
            sealed: Arc::new(OnceLock::new()),
        }
    }

    /// The context as taken from the request.
    pub fn plain(&self) -> &ClientContext {
        &self.plain
    }

    /// Records the sealed form; the first seal stays.
    pub fn seal_once(&self, sealed: Sealed) {
        let _ = self.sealed.set(sealed);
    }
}
