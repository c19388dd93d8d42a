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
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
        *self.bar.lock().expect("bar lock") = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("bar lock").as_ref() {
            b.inc(n);
        }
    }
    fn finish(&self, _stage: Stage) {
        if let Some(b) = self.bar.lock().expect("bar lock").take() {
            b.finish_and_clear();
        }
    }
    fn cached(&self) {
        let n = self.cached.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = self.bar.lock().expect("bar lock").as_ref() {
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
        let line = format!("warning: {message}");
        match self.bar.lock().expect("bar lock").as_ref() {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
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
                eprintln!("neardup: error: {e:#}");
                match e.downcast_ref::<Error>() {
                    Some(err) if err.is_usage() => 2,
                    _ => 1,
                }
            }
        },
        Command::Explain(args) => match run_explain(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("neardup: error: {e:#}");
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
    print!("{out}");
    0
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
                eprintln!("neardup: error: {e:#}");
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
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf).and_then(|_| out.flush()).or_else(|e| {
                // A closed pipe (`| head`) is not an error.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        }
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
            eprintln!("neardup: error: {e:#}");
            2
        }
    }
}

fn cache_stats(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let s = neardup::cache::stats(&path).map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("cache:   {}", s.path);
    println!("size:    {}", report::human_bytes(s.bytes_on_disk));
    println!("files:   {} paths remembered", s.files);
    println!("vectors: {}", s.vectors);
    for m in &s.models {
        println!(
            "model:   {} (sha256 {}…): {} vectors",
            m.name,
            &m.sha256[..12.min(m.sha256.len())],
            m.vectors
        );
    }
    Ok(())
}

fn cache_prune(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let bundled = ModelSource::bundled()?;
    let keep = vec![neardup::cache::model_fingerprint(&bundled)];
    let p = neardup::cache::prune(&path, &keep).map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    println!(
        "pruned {} file entries, {} vectors, {} models; {} -> {}",
        p.files,
        p.vectors,
        p.models,
        report::human_bytes(p.bytes_before),
        report::human_bytes(p.bytes_after)
    );
    Ok(())
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
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for (name, p) in [("A", &e.a), ("B", &e.b)] {
        println!(
            "{name}: {} ({}×{}, {}, {})",
            p.path,
            p.width,
            p.height,
            p.format,
            report::human_bytes(p.bytes)
        );
    }
    println!(
        "cosine distance:  {:.4} (threshold {})",
        e.distance, rules.threshold
    );
    println!("same bytes:       {}", yes_no(e.same_bytes));
    match e.same_pixels {
        Some(b) => println!("same pixels:      {}", yes_no(b)),
        None => println!(
            "same pixels:      not checked (only for distance <= {} and equal sizes)",
            rules.same_pixels_radius
        ),
    }
    println!(
        "geometric check:  {} inliers (needs {}; ORB {} features at {} px, ratio {}, RANSAC {} px)",
        e.inliers,
        rules.min_inliers,
        rules.geo_features,
        rules.geo_long_side,
        rules.ratio,
        rules.reproj_px
    );
    match e.label {
        Some(l) => println!(
            "verdict:          near-duplicates, {}: {}",
            l.as_str(),
            e.why
        ),
        None => println!("verdict:          not near-duplicates: {}", e.why),
    }
    println!(
        "note: in a scan the geometric check runs for each photo's {} nearest neighbours closer than {}, \
         and groups form by average linkage (see the README).",
        rules.neighbours, rules.geo_radius
    );
    Ok(())
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
            eprintln!("neardup: error: {e:#}");
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
    // Fault injection for the tests (undocumented for users).
    if let Some(spec) = std::env::var_os("NEARDUP_TEST_FAULTS") {
        opts.faults = apply::Faults::parse(&spec.to_string_lossy())?;
    }
    let action = opts.action;
    let dry = !args.execute;
    let json = args.json;
    let quiet = args.quiet;
    let mut out = std::io::stdout().lock();
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
            Status::WouldDo | Status::Done => step.op.clone(),
        };
        let mut line = format!("{verb:<8} {}", step.path);
        if let Some(to) = &step.to {
            let arrow = if step.op == "move" { "->" } else { "=>" };
            line.push_str(&format!(" {arrow} {to}"));
        }
        if let Some(why) = &step.reason {
            if step.status == Status::Keep {
                line.push_str(&format!("  ({why})"));
            } else {
                line.push_str(&format!(": {why}"));
            }
        }
        let _ = writeln!(out, "{line}");
        if loud {
            let _ = out.flush();
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
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    let kinds: Vec<String> = summary
        .skip_kinds
        .iter()
        .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
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
    }
    if cancel.load(Ordering::Relaxed) {
        eprintln!("neardup: interrupted");
        return Ok(130);
    }
    Ok(if summary.failed > 0 || summary.stopped {
        1
    } else {
        0
    })
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
            eprintln!("neardup: error: {e:#}");
            usage_code(&e)
        }
    }
}

fn undo_inner(args: &UndoArgs, cancel: &AtomicBool) -> anyhow::Result<i32> {
    let json = args.json;
    let summary = neardup::apply::undo(
        &args.journal,
        args.execute,
        &mut |s| {
            if json {
                return;
            }
            let verb = match s.status.as_str() {
                "restored" => "restored",
                "would_restore" => "restore",
                "nothing_to_do" => "nothing",
                "already_undone" => "undone",
                _ => "CANNOT",
            };
            println!("{verb:<8} {} {}: {}", s.op.name(), s.path, s.detail);
            if s.status == "cannot_restore" {
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
        println!("{}", serde_json::to_string_pretty(&summary)?);
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
    if cancel.load(Ordering::Relaxed) {
        eprintln!("neardup: interrupted");
        return Ok(130);
    }
    Ok(if summary.cannot_restore > 0 { 1 } else { 0 })
}
