//! The neardup binary: parses flags, shows progress, writes the report.

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{
    ApplyArgs, CacheArgs, CacheCommand, Cli, Command, ExplainArgs, Format, FormatsArgs, ReportArgs,
    ScanArgs, UndoArgs,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use neardup::progress::{Progress, Stage};
use neardup::{html, model::ModelSource, report, scan, thumbs, Error};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One line on standard error (a warning, a summary, an error), passed
/// through [`report::escape_name`] so that a file name in it cannot forge a
/// line or send terminal controls. Errors are ignored: a closed or broken
/// stderr (`2>&1 >/dev/null | head -1`) never stops or breaks the work.
fn log(line: &str) {
    let mut text = report::escape_name(line).into_owned();
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An error that may span lines (a refused plan lists its problems one per
/// line): each line escaped by itself, the line breaks kept.
fn log_error(message: &str) {
    let mut text = String::new();
    for line in message.split('\n') {
        text.push_str(&report::escape_name(line));
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// This binary's `eprintln!` shadows the standard one, which panics when
/// stderr is closed: the same `format!` arguments, written by [`log`]
/// (escaped, errors ignored). Every line this binary writes to stderr goes
/// through it.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        log(&format!($($arg)*))
    };
}

/// `writeln!` into a `String` (which cannot fail), as a statement.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Write a command's whole output to standard output. A reader that went
/// away (`neardup scan DIR | head -1`) is not an error: the rest is dropped
/// and the command ends quietly with its usual exit code (0), as ripgrep
/// does. Any other write error (a full disk behind `>`) is an error.
fn emit(text: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Standard output line by line, for `apply` and `undo`, which must not stop
/// in the middle of a file because a line cannot be written. After the first
/// failed write (a closed pipe or another error) the output counts as closed:
/// later lines are only counted, and the caller decides what to do.
struct Lines {
    out: std::io::StdoutLock<'static>,
    closed: bool,
    dropped: u64,
    /// The first error that was not a closed pipe.
    error: Option<std::io::Error>,
}

impl Lines {
    fn new() -> Lines {
        Lines {
            out: std::io::stdout().lock(),
            closed: false,
            dropped: 0,
            error: None,
        }
    }

    /// Write `text` and a newline (`text` is already escaped, or JSON).
    fn line(&mut self, text: &str) {
        if !self.closed {
            let written = self
                .out
                .write_all(text.as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
                .and_then(|()| self.out.flush());
            match written {
                Ok(()) => return,
                Err(e) => {
                    self.closed = true;
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        self.error = Some(e);
                    }
                }
            }
        }
        self.dropped += 1;
    }

    /// The exit code of a dry run whose reader went away: nobody reads the
    /// plan any more, so it stops quietly (0, or 1 for another write error),
    /// without a summary of a partial dry run. `None` while output works.
    fn dry_run_abandoned(&self) -> Option<i32> {
        if !self.closed {
            return None;
        }
        Some(match &self.error {
            Some(e) => {
                eprintln!("neardup: error: cannot write to standard output: {e}");
                1
            }
            None => 0,
        })
    }
}

/// The bar's lock, even if a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many warnings about files that are not photos at all (no photo
/// extension, no image inside) are printed before they are only counted.
const NON_PHOTO_WARNINGS: u64 = 10;

/// Progress bars on stderr (hidden when stderr is not a terminal or with
/// --quiet) and warnings printed above them.
struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    non_photos: AtomicU64,
    cached: AtomicU64,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        Bars {
            quiet,
            bar: Mutex::new(None),
            non_photos: AtomicU64::new(0),
            cached: AtomicU64::new(0),
        }
    }
}

impl Progress for Bars {
    fn start(&self, stage: Stage, total: Option<u64>) {
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
        bar.set_message(stage.label());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        *lock(&self.bar) = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(b) = lock(&self.bar).as_ref() {
            b.inc(n);
        }
    }
    fn finish(&self, _stage: Stage) {
        if let Some(b) = lock(&self.bar).take() {
            b.finish_and_clear();
        }
    }
    fn cached(&self) {
        let n = self.cached.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = lock(&self.bar).as_ref() {
            b.set_message(format!("embedding ({n} from cache)"));
        }
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
            Some(b) => b.suspend(|| log(&line)),
            None => log(&line),
        }
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Cache(cmd) => run_cache(cmd),
        Command::Apply(args) => run_apply(&args),
        Command::Undo(args) => run_undo(&args),
        Command::Formats(args) => run_formats(&args),
        Command::Report(args) => match run_report(&args) {
            Ok(()) => 0,
            Err(e) => {
                log_error(&format!("neardup: error: {e:#}"));
                match e.downcast_ref::<Error>() {
                    Some(err) if err.is_usage() => 2,
                    _ => 1,
                }
            }
        },
        Command::Explain(args) => match run_explain(&args) {
            Ok(()) => 0,
            Err(e) => {
                log_error(&format!("neardup: error: {e:#}"));
                match e.downcast_ref::<Error>() {
                    Some(err) if !err.is_usage() => 1,
                    _ => 2,
                }
            }
        },
    };
    std::process::exit(code);
}

/// `neardup formats`: what this build reads, one format a line.
fn run_formats(args: &FormatsArgs) -> i32 {
    let all = neardup::formats::catalogue();
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&all).expect("plain data") + "\n";
    } else {
        for f in &all {
            let ext = if f.extensions.is_empty() {
                "(any name)".to_string()
            } else {
                f.extensions
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let yes = if f.readable { "yes" } else { "no " };
            let note = if f.note.is_empty() {
                String::new()
            } else {
                format!(": {}", f.note)
            };
            out += &format!("{yes}  {:<6} {:<22} {ext}{note}\n", f.name, f.description);
        }
        out += "Files are recognised by their bytes, not their names. RAW files are read \
                through their largest embedded JPEG preview.\n";
    }
    match emit(out.as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            log_error(&format!("neardup: error: {e:#}"));
            1
        }
    }
}

fn run_scan(args: ScanArgs) -> i32 {
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        // First Ctrl-C: stop cleanly; second: leave at once.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    match scan_inner(&args, &cancel) {
        Ok(()) => 0,
        Err(e) => {
            let code = match e.downcast_ref::<Error>() {
                Some(Error::Cancelled) => 130,
                Some(err) if err.is_usage() => 2,
                _ => 1,
            };
            if code == 130 {
                eprintln!("neardup: interrupted");
            } else {
                log_error(&format!("neardup: error: {e:#}"));
            }
            code
        }
    }
}

fn scan_inner(args: &ScanArgs, cancel: &AtomicBool) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(Error::Param("--threads must be at least 1".into()).into());
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let model = match &args.model {
        Some(p) => ModelSource::from_path(p)?,
        None => ModelSource::bundled()?,
    };
    let format = args
        .format
        .or_else(|| Format::from_output(args.output.as_deref()))
        .unwrap_or(Format::Text);
    let mut opts = scan::ScanOptions::new(args.roots.clone());
    opts.threshold = args.threshold;
    opts.bits = args.bits;
    opts.tables = args.tables;
    opts.seed = args.seed;
    opts.hidden = args.hidden;
    opts.timings = args.timings;
    opts.mode = args.mode.into();
    opts.min_inliers = args.min_inliers;
    opts.mirror = args.mirror;
    if let Some(list) = &args.keep {
        opts.keep = neardup::keep::parse_order(list)?;
    }
    opts.reference = args.reference.clone();
    opts.limits.plain = args.plain_decode;
    opts.thumbnails = format == Format::Html;
    opts.cache = if args.no_cache || args.plain_decode {
        None
    } else {
        args.cache.clone().or_else(neardup::cache::default_path)
    };

    let bars = Bars::new(args.quiet);
    let (mut report, thumbnails) = scan::scan_with_thumbnails(&opts, &model, &bars, cancel)?;
    // Seal the roots, so that apply can trust them (src/apply.rs).
    match neardup::apply::seal_roots(&report.parameters) {
        Ok(seal) => report.parameters.roots_seal = Some(seal),
        Err(e) => bars.warn(&format!(
            "the roots are not sealed ({e}): apply will need --root"
        )),
    }
    for (path, t) in &thumbnails {
        if let Err(why) = t {
            bars.warn(&format!("{path}: no thumbnail: {why}"));
        }
    }
    write_output(&report, &thumbnails, format, args.output.as_deref())?;

    let hidden_non_photos = bars
        .non_photos
        .load(Ordering::Relaxed)
        .saturating_sub(NON_PHOTO_WARNINGS);
    if hidden_non_photos > 0 {
        eprintln!(
            "warning: {hidden_non_photos} more files are not photos (listed in the JSON report)"
        );
    }
    if !args.quiet {
        let s = &report.stats;
        if s.files_seen == 0 {
            eprintln!(
                "neardup: no files found under {}",
                report.parameters.roots.join(", ")
            );
        } else if s.photos_embedded == 0 {
            eprintln!("neardup: no photos found among {} files", s.files_seen);
        }
        let cached = bars.cached.load(Ordering::Relaxed);
        let from_cache = if cached > 0 {
            format!(" ({cached} from cache)")
        } else {
            String::new()
        };
        eprintln!(
            "neardup: {} files, {} photos scanned{}, {} skipped, {} {} ({} photos) in {:.1} s",
            s.files_seen,
            s.photos_embedded,
            from_cache,
            s.files_skipped,
            s.groups,
            if s.groups == 1 { "group" } else { "groups" },
            s.photos_in_groups,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Write the report in `format` to `output` or standard output.
fn write_output(
    report: &report::Report,
    thumbnails: &thumbs::Thumbnails,
    format: Format,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    match format {
        Format::Text => report::write_text(report, &mut buf)?,
        Format::Json => report::write_json(report, &mut buf)?,
        Format::Html => {
            let opts = html::HtmlOptions {
                base: std::env::current_dir().ok(),
            };
            buf = html::render(report, thumbnails, &opts).into_bytes();
        }
    }
    match output {
        Some(path) => std::fs::write(path, &buf)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => emit(&buf)?,
    }
    Ok(())
}

/// `neardup report`: render an existing JSON report.
fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let report = report::read_plan(&args.report)?;
    let format = args
        .format
        .or_else(|| Format::from_output(args.output.as_deref()))
        .unwrap_or(Format::Text);
    let thumbnails = if format == Format::Html {
        let t = thumbs::from_files(&report, Default::default());
        for (path, t) in &t {
            if let Err(why) = t {
                eprintln!("warning: {path}: no thumbnail: {why}");
            }
        }
        t
    } else {
        thumbs::Thumbnails::new()
    };
    write_output(&report, &thumbnails, format, args.output.as_deref())
}

fn cache_path(args: &CacheArgs) -> anyhow::Result<std::path::PathBuf> {
    args.cache
        .clone()
        .or_else(neardup::cache::default_path)
        .ok_or_else(|| anyhow::anyhow!("no cache folder on this platform: give --cache PATH"))
}

fn run_cache(cmd: CacheCommand) -> i32 {
    let result = match cmd {
        CacheCommand::Stats(args) => cache_stats(&args),
        CacheCommand::Prune(args) => cache_prune(&args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            log_error(&format!("neardup: error: {e:#}"));
            2
        }
    }
}

fn cache_stats(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let s = neardup::cache::stats(&path).map_err(anyhow::Error::msg)?;
    if args.json {
        return emit(format!("{}\n", serde_json::to_string_pretty(&s)?).as_bytes());
    }
    let mut o = String::new();
    outln!(o, "cache:   {}", report::escape_name(&s.path));
    outln!(o, "size:    {}", report::human_bytes(s.bytes_on_disk));
    outln!(o, "files:   {} paths remembered", s.files);
    outln!(o, "vectors: {}", s.vectors);
    for m in &s.models {
        outln!(
            o,
            "model:   {} (sha256 {}…): {} vectors",
            report::escape_name(&m.name),
            report::escape_name(m.sha256.get(..12).unwrap_or(&m.sha256)),
            m.vectors
        );
    }
    emit(o.as_bytes())
}

fn cache_prune(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let bundled = ModelSource::bundled()?;
    let keep = vec![neardup::cache::model_fingerprint(&bundled)];
    let p = neardup::cache::prune(&path, &keep).map_err(anyhow::Error::msg)?;
    if args.json {
        return emit(format!("{}\n", serde_json::to_string_pretty(&p)?).as_bytes());
    }
    let mut o = String::new();
    outln!(
        o,
        "pruned {} file entries, {} vectors, {} models; {} -> {}",
        p.files,
        p.vectors,
        p.models,
        report::human_bytes(p.bytes_before),
        report::human_bytes(p.bytes_after)
    );
    emit(o.as_bytes())
}

fn run_explain(args: &ExplainArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(p) => ModelSource::from_path(p)?,
        None => ModelSource::bundled()?,
    };
    let threshold = args
        .threshold
        .or(model.sidecar.default_threshold)
        .unwrap_or(scan::DEFAULT_THRESHOLD);
    if !(threshold > 0.0 && threshold < 2.0) {
        return Err(Error::Param(format!("--threshold must be in (0, 2), got {threshold}")).into());
    }
    let rules = neardup::decide::Rules::new(args.mode.into(), threshold);
    let e = neardup::explain::explain(&args.a, &args.b, &model, &rules, Default::default())?;
    if args.json {
        return emit(format!("{}\n", serde_json::to_string_pretty(&e)?).as_bytes());
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut o = String::new();
    for (name, p) in [("A", &e.a), ("B", &e.b)] {
        outln!(
            o,
            "{name}: {} ({}×{}, {}, {})",
            report::escape_name(&p.path),
            p.width,
            p.height,
            report::escape_name(&p.format),
            report::human_bytes(p.bytes)
        );
    }
    outln!(
        o,
        "cosine distance:  {:.4} (threshold {})",
        e.distance,
        rules.threshold
    );
    outln!(o, "same bytes:       {}", yes_no(e.same_bytes));
    match e.same_pixels {
        Some(b) => outln!(o, "same pixels:      {}", yes_no(b)),
        None => outln!(
            o,
            "same pixels:      not checked (only for distance <= {} and equal sizes)",
            rules.same_pixels_radius
        ),
    }
    outln!(
        o,
        "geometric check:  {} inliers (needs {}; ORB {} features at {} px, ratio {}, RANSAC {} px)",
        e.inliers,
        rules.min_inliers,
        rules.geo_features,
        rules.geo_long_side,
        rules.ratio,
        rules.reproj_px
    );
    match e.label {
        Some(l) => outln!(
            o,
            "verdict:          near-duplicates, {}: {}",
            l.as_str(),
            report::escape_name(&e.why)
        ),
        None => outln!(
            o,
            "verdict:          not near-duplicates: {}",
            report::escape_name(&e.why)
        ),
    }
    outln!(
        o,
        "note: in a scan the geometric check runs for each photo's {} nearest neighbours closer than {}, \
         and groups form by average linkage (see the README).",
        rules.neighbours, rules.geo_radius
    );
    emit(o.as_bytes())
}

/// Ctrl-C sets the flag (the current file is finished); a second one leaves.
fn cancel_flag() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if c.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    cancel
}

fn usage_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<Error>() {
        Some(err) if !err.is_usage() => 1,
        _ => 2,
    }
}

fn run_apply(args: &ApplyArgs) -> i32 {
    let cancel = cancel_flag();
    match apply_inner(args, &cancel) {
        Ok(code) => code,
        Err(e) => {
            log_error(&format!("neardup: error: {e:#}"));
            usage_code(&e)
        }
    }
}

fn apply_inner(args: &ApplyArgs, cancel: &AtomicBool) -> anyhow::Result<i32> {
    use neardup::apply::{self, Event, Status};
    let report = apply::load_plan(&args.plan)?;
    let mut opts = apply::ApplyOptions::new(args.action.into());
    opts.pair_raw_jpeg = args.pair_raw_jpeg;
    opts.to = args.to.clone();
    opts.execute = args.execute;
    opts.reference = args.reference.clone();
    opts.roots = args.roots.clone();
    if args.execute {
        opts.journal = Some(
            args.journal
                .clone()
                .unwrap_or_else(|| apply::default_journal(&args.plan)),
        );
    }
    // Benchmark switch only (bench/reverify_cost.sh): no re-verification.
    if std::env::var_os("NEARDUP_BENCH_SKIP_REVERIFY").is_some_and(|v| v == "1") {
        opts.bench_skip_reverify = true;
        eprintln!("neardup: warning: NEARDUP_BENCH_SKIP_REVERIFY=1: members are not re-verified against their keepers (a benchmark switch)");
    }
    // Fault injection for the tests (undocumented for users).
    if let Some(spec) = std::env::var_os("NEARDUP_TEST_FAULTS") {
        opts.faults = apply::Faults::parse(&spec.to_string_lossy())?;
    }
    let action = opts.action;
    let dry = !args.execute;
    let json = args.json;
    let quiet = args.quiet;
    // A closed stdout (`| head`) does not stop --execute: a line that cannot
    // be shown is no reason to leave the plan half done; every change is in
    // the journal. A dry run changes nothing, so it stops at the next file.
    let mut out = Lines::new();
    let mut print_step = |step: &apply::Step| {
        if json {
            return;
        }
        let loud = matches!(step.status, Status::Skipped | Status::Failed);
        if quiet && !loud {
            return;
        }
        let verb = match step.status {
            Status::Keep => "keep".to_string(),
            Status::Skipped => "skip".to_string(),
            Status::Failed => "FAILED".to_string(),
            Status::WouldDo | Status::Done => step.op.name().to_string(),
        };
        let mut line = format!("{verb:<8} {}", report::escape_name(&step.path));
        if let Some(to) = &step.to {
            let arrow = if step.op == apply::StepOp::Move {
                "->"
            } else {
                "=>"
            };
            line.push_str(&format!(" {arrow} {}", report::escape_name(to)));
        }
        if let Some(why) = &step.reason {
            let why = report::escape_name(why);
            if step.status == Status::Keep {
                line.push_str(&format!("  ({why})"));
            } else {
                line.push_str(&format!(": {why}"));
            }
        }
        out.line(&line);
        if dry && out.closed {
            cancel.store(true, Ordering::SeqCst);
        }
        if loud {
            eprintln!(
                "warning: {}: {}",
                step.path,
                step.reason.as_deref().unwrap_or("")
            );
        }
    };
    let summary = apply::apply(
        &report,
        &opts,
        &mut |ev| match ev {
            Event::Roots { roots, from } => {
                let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
                eprintln!("neardup: roots: {} ({})", shown.join(", "), from.describe());
            }
            Event::Waiting { path } => {
                eprintln!(
                    "neardup: waiting for another neardup process to release {}",
                    path.display()
                );
            }
            Event::Start { files, bytes } => {
                // What passed the checks (each is checked again before it changes).
                let verb = match (action, dry) {
                    (apply::Action::Move, true) => "would move",
                    (apply::Action::Move, false) => "moving",
                    (apply::Action::Trash, true) => "would trash",
                    (apply::Action::Trash, false) => "trashing",
                    (apply::Action::Hardlink, true) => "would hard-link",
                    (apply::Action::Hardlink, false) => "hard-linking",
                    (apply::Action::Symlink, true) => "would symlink",
                    (apply::Action::Symlink, false) => "symlinking",
                    (apply::Action::Delete, true) => "would delete",
                    (apply::Action::Delete, false) => "deleting",
                };
                eprintln!(
                    "neardup: {verb} {}, {} ({bytes} bytes)",
                    files_word(files),
                    report::human_bytes(bytes),
                );
                if !dry {
                    if let Some(j) = &opts.journal {
                        eprintln!("neardup: journal: {}", j.display());
                    }
                }
            }
            Event::Step(step) => print_step(step),
        },
        cancel,
    )?;

    if json {
        out.line(&serde_json::to_string_pretty(&summary)?);
    }
    if let Some(code) = dry.then(|| out.dry_run_abandoned()).flatten() {
        return Ok(code);
    }
    let kinds: Vec<String> = summary
        .skip_kinds
        .iter()
        .map(|(k, n)| format!("{n} {}", k.name().replace('_', " ")))
        .collect();
    let skipped = if kinds.is_empty() {
        format!("{} skipped", summary.skipped)
    } else {
        format!("{} skipped ({})", summary.skipped, kinds.join(", "))
    };
    let freed = report::human_bytes(summary.bytes_freed);
    if dry {
        eprintln!(
            "neardup: dry run: would {} {} ({freed}), keep {}, {skipped}; nothing was changed (add --execute to do it)",
            summary.action,
            files_word(summary.acted),
            summary.kept
        );
    } else {
        eprintln!(
            "neardup: {} {}, {freed} freed; kept {}, {skipped}, {} failed",
            summary.action,
            files_word(summary.acted),
            summary.kept,
            summary.failed
        );
        if let Some(j) = &summary.journal {
            if summary.acted > 0 {
                eprintln!("neardup: to undo: neardup undo {j} --execute");
            }
        }
        if out.closed {
            stdout_closed_note(&out);
        }
    }
    if cancel.load(Ordering::Relaxed) {
        eprintln!("neardup: interrupted");
        return Ok(130);
    }
    Ok(
        if summary.failed > 0 || summary.stopped || out.error.is_some() {
            1
        } else {
            0
        },
    )
}

/// After an --execute whose stdout was closed: say once, on stderr, that
/// lines were dropped and where the full record is.
fn stdout_closed_note(out: &Lines) {
    match &out.error {
        Some(e) => eprintln!(
            "neardup: error: cannot write to standard output ({e}): {} lines not shown; \
             the journal records every change",
            out.dropped
        ),
        None => eprintln!(
            "neardup: standard output was closed: {} lines not shown; \
             the journal records every change",
            out.dropped
        ),
    }
}

/// "1 file", "2 files".
fn files_word(n: u64) -> String {
    format!("{n} {}", if n == 1 { "file" } else { "files" })
}

fn run_undo(args: &UndoArgs) -> i32 {
    let cancel = cancel_flag();
    match undo_inner(args, &cancel) {
        Ok(code) => code,
        Err(e) => {
            log_error(&format!("neardup: error: {e:#}"));
            usage_code(&e)
        }
    }
}

fn undo_inner(args: &UndoArgs, cancel: &AtomicBool) -> anyhow::Result<i32> {
    use neardup::apply::UndoStatus;
    let json = args.json;
    let dry = !args.execute;
    // As in apply: a closed stdout does not stop --execute; a dry run stops.
    let mut out = Lines::new();
    let summary = neardup::apply::undo(
        &args.journal,
        args.execute,
        &mut |s| {
            if json {
                return;
            }
            let verb = match s.status {
                UndoStatus::Restored => "restored",
                UndoStatus::WouldRestore => "restore",
                UndoStatus::NothingToDo => "nothing",
                UndoStatus::AlreadyUndone => "undone",
                UndoStatus::CannotRestore => "CANNOT",
            };
            out.line(&format!(
                "{verb:<8} {} {}: {}",
                s.op.name(),
                report::escape_name(&s.path),
                report::escape_name(&s.detail)
            ));
            if dry && out.closed {
                cancel.store(true, Ordering::SeqCst);
            }
            if s.status == UndoStatus::CannotRestore {
                eprintln!("warning: {}: {}", s.path, s.detail);
            }
        },
        &mut |p: &std::path::Path| {
            eprintln!(
                "neardup: waiting for another neardup process to release {}",
                p.display()
            )
        },
        cancel,
    )?;
    if json {
        out.line(&serde_json::to_string_pretty(&summary)?);
    }
    if let Some(code) = dry.then(|| out.dry_run_abandoned()).flatten() {
        return Ok(code);
    }
    if summary.torn_line {
        eprintln!(
            "warning: the journal's last line was cut short (a kill while it was written): ignored"
        );
    }
    eprintln!(
        "neardup: {}{} restored, {} with nothing to restore, {} already undone, {} cannot be restored{}",
        if summary.dry_run { "dry run: " } else { "" },
        summary.restored,
        summary.nothing_to_do,
        summary.already_undone,
        summary.cannot_restore,
        if summary.dry_run { " (add --execute to do it)" } else { "" }
    );
    if out.closed {
        stdout_closed_note(&out);
    }
    if cancel.load(Ordering::Relaxed) {
        eprintln!("neardup: interrupted");
        return Ok(130);
    }
    Ok(if summary.cannot_restore > 0 || out.error.is_some() {
        1
    } else {
        0
    })
}
