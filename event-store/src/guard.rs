//! The rewind guard: a node's memory of how far the log has been, so that a
//! log that goes backwards under it (a superuser cutting the tail, a backup
//! restored beneath a running server) is noticed, and nothing new is
//! appended at positions already acknowledged for other events.
//!
//! The floor is the highest position this node knows the log reached: every
//! position it committed, every position it read, and the newest checkpoint
//! it signed (kept in a file outside the database, so it survives a
//! restart). A head below the floor fences the guard for good: appends are
//! refused with [`crate::StoreError::Rewound`] until an operator has looked
//! (and restarted the node, having moved the witness aside if the cut was
//! deliberate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A log found behind where this node knows it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the log went backwards: its head is at {head}, but this node knows it reached {floor}; \
     appends are refused"
)]
pub struct Rewound {
    /// The head found.
    pub head: u64,
    /// Where this node knows the log was.
    pub floor: u64,
}

/// See the module docs. Shared by the appender, the readers and `/readyz`.
#[derive(Debug, Default)]
pub struct RewindGuard {
    floor: AtomicU64,
    fenced: Mutex<Option<Rewound>>,
}

impl RewindGuard {
    /// Records that the log reached `position`.
    pub fn reached(&self, position: u64) {
        self.floor.fetch_max(position, Ordering::AcqRel);
    }

    /// The highest position this node knows the log reached.
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Checks a head read under the head row's lock (the latest committed
    /// head, so it has seen every position raised before it): below the
    /// floor, the guard fences (once, logged as an error) and stays fenced.
    pub fn check(&self, head: u64) -> Result<(), Rewound> {
        self.check_against(head, self.floor())
    }

    /// Checks a head read from a snapshot against `floor`, the floor as it
    /// was *before* that snapshot was taken: a commit that raised the floor
    /// after the snapshot began is not in it, and is no rewind.
    pub fn check_against(&self, head: u64, floor: u64) -> Result<(), Rewound> {
        if let Some(r) = self.fenced() {
            return Err(r);
        }
        if head >= floor {
            return Ok(());
        }
        let rewound = Rewound { head, floor };
        let mut fenced = self.fenced.lock().unwrap_or_else(|e| e.into_inner());
        if fenced.is_none() {
            tracing::error!(head, floor, "the log went backwards under this node; appends are refused until an operator restarts it");
            *fenced = Some(rewound);
        }
        Err(fenced.unwrap_or(rewound))
    }

    /// Whether (and why) appends are refused.
    pub fn fenced(&self) -> Option<Rewound> {
        *self.fenced.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_below_what_was_reached_fences_for_good() {
        let g = RewindGuard::default();
        g.reached(10);
        g.reached(7);
        assert_eq!(g.floor(), 10);
        assert_eq!(g.check(10), Ok(()));
        assert_eq!(g.check(12), Ok(()));
        let r = Rewound { head: 6, floor: 10 };
        assert_eq!(g.check(6), Err(r));
        // Catching up again does not lift it: positions 7 to 10 now name
        // other events than the ones acknowledged.
        assert_eq!(g.check(20), Err(r));
        assert_eq!(g.fenced(), Some(r));
    }

    #[test]
    fn a_snapshot_older_than_a_commit_is_no_rewind() {
        let g = RewindGuard::default();
        g.reached(10);
        // A snapshot taken now, then a commit raises the floor past it.
        let before = g.floor();
        g.reached(12);
        assert_eq!(g.check_against(10, before), Ok(()));
        assert_eq!(g.fenced(), None);
    }
}
