//! `neardup apply PLAN` and `neardup undo JOURNAL`: carry out a plan or
//! restore a journal, one line per file on stdout, the summary on stderr.

use super::args::{ApplyArgs, UndoArgs};
use super::exit::ExitCode;
use super::out::Lines;
use neardup::report;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn run_apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let cancel = super::cancel_flag();
    apply_inner(args, &cancel)
}

fn apply_inner(args: &ApplyArgs, cancel: &AtomicBool) -> anyhow::Result<ExitCode> {
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
        return Ok(ExitCode::Interrupted);
    }
    Ok(
        if summary.failed > 0 || summary.stopped || out.error.is_some() {
            ExitCode::Failure
        } else {
            ExitCode::Success
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

pub fn run_undo(args: &UndoArgs) -> anyhow::Result<ExitCode> {
    let cancel = super::cancel_flag();
    undo_inner(args, &cancel)
}

fn undo_inner(args: &UndoArgs, cancel: &AtomicBool) -> anyhow::Result<ExitCode> {
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
        return Ok(ExitCode::Interrupted);
    }
    Ok(if summary.cannot_restore > 0 || out.error.is_some() {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}
