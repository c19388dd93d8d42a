//! Progress bars on stderr: the binary's [`Progress`].

use super::out::log;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use neardup::progress::{Progress, Stage};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The bar's lock, even if a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many warnings about files that are not photos at all (no photo
/// extension, no image inside) are printed before they are only counted.
pub const NON_PHOTO_WARNINGS: u64 = 10;

/// Progress bars on stderr (hidden when stderr is not a terminal or with
/// --quiet) and warnings printed above them.
pub struct Bars {
    quiet: bool,
    /// The bar of the stage that runs, and that stage.
    bar: Mutex<Option<(ProgressBar, Stage)>>,
    pub non_photos: AtomicU64,
    pub cached: AtomicU64,
    /// The index stage's result came from the cache.
    pub remembered: AtomicBool,
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        Bars {
            quiet,
            bar: Mutex::new(None),
            non_photos: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            remembered: AtomicBool::new(false),
        }
    }

    /// A bar of `total` steps (a spinner and a count when unknown).
    fn new_bar(&self, message: String, total: Option<u64>) -> ProgressBar {
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), target).with_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template("{msg:>10} {spinner} {pos}").expect("valid template"),
            ),
        };
        bar.set_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }
}

impl Progress for Bars {
    fn start(&self, stage: Stage, total: Option<u64>) {
        let bar = self.new_bar(stage.label().to_string(), total);
        *lock(&self.bar) = Some((bar, stage));
    }
    fn step(&self, what: &str, total: Option<u64>) {
        let mut current = lock(&self.bar);
        if let Some((old, stage)) = current.take() {
            old.finish_and_clear();
            let bar = self.new_bar(format!("{}: {what}", stage.label()), total);
            *current = Some((bar, stage));
        }
    }
    fn advance(&self, n: u64) {
        if let Some((b, _)) = lock(&self.bar).as_ref() {
            b.inc(n);
        }
    }
    fn finish(&self, _stage: Stage) {
        if let Some((b, _)) = lock(&self.bar).take() {
            b.finish_and_clear();
        }
    }
    fn cached(&self) {
        let n = self.cached.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some((b, _)) = lock(&self.bar).as_ref() {
            b.set_message(format!("embedding ({n} from cache)"));
        }
    }
    fn remembered(&self) {
        self.remembered.store(true, Ordering::Relaxed);
    }
    fn skipped(&self, path: &Path, reason: &neardup::decode::SkipReason) {
        // Files that are not photos at all (no photo extension, no image
        // inside: sidecars, videos, notes) are only counted past the first few.
        if reason.kind == neardup::decode::SkipKind::NotAnImage
            && !neardup::walk::has_photo_extension(path)
        {
            let k = self.non_photos.fetch_add(1, Ordering::Relaxed);
            if k >= NON_PHOTO_WARNINGS {
                return;
            }
        }
        self.warn(&format!("{}: {}", path.display(), reason.message));
    }
    fn warn(&self, message: &str) {
        // indicatif ignores its own write errors (a closed terminal), and
        // `log` ignores this one.
        let line = format!("warning: {message}");
        match lock(&self.bar).as_ref() {
            Some((b, _)) => b.suspend(|| log(&line)),
            None => log(&line),
        }
    }
}
