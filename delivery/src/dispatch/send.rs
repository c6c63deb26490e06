//! One HTTP attempt: the Standard Webhooks headers, the SSRF check of IP
//! literals (names are checked by the client's resolver at connect time),
//! and the attempt's outcome as the delivery log shows it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::sign::{signature_header, SigningSecret};
use crate::ssrf::{Policy, Refused};

/// What the receiver answered, or why there was no answer.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// The HTTP status, if one came back.
    pub status: Option<u16>,
    /// Start to end of the attempt.
    pub latency: Duration,
    /// Why it failed without a status: `timeout`, `connection_refused`,
    /// `dns`, `tls`, `ssrf`, `connection`.
    pub error_class: Option<&'static str>,
    /// The start of the response body (or of the error), up to 1 KiB.
    pub excerpt: Option<String>,
    /// A 429's or 503's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    /// A 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The most of a response body the log keeps.
pub const EXCERPT_BYTES: usize = 1024;

/// The most of a response body read (so the connection can be reused).
const DRAIN_BYTES: usize = 64 * 1024;

/// What every attempt of a dispatcher shares: its HTTP client, its clock,
/// which destinations may be reached, and whether the client goes through
/// a configured proxy (which resolves names itself, so every destination
/// is checked here first).
pub struct Channel<'a> {
    /// The client ([`crate::ssrf::client`]).
    pub client: &'a reqwest::Client,
    /// When attempts happen.
    pub clock: &'a crate::Clock,
    /// Which destinations may be reached.
    pub policy: Policy,
    /// Through a configured proxy.
    pub proxied: bool,
}

/// Sends `body` as message `msg_id` to `url`.
pub async fn attempt(
    channel: &Channel<'_>,
    url: &str,
    secrets: &[SigningSecret],
    msg_id: &str,
    body: &[u8],
) -> Outcome {
    let Channel {
        client,
        clock,
        policy,
        proxied,
    } = *channel;
    let at = clock.now();
    let started = Instant::now();
    let failed = |class: &'static str, detail: String| Outcome {
        at,
        status: None,
        latency: started.elapsed(),
        error_class: Some(class),
        excerpt: Some(truncate(detail)),
        retry_after: None,
    };
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return failed("connection", "the URL does not parse".into());
    };
    // IP literals never reach the resolver, nor does anything sent
    // through a proxy: checked here.
    let literal = parsed.host_str().is_some_and(|h| {
        h.trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    });
    if literal || proxied {
        if let Err(e) = policy.check_url(&parsed).await {
            return failed("ssrf", e.to_string());
        }
    }
    let timestamp = at.timestamp();
    let signature = signature_header(secrets, msg_id, timestamp, body);
    let sent = client
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            let (class, detail) = classify(&e);
            return failed(class, detail);
        }
    };
    let status = response.status().as_u16();
    let retry_after = if status == 429 || status == 503 {
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::schedule::retry_after(v, clock.now()))
    } else {
        None
    };
    let mut kept = Vec::new();
    let mut read = 0;
    while read < DRAIN_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = EXCERPT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    Outcome {
        at,
        status: Some(status),
        latency: started.elapsed(),
        error_class: None,
        excerpt: (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned()),
        retry_after,
    }
}

/// The error class of a failed request, and its description.
fn classify(e: &reqwest::Error) -> (&'static str, String) {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut text = e.to_string();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return match r {
                Refused::Forbidden { .. } => ("ssrf", r.to_string()),
                Refused::Unresolved { .. } => ("dns", r.to_string()),
            };
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return ("connection_refused", io.to_string());
            }
        }
        text = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        return ("timeout", "no answer within the timeout".into());
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        return ("tls", text);
    }
    if lower.contains("dns") || lower.contains("resolve") {
        return ("dns", text);
    }
    ("connection", text)
}

fn truncate(mut s: String) -> String {
    if s.len() > EXCERPT_BYTES {
        let mut end = EXCERPT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
