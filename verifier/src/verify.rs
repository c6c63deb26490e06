//! The hot path: a key's verdict from memory, counting what it answers.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use domain::apps::{Mode, Status};
use domain::keys::format;
use domain::keys::KeyKind;
use uuid::Uuid;

use crate::state::{AppEntry, Entry, Index, Inner, Meter, OrgEntry};
use crate::token;

/// Why a key does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not a key this deployment issued (or malformed).
    Unknown,
    /// Revoked.
    Revoked,
    /// Past its expiry, or its rotation's overlap ended.
    Expired,
    /// Its app waits for a product decision.
    AppPending,
    /// Its app is suspended.
    AppSuspended,
    /// Its app is deleted.
    AppDeleted,
    /// The organisation used its billing window's calls.
    QuotaExceeded,
    /// The key's own rate limit.
    RateLimited,
    /// The key lacks the scope asked for.
    ScopeDenied,
}

impl Reason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unknown => "unknown",
            Reason::Revoked => "revoked",
            Reason::Expired => "expired",
            Reason::AppPending => "app_pending",
            Reason::AppSuspended => "app_suspended",
            Reason::AppDeleted => "app_deleted",
            Reason::QuotaExceeded => "quota_exceeded",
            Reason::RateLimited => "rate_limited",
            Reason::ScopeDenied => "scope_denied",
        }
    }
}

/// The facts of a known key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    /// Key.
    pub key_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Mode.
    pub mode: Mode,
    /// What it may do.
    pub scopes: Arc<[String]>,
    /// The browser origins its app allows; empty: no browser origin is
    /// allowed. The gateway compares a call's `Origin` header with these.
    pub origins: Arc<[String]>,
}

/// A verification's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `None` when valid.
    pub reason: Option<Reason>,
    /// For a known key.
    pub key: Option<KeyFacts>,
    /// Calls left in the organisation's billing window, if it has a plan.
    pub remaining: Option<u64>,
    /// When a rate-limited key may verify again, in milliseconds.
    pub retry_at_ms: Option<i64>,
}

impl Verdict {
    /// Whether the key verified.
    pub fn valid(&self) -> bool {
        self.reason.is_none()
    }

    fn unknown() -> Self {
        Verdict {
            reason: Some(Reason::Unknown),
            key: None,
            remaining: None,
            retry_at_ms: None,
        }
    }
}

impl Entry {
    /// Takes one verification from the key's rate limit, or says when the
    /// next window starts. Reserved before checked: parallel callers never
    /// take more than the limit between them.
    fn take_rate(&self, now: i64) -> Result<(), i64> {
        if self.rate_limit == 0 {
            return Ok(());
        }
        let window_ms = i64::from(self.rate_window_secs) * 1000;
        let window = (now.div_euclid(window_ms) as u64) & 0xffff_ffff;
        let mut current = self.rate_state.load(Ordering::Relaxed);
        loop {
            let count = if current >> 32 == window {
                current & 0xffff_ffff
            } else {
                0
            };
            if count >= u64::from(self.rate_limit) {
                return Err((window as i64 + 1) * window_ms);
            }
            let next = (window << 32) | (count + 1);
            match self.rate_state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }
}

impl OrgEntry {
    /// Reserves one call of the billing window; `Err` when none is left.
    /// Returns the calls left after it.
    fn take_call(&self, now: i64) -> Result<Option<u64>, ()> {
        let Some(limit) = self.limit else {
            return Ok(None);
        };
        if self.roll(now).is_none() {
            return Ok(None);
        }
        let local = self.local.fetch_add(1, Ordering::AcqRel) + 1;
        let used = self.logged.load(Ordering::Acquire) + local;
        if used > limit {
            self.local.fetch_sub(1, Ordering::AcqRel);
            return Err(());
        }
        Ok(Some(limit - used))
    }

    fn remaining(&self) -> Option<u64> {
        let used = self.logged.load(Ordering::Acquire) + self.local.load(Ordering::Acquire);
        self.limit.map(|l| l.saturating_sub(used))
    }
}

/// What a credential (a key or a token's client) brings to a verdict.
struct Credential<'a> {
    facts: KeyFacts,
    app: &'a AppEntry,
    org: &'a OrgEntry,
    revoked: bool,
    expired: bool,
    /// The key's own rate limit (tokens have none).
    entry: Option<&'a Entry>,
    /// Where its verdicts are counted.
    meter: &'a Meter,
}

impl Index {
    /// The verdict for `key` (and `scope`, when the caller needs one), at
    /// the clock's now: an API key, or an OAuth access token (a JWT). A
    /// key of the wrong shape or checksum is `unknown` before the index is
    /// consulted (unless it starts like an imported key). Counts the
    /// verification for usage and the quota.
    pub fn verify(&self, key: &str, scope: Option<&str>) -> Verdict {
        let inner = self.inner.read();
        if token::looks_like_jwt(key) {
            return self.verify_token(&inner, key, scope);
        }
        if format::parse(&self.prefix, key).is_none()
            && !crate::state::starts_like_imported(&inner.imported_families, key)
        {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return Verdict::unknown();
        }
        let hash = format::hash(key);
        let now = self.clock.now_ms();
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let Some(&slot) = inner.keys.get(&hash) else {
            return Verdict::unknown();
        };
        let entry = &inner.entries[slot as usize];
        let app = &inner.apps[entry.app as usize];
        if !app.app.exists {
            return Verdict::unknown();
        }
        let org = &inner.orgs[app.org as usize];
        let scopes = match entry.kind {
            KeyKind::Secret => app.scopes[usize::from(entry.mode == Mode::Live)].clone(),
            KeyKind::Restricted => inner.scope_sets[entry.scopes as usize].clone(),
        };
        let credential = Credential {
            facts: KeyFacts {
                key_id: entry.key_id,
                app_id: app.app.id,
                org_id: org.org_id,
                mode: entry.mode,
                scopes,
                origins: app.origins.clone(),
            },
            app,
            org,
            revoked: entry.revoked,
            expired: now >= entry.expires_ms.min(entry.stops_ms),
            entry: Some(entry),
            meter: &entry.meter,
        };
        judge(credential, scope, now)
    }

    /// An access token: its signing key must be published, its signature,
    /// issuer, audience and expiry good, its client known and not revoked;
    /// then the same rules as a key's.
    fn verify_token(&self, inner: &Inner, token_text: &str, scope: Option<&str>) -> Verdict {
        let now = self.clock.now_ms();
        let Some(kid) = token::kid(token_text) else {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return Verdict::unknown();
        };
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let Some((_, public, retires)) = inner.signing.iter().find(|k| k.0 == kid) else {
            return Verdict::unknown();
        };
        if now >= *retires {
            return Verdict::unknown();
        }
        let (issuer, audience) = (&self.tokens.0, &self.tokens.1);
        let claims = match token::verify(token_text, public, issuer, audience, now.div_euclid(1000))
        {
            Ok(claims) => claims,
            Err(token::TokenError::Expired) => {
                return Verdict {
                    reason: Some(Reason::Expired),
                    ..Verdict::unknown()
                }
            }
            Err(token::TokenError::Invalid) => return Verdict::unknown(),
        };
        let client = claims
            .client_id
            .parse::<Uuid>()
            .ok()
            .and_then(|id| Some((id, inner.clients.get(&id)?)));
        let Some((client_id, client)) = client else {
            return Verdict::unknown();
        };
        let app = &inner.apps[client.app as usize];
        if !app.app.exists {
            return Verdict::unknown();
        }
        let org = &inner.orgs[app.org as usize];
        let scopes: Arc<[String]> = claims.scope.split_whitespace().map(String::from).collect();
        let credential = Credential {
            facts: KeyFacts {
                key_id: client_id,
                app_id: app.app.id,
                org_id: org.org_id,
                mode: client.mode,
                scopes,
                origins: app.origins.clone(),
            },
            app,
            org,
            revoked: client.revoked,
            expired: false,
            entry: None,
            meter: &client.meter,
        };
        judge(credential, scope, now)
    }
}

/// The rules every credential meets, in order: the app deleted, the
/// credential revoked or expired, the app suspended or pending, the scope,
/// the key's rate limit, the organisation's quota (reserved before
/// checked). Counts the outcome on the credential's meter.
fn judge(c: Credential<'_>, scope: Option<&str>, now: i64) -> Verdict {
    let mut verdict = Verdict {
        reason: None,
        key: None,
        remaining: None,
        retry_at_ms: None,
    };
    let refusal = match c.app.app.status() {
        Status::Deleted => Some(Reason::AppDeleted),
        _ if c.revoked => Some(Reason::Revoked),
        _ if c.expired => Some(Reason::Expired),
        Status::Suspended => Some(Reason::AppSuspended),
        Status::Pending => Some(Reason::AppPending),
        Status::Active => None,
    };
    let refusal = refusal.or_else(|| {
        let denied = scope.is_some_and(|s| !c.facts.scopes.iter().any(|have| have == s));
        denied.then_some(Reason::ScopeDenied)
    });
    let refusal = refusal.or_else(|| match c.entry.map_or(Ok(()), |e| e.take_rate(now)) {
        Ok(()) => None,
        Err(at) => {
            verdict.retry_at_ms = Some(at);
            Some(Reason::RateLimited)
        }
    });
    let refusal = refusal.or_else(|| match c.org.take_call(now) {
        Ok(left) => {
            verdict.remaining = left;
            None
        }
        Err(()) => Some(Reason::QuotaExceeded),
    });
    c.meter.count(refusal.is_none(), now);
    match refusal {
        None => {}
        Some(reason) => {
            verdict.reason = Some(reason);
            if verdict.remaining.is_none() {
                verdict.remaining = c.org.remaining();
            }
        }
    }
    verdict.key = Some(c.facts);
    verdict
}
