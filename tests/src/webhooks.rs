//! What the webhook tests share: a receiver that records every delivery
//! and answers as a test scripts it, and a verifier of the Standard
//! Webhooks signature written from the specification on `ring` (not the
//! sender's `hmac`/`ed25519-dalek` path), with its timestamp tolerance.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The status answered.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a delivery's body is JSON")
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status (and a `Retry-After`, if given).
    Status(u16, Option<String>),
    /// A redirect to `location`.
    Redirect(String),
    /// No answer for this long.
    Hang(Duration),
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    script: VecDeque<Answer>,
}

/// A local receiver.
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Mutex<Shared>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Receiver {
    /// Starts one on loopback; it answers 200 unless scripted.
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Receiver { shared, addr }
    }

    /// Its URL, at `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next requests are answered so, in order; then 200 again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.lock().unwrap().script.extend(answers);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits until `n` requests arrived (panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < limit,
                "{} of {n} deliveries after {limit:?}: {:?}",
                got.len(),
                got.iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = shared
        .lock()
        .unwrap()
        .script
        .pop_front()
        .unwrap_or(Answer::Status(200, None));
    let status = match &answer {
        Answer::Status(s, _) => *s,
        Answer::Redirect(_) => 307,
        Answer::Hang(_) => 200,
    };
    shared.lock().unwrap().received.push(Received {
        path: uri.path().to_owned(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: body.to_vec(),
        at: Instant::now(),
        answered: status,
    });
    match answer {
        Answer::Status(s, retry_after) => {
            let mut r = (StatusCode::from_u16(s).unwrap(), "recorded").into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Answer::Redirect(to) => {
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            r.headers_mut().insert("location", to.parse().unwrap());
            r
        }
        Answer::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Why a delivery does not verify.
#[derive(Debug, PartialEq, Eq)]
pub enum Unverified {
    /// The timestamp is more than 5 minutes from now.
    Stale,
    /// No signature matches.
    NoMatch,
    /// A header is malformed.
    Malformed,
}

/// The tolerance the specification recommends.
pub const TOLERANCE_SECS: i64 = 300;

/// Verifies `r` with `secret` (`whsec_...`, or a `whpk_...` public key for
/// `v1a`), as a receiver would, at `now` (unix seconds).
pub fn verify_at(r: &Received, secret: &str, now: i64) -> Result<(), Unverified> {
    let ts: i64 = r.timestamp.parse().map_err(|_| Unverified::Malformed)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(Unverified::Stale);
    }
    let mut signed = format!("{}.{}.", r.id, r.timestamp).into_bytes();
    signed.extend_from_slice(&r.body);
    for sig in r.signature.split(' ') {
        let Some((version, b64)) = sig.split_once(',') else {
            return Err(Unverified::Malformed);
        };
        let Ok(sig) = B64.decode(b64) else {
            return Err(Unverified::Malformed);
        };
        let ok = match (version, secret) {
            ("v1", s) if s.starts_with("whsec_") => {
                let key = B64.decode(&s[6..]).map_err(|_| Unverified::Malformed)?;
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
                ring::hmac::verify(&key, &signed, &sig).is_ok()
            }
            ("v1a", s) if s.starts_with("whpk_") => {
                let pk = B64.decode(&s[5..]).map_err(|_| Unverified::Malformed)?;
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk)
                    .verify(&signed, &sig)
                    .is_ok()
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
    }
    Err(Unverified::NoMatch)
}

/// Verifies `r` now.
pub fn verify(r: &Received, secret: &str) -> Result<(), Unverified> {
    verify_at(r, secret, chrono::Utc::now().timestamp())
}
