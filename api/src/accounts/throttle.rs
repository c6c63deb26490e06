//! Sign-in throttling: sign-in attempts are counted per email (by its keyed
//! hash, whether or not an account has it, so the answer never tells) over a
//! sliding window. After a few attempts each one is slowed; after more it
//! is refused with 429 and `Retry-After` until the oldest attempt leaves the
//! window. A success clears the count. Counts live in this node's memory: a
//! deployment of N nodes allows up to N times the attempts.
//!
//! An attempt is *reserved* (counted as a failure) before its password is
//! checked, in the same lock as the check of the count, so N parallel guesses
//! cannot all pass a count that none of them has raised yet. A success then
//! clears the count; a failure leaves its reservation standing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures after which attempts are slowed.
pub const SLOW_AFTER: usize = 3;
/// Failures after which attempts are refused.
pub const REFUSE_AFTER: usize = 5;
/// Extra delay per failure past [`SLOW_AFTER`].
pub const STEP: Duration = Duration::from_millis(200);
/// Emails tracked before expired entries are swept.
const SWEEP_AT: usize = 10_000;

/// What to do with a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead after waiting this long.
    Proceed(Duration),
    /// Refuse; retry after this long.
    Refuse(Duration),
}

/// Failed sign-ins per email index.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SignInThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The verdict for an attempt on `key` now; an attempt that may proceed
    /// is counted at once, as a failure until [`Self::succeed`] clears it.
    pub fn reserve(&self, key: &str) -> Verdict {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > SWEEP_AT {
            map.retain(|_, f| f.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let failures = map.entry(key.to_owned()).or_default();
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            failures.pop_front();
        }
        let n = failures.len();
        if n >= REFUSE_AFTER {
            let oldest = failures[n - REFUSE_AFTER];
            return Verdict::Refuse(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        failures.push_back(now);
        Verdict::Proceed(STEP * n.saturating_sub(SLOW_AFTER - 1) as u32)
    }

    /// Clears the failures after a successful sign-in.
    pub fn succeed(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn attempts_slow_then_refuse_until_the_window_passes() {
        let t = SignInThrottle::default();
        for _ in 0..SLOW_AFTER {
            assert_eq!(t.reserve("a"), Verdict::Proceed(Duration::ZERO));
        }
        assert_eq!(t.reserve("a"), Verdict::Proceed(STEP));
        assert_eq!(t.reserve("a"), Verdict::Proceed(STEP * 2));
        let Verdict::Refuse(retry) = t.reserve("a") else {
            panic!("five attempts refuse the sixth")
        };
        assert_eq!(retry, WINDOW);
        assert_eq!(
            t.reserve("b"),
            Verdict::Proceed(Duration::ZERO),
            "per email"
        );
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            t.reserve("a"),
            Verdict::Proceed(Duration::ZERO),
            "the window passed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_attempt_is_not_counted() {
        let t = SignInThrottle::default();
        for _ in 0..REFUSE_AFTER {
            t.reserve("a");
        }
        for _ in 0..10 {
            assert!(matches!(t.reserve("a"), Verdict::Refuse(_)));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        let Verdict::Refuse(retry) = t.reserve("a") else {
            panic!("still refused")
        };
        assert_eq!(
            retry,
            WINDOW - Duration::from_secs(1),
            "refusals do not extend the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_count() {
        let t = SignInThrottle::default();
        for _ in 0..4 {
            t.reserve("a");
        }
        t.succeed("a");
        assert_eq!(t.reserve("a"), Verdict::Proceed(Duration::ZERO));
    }
}
