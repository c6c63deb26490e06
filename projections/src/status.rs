//! Published checkpoints: each runner publishes how far its projection has
//! got, and a read that carries `Gatehouse-Min-Position` waits here, a
//! bounded time, until the projections it reads have reached that position.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// What a runner is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionState {
    /// Not started yet.
    Starting,
    /// Applying events in this process.
    Active,
    /// Another process holds the checkpoint; this one follows it.
    Standby,
    /// Stopped at a poison event; retrying.
    Failed {
        /// The position of the event that fails.
        position: u64,
        /// The error.
        error: String,
    },
}

/// A projection's published status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The last position applied to the active generation.
    pub position: u64,
    /// What the runner is doing.
    pub state: ProjectionState,
}

/// The statuses of every projection in this process.
#[derive(Clone, Default)]
pub struct Statuses {
    inner: Arc<HashMap<&'static str, watch::Sender<ProjectionStatus>>>,
}

/// A read asked for a position its projections have not reached in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("read model {projection} is at position {position}, behind the requested {wanted}")]
pub struct NotCaughtUp {
    /// The projection that lags.
    pub projection: &'static str,
    /// Where it is.
    pub position: u64,
    /// Where the caller wanted it.
    pub wanted: u64,
}

impl Statuses {
    /// One status channel per projection name.
    pub fn new(names: &[&'static str]) -> Self {
        let map = names
            .iter()
            .map(|n| {
                (
                    *n,
                    watch::Sender::new(ProjectionStatus {
                        position: 0,
                        state: ProjectionState::Starting,
                    }),
                )
            })
            .collect();
        Statuses {
            inner: Arc::new(map),
        }
    }

    /// Publishes a projection's status (runner side).
    pub fn publish(&self, name: &str, status: ProjectionStatus) {
        if let Some(tx) = self.inner.get(name) {
            tx.send_if_modified(|s| {
                let changed = *s != status;
                *s = status;
                changed
            });
        }
    }

    /// Follows one projection's status (`None` for a name not run here).
    pub fn subscribe(&self, name: &str) -> Option<watch::Receiver<ProjectionStatus>> {
        self.inner.get(name).map(|tx| tx.subscribe())
    }

    /// The current status of every projection.
    pub fn snapshot(&self) -> Vec<(&'static str, ProjectionStatus)> {
        let mut out: Vec<_> = self
            .inner
            .iter()
            .map(|(n, tx)| (*n, tx.borrow().clone()))
            .collect();
        out.sort_by_key(|(n, _)| *n);
        out
    }

    /// Whether every named projection (of this process) has reached
    /// `min_position` already.
    pub fn reached(&self, names: &[&'static str], min_position: u64) -> bool {
        names.iter().all(|name| {
            self.inner
                .get(name)
                .is_none_or(|tx| tx.borrow().position >= min_position)
        })
    }

    /// Waits until every named projection has applied `min_position`, or
    /// `timeout` passes.
    pub async fn wait_for(
        &self,
        names: &[&'static str],
        min_position: u64,
        timeout: Duration,
    ) -> Result<(), NotCaughtUp> {
        let deadline = tokio::time::Instant::now() + timeout;
        for name in names {
            let Some(tx) = self.inner.get(name) else {
                continue;
            };
            let mut rx = tx.subscribe();
            let reached =
                tokio::time::timeout_at(deadline, rx.wait_for(|s| s.position >= min_position))
                    .await;
            if !matches!(reached, Ok(Ok(_))) {
                return Err(NotCaughtUp {
                    projection: name,
                    position: tx.borrow().position,
                    wanted: min_position,
                });
            }
        }
        Ok(())
    }
}
