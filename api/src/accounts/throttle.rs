//! Throttles for what strangers can ask without signing in: sign-in
//! attempts, sign-ups, and mail to an address.
//!
//! Each throttle counts attempts per key over a sliding window, in a map
//! bounded by entries (least recently used keys go first when it is full)
//! and never scanned whole. An attempt is *reserved* (counted) before the
//! work it guards, under the same lock as the check, so parallel requests
//! cannot all pass a count none of them has raised yet.
//!
//! Sign-in counts failures three ways, as the OWASP guidance and the
//! anchors (Django's axes, Kanidm) do, so an attacker can neither guess
//! fast nor lock the owner out:
//! - per client address **and** account: slowed after 3, refused after 5;
//! - per client address over all accounts: refused after
//!   [`ADDRESS_FAILURES`] (a spray from one address);
//! - per account over all addresses: only slowed, never refused, so the
//!   right password from the owner's own address still works.
//!
//! Counts live in this node's memory: N nodes allow up to N times the
//! attempts.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per address and account after which attempts are slowed.
pub const SLOW_AFTER: usize = 3;
/// Failures per address and account after which attempts are refused.
pub const REFUSE_AFTER: usize = 5;
/// Failures from one client address (any account) after which it is refused.
pub const ADDRESS_FAILURES: usize = 30;
/// Failures on one account (any address) after which attempts are slowed.
pub const ACCOUNT_SLOW_AFTER: usize = 10;
/// Extra delay per failure past a slowing threshold.
pub const STEP: Duration = Duration::from_millis(200);
/// The longest an account's attempts are slowed.
pub const MAX_ACCOUNT_DELAY: Duration = Duration::from_secs(3);
/// Keys each map holds.
const CAPACITY: usize = 100_000;

/// What to do with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead after waiting this long.
    Proceed(Duration),
    /// Refuse; retry after this long.
    Refuse(Duration),
}

/// Attempts per key over a sliding window, bounded in keys and, per key,
/// in attempts remembered.
#[derive(Debug)]
pub struct Window {
    map: Mutex<LruCache<String, VecDeque<Instant>>>,
    window: Duration,
    /// Most attempts remembered per key.
    depth: usize,
}

impl Window {
    /// Counts over `window`, remembering at most `depth` attempts per key
    /// for at most `capacity` keys.
    pub fn new(window: Duration, depth: usize, capacity: usize) -> Self {
        Window {
            map: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            window,
            depth: depth.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, VecDeque<Instant>>> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attempts on `key` in the window, then `Ok` with that count and the
    /// attempt reserved, or, at `limit`, `Err` with the time until one
    /// leaves the window (nothing reserved).
    pub fn reserve(&self, key: &str, limit: Option<usize>) -> Result<usize, Duration> {
        let now = Instant::now();
        let mut map = self.lock();
        let attempts = map.get_or_insert_mut(key.to_owned(), VecDeque::new);
        while attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            attempts.pop_front();
        }
        let n = attempts.len();
        if let Some(limit) = limit.filter(|l| n >= *l) {
            let oldest = attempts[n - limit];
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        if n >= self.depth {
            attempts.pop_front();
        }
        attempts.push_back(now);
        Ok(n)
    }

    /// Forgets `key`.
    pub fn clear(&self, key: &str) {
        self.lock().pop(key);
    }

    /// Gives back the newest reservation of `key`.
    pub fn release(&self, key: &str) {
        if let Some(attempts) = self.lock().get_mut(key) {
            attempts.pop_back();
        }
    }

    /// Keys held (for tests and `/readyz`).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failed sign-ins, three ways (see the module).
#[derive(Debug)]
pub struct SignInThrottle {
    pair: Window,
    address: Window,
    account: Window,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        SignInThrottle::with_capacity(CAPACITY)
    }
}

impl SignInThrottle {
    /// With at most `capacity` keys per map.
    pub fn with_capacity(capacity: usize) -> Self {
        SignInThrottle {
            pair: Window::new(WINDOW, REFUSE_AFTER, capacity),
            address: Window::new(WINDOW, ADDRESS_FAILURES, capacity),
            account: Window::new(WINDOW, 64, capacity),
        }
    }

    fn pair_key(address: &str, account: &str) -> String {
        format!("{address} {account}")
    }

    /// The verdict for an attempt on `account` (a keyed hash of the
    /// address typed) from client `address`; an attempt that may proceed
    /// is counted at once, as a failure until [`Self::succeed`] clears it.
    pub fn reserve(&self, address: &str, account: &str) -> Verdict {
        let pair = Self::pair_key(address, account);
        let n_pair = match self.pair.reserve(&pair, Some(REFUSE_AFTER)) {
            Ok(n) => n,
            Err(retry) => return Verdict::Refuse(retry),
        };
        if let Err(retry) = self.address.reserve(address, Some(ADDRESS_FAILURES)) {
            self.pair.release(&pair);
            return Verdict::Refuse(retry);
        }
        let n_account = self.account.reserve(account, None).unwrap_or(0);
        let pair_delay = STEP * n_pair.saturating_sub(SLOW_AFTER - 1) as u32;
        let account_delay =
            (STEP * n_account.saturating_sub(ACCOUNT_SLOW_AFTER - 1) as u32).min(MAX_ACCOUNT_DELAY);
        Verdict::Proceed(pair_delay.max(account_delay))
    }

    /// Admits an attempt as [`Self::reserve`] decides: waits out a slowing
    /// delay, or answers `429` with `Retry-After`.
    pub async fn admit(&self, address: &str, account: &str) -> Result<(), crate::error::ApiError> {
        match self.reserve(address, account) {
            Verdict::Refuse(retry) => Err(crate::error::ApiError::TooManyRequests {
                retry_after: retry.as_secs().max(1),
            }),
            Verdict::Proceed(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
        }
    }

    /// Gives back an attempt's reservations when it was never checked (the
    /// server was too busy): a refusal of ours is not the caller's failure.
    pub fn unreserve(&self, address: &str, account: &str) {
        self.pair.release(&Self::pair_key(address, account));
        self.address.release(address);
        self.account.release(account);
    }

    /// A successful sign-in: its failures are forgotten, and its own
    /// reservation on the client address given back.
    pub fn succeed(&self, address: &str, account: &str) {
        self.pair.clear(&Self::pair_key(address, account));
        self.account.clear(account);
        self.address.release(address);
    }
}

/// A plain rate: at most `limit` per key per window, refused beyond.
#[derive(Debug)]
pub struct Rate {
    window: Window,
    limit: usize,
}

impl Rate {
    /// `limit` per `per`.
    pub fn new(limit: usize, per: Duration) -> Self {
        Rate {
            window: Window::new(per, limit, CAPACITY),
            limit,
        }
    }

    /// Reserves one for `key`, or the time until one is free.
    pub fn reserve(&self, key: &str) -> Result<(), Duration> {
        self.window.reserve(key, Some(self.limit)).map(|_| ())
    }

    /// Gives back the newest reservation of `key`.
    pub fn release(&self, key: &str) {
        self.window.release(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn attempts_slow_then_refuse_until_the_window_passes() {
        let t = SignInThrottle::default();
        for _ in 0..SLOW_AFTER {
            assert_eq!(t.reserve("ip", "a"), Verdict::Proceed(Duration::ZERO));
        }
        assert_eq!(t.reserve("ip", "a"), Verdict::Proceed(STEP));
        assert_eq!(t.reserve("ip", "a"), Verdict::Proceed(STEP * 2));
        let Verdict::Refuse(retry) = t.reserve("ip", "a") else {
            panic!("five attempts refuse the sixth")
        };
        assert_eq!(retry, WINDOW);
        assert_eq!(
            t.reserve("ip", "b"),
            Verdict::Proceed(Duration::ZERO),
            "per account"
        );
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            t.reserve("ip", "a"),
            Verdict::Proceed(Duration::ZERO),
            "the window passed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attackers_failures_do_not_lock_the_owner_out_from_another_address() {
        let t = SignInThrottle::default();
        for _ in 0..20 {
            t.reserve("attacker", "owner");
        }
        assert!(matches!(t.reserve("attacker", "owner"), Verdict::Refuse(_)));
        // The owner is slowed, never refused.
        let Verdict::Proceed(delay) = t.reserve("owner-ip", "owner") else {
            panic!("the owner's own address is not refused")
        };
        assert!(delay <= MAX_ACCOUNT_DELAY, "{delay:?}");
        t.succeed("owner-ip", "owner");
        assert_eq!(
            t.reserve("owner-ip", "owner"),
            Verdict::Proceed(Duration::ZERO)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_spraying_many_accounts_is_refused() {
        let t = SignInThrottle::default();
        for i in 0..ADDRESS_FAILURES {
            assert!(matches!(
                t.reserve("sprayer", &format!("acct{i}")),
                Verdict::Proceed(_)
            ));
        }
        assert!(matches!(
            t.reserve("sprayer", "another"),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            t.reserve("someone-else", "another"),
            Verdict::Proceed(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_attempt_is_not_counted() {
        let t = SignInThrottle::default();
        for _ in 0..REFUSE_AFTER {
            t.reserve("ip", "a");
        }
        for _ in 0..10 {
            assert!(matches!(t.reserve("ip", "a"), Verdict::Refuse(_)));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        let Verdict::Refuse(retry) = t.reserve("ip", "a") else {
            panic!("still refused")
        };
        assert_eq!(
            retry,
            WINDOW - Duration::from_secs(1),
            "refusals do not extend the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_never_checked_is_given_back() {
        let t = SignInThrottle::default();
        for _ in 0..REFUSE_AFTER {
            assert!(matches!(t.reserve("ip", "a"), Verdict::Proceed(_)));
            t.unreserve("ip", "a");
        }
        assert_eq!(t.reserve("ip", "a"), Verdict::Proceed(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn the_maps_are_bounded_in_keys() {
        let t = SignInThrottle::with_capacity(100);
        for i in 0..10_000 {
            t.reserve(&format!("ip{i}"), &format!("acct{i}"));
        }
        assert_eq!(t.pair.len(), 100);
        assert_eq!(t.address.len(), 100);
        assert_eq!(t.account.len(), 100);
    }
}
