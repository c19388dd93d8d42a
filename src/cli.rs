//! The binary's parts: the clap definitions ([`args`]), the exit codes and
//! the one conversion from errors ([`exit`]), stdout/stderr ([`out`]),
//! progress bars ([`bars`]), and one module per command that runs it and
//! prints its outcome.

// `eprintln!` and `outln!` (src/cli/out.rs) are in scope of every module
// declared after this one.
#[macro_use]
pub mod out;

pub mod apply;
pub mod args;
pub mod bars;
pub mod cache;
pub mod decide;
pub mod exit;
pub mod explain;
pub mod formats;
pub mod generate;
pub mod report;
pub mod scan;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ctrl-C sets the flag (the current file is finished); a second one leaves.
pub fn cancel_flag() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if c.swap(true, Ordering::SeqCst) {
            exit::ExitCode::Interrupted.exit();
        }
    });
    cancel
}
