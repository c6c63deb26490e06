//! Password hashing with a bound: argon2id takes about 19 MiB and tens of
//! milliseconds of a core per hash, and anyone can ask for one (sign-up,
//! sign-in with any address). Hashes run on the blocking pool behind a
//! semaphore sized to the cores, with a short queue; a request beyond the
//! queue, or one that waited too long, is answered `503` with `Retry-After`
//! at once, so memory and CPU stay bounded whatever strangers send.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The bounded hasher.
#[derive(Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Requests running or waiting.
    admitted: AtomicUsize,
    /// Most requests running or waiting.
    capacity: usize,
    /// Longest a request waits for a permit.
    max_wait: Duration,
}

impl Hasher {
    /// `workers` hashes at once (at least one), and up to `queue` more
    /// waiting at most `max_wait` each.
    pub fn new(workers: usize, queue: usize, max_wait: Duration) -> Self {
        let workers = workers.max(1);
        Hasher {
            permits: Arc::new(Semaphore::new(workers)),
            admitted: AtomicUsize::new(0),
            capacity: workers + queue,
            max_wait,
        }
    }

    /// One worker per core, a queue of four per worker, two seconds' wait.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hasher::new(cores, 4 * cores, Duration::from_secs(2))
    }

    /// Runs `work` (a hash or a check) on the blocking pool within the
    /// bound, or answers [`ApiError::Busy`] without running it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        // Reserve a place before waiting, so parallel requests cannot all
        // see room that only one of them may take.
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Busy { retry_after: 1 });
        }
        let _place = Place(&self.admitted);
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Busy { retry_after: 1 })?
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(ApiError::internal)
    }

    /// Hashes a new password (argon2id, the crate's OWASP defaults).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_password(&password)).await?
    }

    /// Checks `password` against a PHC string; a malformed one never
    /// matches.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ApiError> {
        self.run(move || verify_password(&password, &phc)).await
    }
}

/// Gives the place back however the request ends (answered, cancelled).
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// argon2id with the crate's default (OWASP-recommended) parameters.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}").into()))
}

fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash checked when no account matches, so that the time taken does
/// not tell whether one exists.
pub static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not a password of any account").unwrap_or_default());

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_workers_and_the_queue_requests_are_refused_at_once() {
        let hasher = Arc::new(Hasher::new(1, 1, Duration::from_secs(5)));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (h, g) = (hasher.clone(), gate.clone());
            running.push(tokio::spawn(async move {
                h.run(move || {
                    let _ = g.lock().map(|g| g.recv());
                })
                .await
            }));
        }
        // Let both take their places (one running, one queued).
        while hasher.admitted.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.run(|| ()).await;
        assert!(
            matches!(refused, Err(ApiError::Busy { retry_after: 1 })),
            "{refused:?}"
        );
        release.send(()).unwrap();
        release.send(()).unwrap();
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
        assert_eq!(
            hasher.admitted.load(Ordering::Acquire),
            0,
            "places given back"
        );
        assert!(hasher.run(|| ()).await.is_ok());
    }

    #[tokio::test]
    async fn a_request_that_waits_too_long_is_refused() {
        let hasher = Arc::new(Hasher::new(1, 4, Duration::from_millis(50)));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let h = hasher.clone();
        let busy = tokio::spawn(async move {
            h.run(move || {
                let _ = gate.recv();
            })
            .await
        });
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.run(|| ()).await,
            Err(ApiError::Busy { .. })
        ));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
    }
}
