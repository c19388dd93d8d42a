//! Progress reporting. The library never prints: it tells a [`Progress`]
//! what it is doing and the binary decides how to show it. Cancellation is
//! a flag the binary sets (Ctrl-C) and the stages poll ([`check_cancel`]).

use std::sync::atomic::{AtomicBool, Ordering};

/// `Err(Cancelled)` once `cancel` is set: the stages call it between steps.
pub fn check_cancel(cancel: &AtomicBool) -> crate::Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(crate::Error::Cancelled)
    } else {
        Ok(())
    }
}

/// The stages of a scan, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Walk,
    Embed,
    Index,
    Verify,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Walk => "walking",
            Stage::Embed => "embedding",
            Stage::Index => "indexing",
            Stage::Verify => "verifying",
        }
    }
}

/// Receives progress events from the pipeline. Every method has an empty
/// default so that tests and scripts can pass [`NoProgress`].
pub trait Progress: Sync {
    /// A stage starts; `total` is the number of steps when known.
    fn start(&self, _stage: Stage, _total: Option<u64>) {}
    /// A step of the current stage begins (hashing, one round of a
    /// search): the count starts again at 0, of `total` when known.
    fn step(&self, _what: &str, _total: Option<u64>) {}
    /// `n` more steps of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// The current stage is over.
    fn finish(&self, _stage: Stage) {}
    /// A photo's vector came from the cache.
    fn cached(&self) {}
    /// The current stage's result came from the cache whole (the index
    /// of a rescan of the same photos).
    fn remembered(&self) {}
    /// A file was skipped; by default a one-line warning naming it.
    fn skipped(&self, path: &std::path::Path, reason: &crate::decode::SkipReason) {
        self.warn(&format!("{}: {}", path.display(), reason.message));
    }
    /// Something deserves a one-line warning. The message may hold file
    /// names as they are (newlines, terminal controls): a printer escapes it
    /// (the binary uses `report::escape_name`) and must not fail or panic
    /// if it cannot be written.
    fn warn(&self, _message: &str) {}
}

/// Calls [`Progress::advance`] for a loop over `0..total` (parallel or
/// not) about [`Ticks::UPDATES`] times in all, so that a loop over a million
/// photos does not take a lock a million times; the advances add up to
/// `total`.
pub struct Ticks<'a> {
    progress: &'a dyn Progress,
    total: usize,
    every: usize,
}

impl<'a> Ticks<'a> {
    pub const UPDATES: usize = 1000;

    /// Starts `what` as a step of `total` items.
    pub fn step(progress: &'a dyn Progress, what: &str, total: usize) -> Ticks<'a> {
        progress.step(what, Some(total as u64));
        let every = (total / Self::UPDATES).max(1);
        Ticks {
            progress,
            total,
            every,
        }
    }

    /// Item `i` of the loop is done (or started: the bar is approximate).
    pub fn tick(&self, i: usize) {
        if i.is_multiple_of(self.every) {
            let n = self.every.min(self.total.saturating_sub(i));
            self.progress.advance(n as u64);
        }
    }
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Count {
        total: AtomicU64,
        calls: AtomicU64,
    }

    impl Progress for Count {
        fn advance(&self, n: u64) {
            self.total.fetch_add(n, Ordering::Relaxed);
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn ticks_add_up_to_the_total_in_about_a_thousand_advances() {
        for total in [0usize, 1, 7, 999, 1000, 1001, 123_457] {
            let count = Count::default();
            let ticks = Ticks::step(&count, "loop", total);
            (0..total).into_par_iter().for_each(|i| ticks.tick(i));
            assert_eq!(count.total.into_inner(), total as u64, "{total}");
            let calls = count.calls.into_inner();
            assert!(calls <= 2 * Ticks::UPDATES as u64, "{total}: {calls}");
            assert_eq!(calls == 0, total == 0);
        }
    }
}
