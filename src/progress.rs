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
    /// `n` more steps of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// The current stage is over.
    fn finish(&self, _stage: Stage) {}
    /// A photo's vector came from the cache.
    fn cached(&self) {}
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

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}
