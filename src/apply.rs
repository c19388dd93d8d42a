//! Acting on a plan (a scan's report): keep each group's keeper, and move,
//! trash, link or delete the other members; an undo journal; undo.
//!
//! Safety rules, in the order they are checked:
//! 1. The whole plan is validated before anything is touched
//!    ([`validate`]): its version, one keeper per group that is one of its
//!    members, no file in two groups, every path inside the trusted roots
//!    (the user's `--root`, or the plan's when the scan's seal over them
//!    matches: [`seal_roots`]), the content hash and mtime of every member.
//! 2. With `execute`, a group's keeper and members are locked ([`lock`])
//!    before the group is checked and acted on, so that two neardup
//!    processes never act on the same group at once.
//! 3. A group is only acted on when its keeper is a regular file inside the
//!    roots (a keeper that is a symbolic link stands for its target) and
//!    still the file that was scanned (size, mtime, content hash); right
//!    before each removal its path must still name the locked file: the
//!    last copy is never removed.
//! 4. A member is only acted on when it is still the file that was scanned,
//!    is not in a reference folder, does not resolve (through a symbolic
//!    link) outside the scanned roots, and is not the keeper's own file.
//!    Otherwise it is skipped, with the reason.
//! 5. With `execute`, each change is written to the journal (JSON lines,
//!    flushed and fsynced) before it is made and marked done after, so
//!    [`undo()`] can restore what was done even after a kill.
//!
//! Without `execute` nothing is changed: the same checks run (hashes
//! included) and the steps say what would be done.

use crate::error::Result;
use crate::report::Report;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

mod checks;
mod faults;
mod fs;
mod journal;
pub mod lock;
mod plan;
mod undo;

pub use checks::content_of;
pub use faults::Faults;
pub use journal::{Entry, EntryState, Header, JOURNAL_CAP, JOURNAL_VERSION};
pub use plan::{default_journal, load_plan, normalize, seal_key_path, seal_roots};
pub use undo::{undo, UndoStatus, UndoStep, UndoSummary};

use checks::{check_keeper, decide, unchanged, Decision, GroupRefusal};
use faults::Injector;
use fs::{act, mode_of, parent};
use journal::{now_s, Journal};
use plan::{validate, Target};

/// What to do with the members that are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Move under `--to`, keeping the folder structure.
    Move,
    /// Into the desktop trash.
    Trash,
    /// Replace by a hard link to the keeper.
    Hardlink,
    /// Replace by a symbolic link to the keeper.
    Symlink,
    /// Remove for good.
    Delete,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Move => "move",
            Action::Trash => "trash",
            Action::Hardlink => "hardlink",
            Action::Symlink => "symlink",
            Action::Delete => "delete",
        }
    }
    fn is_link(self) -> bool {
        matches!(self, Action::Hardlink | Action::Symlink)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to carry out a plan.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub action: Action,
    /// Destination of `move`; for the links, where members that are not
    /// byte-identical to the keeper are moved before being replaced.
    pub to: Option<PathBuf>,
    /// Change files (otherwise a dry run).
    pub execute: bool,
    /// The undo journal (required with `execute`; must not exist).
    pub journal: Option<PathBuf>,
    /// More reference folders, besides the plan's.
    pub reference: Vec<PathBuf>,
    /// The roots to act in (`--root`). When empty, the plan's roots are
    /// used only if the scan's seal over them still matches
    /// ([`seal_roots`]); when given, they replace the plan's and every
    /// member must lie inside them.
    pub roots: Vec<PathBuf>,
    /// Also act on a member that is the RAW+JPEG twin of its keeper (a pair
    /// with `raw_jpeg_pair`); by default such a member is kept.
    pub pair_raw_jpeg: bool,
    /// Benchmark switch only (`NEARDUP_BENCH_SKIP_REVERIFY=1`, read by the
    /// binary): act without re-verifying each member against its keeper
    /// from the files ([`crate::reverify`]). Never the default.
    #[doc(hidden)]
    pub bench_skip_reverify: bool,
    #[doc(hidden)]
    pub faults: Faults,
}

impl ApplyOptions {
    pub fn new(action: Action) -> ApplyOptions {
        ApplyOptions {
            action,
            to: None,
            execute: false,
            journal: None,
            reference: Vec::new(),
            roots: Vec::new(),
            pair_raw_jpeg: false,
            bench_skip_reverify: false,
            faults: Faults::default(),
        }
    }
}

/// What happened (or would happen) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The keeper, or a member of a reference folder: left alone.
    Keep,
    /// Dry run: would be done.
    WouldDo,
    Done,
    /// Not touched, for the reason given.
    Skipped,
    /// The change failed; the file is where it was.
    Failed,
}

/// What a step is about: keeping a file, the action, or (when it could not
/// be written) the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOp {
    Keep,
    Move,
    Trash,
    Hardlink,
    Symlink,
    Delete,
    Journal,
}

impl StepOp {
    /// The spelling in the JSON outcome.
    pub fn name(self) -> &'static str {
        match self {
            StepOp::Keep => "keep",
            StepOp::Move => "move",
            StepOp::Trash => "trash",
            StepOp::Hardlink => "hardlink",
            StepOp::Symlink => "symlink",
            StepOp::Delete => "delete",
            StepOp::Journal => "journal",
        }
    }
}

impl From<Action> for StepOp {
    fn from(a: Action) -> StepOp {
        match a {
            Action::Move => StepOp::Move,
            Action::Trash => StepOp::Trash,
            Action::Hardlink => StepOp::Hardlink,
            Action::Symlink => StepOp::Symlink,
            Action::Delete => StepOp::Delete,
        }
    }
}

/// Why a file was kept or skipped: a short key, counted in
/// [`Summary::skip_kinds`]. Ordered by its spelling (the order of
/// `skip_kinds` in the JSON outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Kept: the group's keeper.
    Keeper,
    /// Kept: in a reference folder.
    Reference,
    /// Kept: the keeper's RAW+JPEG twin (without `--pair-raw-jpeg`).
    RawJpegPair,
    /// Gone since the scan (or unreadable, or a broken link).
    Gone,
    /// Changed since the scan (size, mtime, content, or no longer a file).
    Changed,
    /// Resolves outside the scanned roots (a symbolic link).
    OutsideRoots,
    /// A symbolic link, and the action is not trash or delete.
    Symlink,
    /// The keeper's own file (a link to it).
    SameFile,
    /// Not byte-identical to the keeper, and a link was asked without `--to`.
    NotIdentical,
    /// A hard link cannot cross to the keeper's file system.
    OtherFilesystem,
    /// The whole group: the keeper is not as scanned.
    KeeperChanged,
    /// The whole group: the keeper is not a regular file.
    KeeperNotAFile,
    /// The whole group: the keeper resolves outside the roots.
    KeeperOutsideRoots,
    /// The whole group: its files could not be locked.
    LockFailed,
    /// Not a near-duplicate of the keeper when judged again from the files.
    NotVerified,
}

impl StepKind {
    /// The spelling in the JSON outcome.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Keeper => "keeper",
            StepKind::Reference => "reference",
            StepKind::RawJpegPair => "raw_jpeg_pair",
            StepKind::Gone => "gone",
            StepKind::Changed => "changed",
            StepKind::OutsideRoots => "outside_roots",
            StepKind::Symlink => "symlink",
            StepKind::SameFile => "same_file",
            StepKind::NotIdentical => "not_identical",
            StepKind::OtherFilesystem => "other_filesystem",
            StepKind::KeeperChanged => "keeper_changed",
            StepKind::KeeperNotAFile => "keeper_not_a_file",
            StepKind::KeeperOutsideRoots => "keeper_outside_roots",
            StepKind::LockFailed => "lock_failed",
            StepKind::NotVerified => "not_verified",
        }
    }
}

impl Ord for StepKind {
    fn cmp(&self, other: &StepKind) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for StepKind {
    fn partial_cmp(&self, other: &StepKind) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One line of the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub group: u64,
    /// `keep`, the action, or `journal`.
    pub op: StepOp,
    pub path: String,
    /// Where the file goes (move) or the keeper it is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub bytes: u64,
    pub status: Status,
    /// Why it was kept, skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A short key of the skip reason or of the keep reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StepKind>,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub action: Action,
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Members planned for the action (not kept).
    pub planned: u64,
    /// Done (or, in a dry run, would be done).
    pub acted: u64,
    /// Bytes of the files acted on: removed from their place.
    pub bytes_freed: u64,
    pub kept: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Skips by kind.
    pub skip_kinds: BTreeMap<StepKind, u64>,
    /// Stopped early (Ctrl-C, or the journal could not be written).
    pub stopped: bool,
    pub steps: Vec<Step>,
}

/// Where the roots apply trusts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootsFrom {
    /// The plan's, sealed by the scan that wrote it (the seal matches).
    Seal,
    /// Given by the user (`--root`).
    User,
}

impl RootsFrom {
    pub fn describe(self) -> &'static str {
        match self {
            RootsFrom::Seal => "the plan's, sealed by its scan",
            RootsFrom::User => "given with --root",
        }
    }
}

/// Told to the caller while the plan runs.
pub enum Event<'a> {
    /// First, after the plan was validated: the roots every change must
    /// stay inside, and where they come from.
    Roots {
        roots: &'a [PathBuf],
        from: RootsFrom,
    },
    /// After every check and before the first change: the files and bytes
    /// that passed the checks (each is checked again, under its lock, just
    /// before it is changed).
    Start {
        files: u64,
        bytes: u64,
    },
    /// Another neardup process holds a lock on this file: waiting for it.
    Waiting {
        path: &'a Path,
    },
    Step(&'a Step),
}

/// Carry out a plan. Validation errors come back as
/// [`Error::Plan`](crate::Error::Plan) before anything is touched;
/// everything after is reported per file in the [`Summary`].
///
/// With `execute`, each group is handled under [`lock`]s on its keeper and
/// members (another neardup apply or undo on the same files waits), and
/// every check runs again once they are held.
pub fn apply(
    report: &Report,
    opts: &ApplyOptions,
    on: &mut dyn FnMut(Event),
    cancel: &AtomicBool,
) -> Result<Summary> {
    let plan = validate(report, opts)?;
    on(Event::Roots {
        roots: &plan.roots,
        from: plan.roots_from,
    });
    let inj = Injector {
        faults: opts.faults.clone(),
        ..Injector::default()
    };
    let mut journal = match (&opts.journal, opts.execute) {
        (Some(p), true) => {
            let mut j = Journal::create(p)?;
            j.write(&Header {
                neardup_journal: JOURNAL_VERSION,
                tool_version: env!("CARGO_PKG_VERSION").into(),
                action: opts.action,
                to: plan.to.clone(),
            })?;
            Some(j)
        }
        _ => None,
    };
    let mut summary = Summary {
        action: opts.action,
        dry_run: !opts.execute,
        journal: opts
            .journal
            .as_ref()
            .filter(|_| opts.execute)
            .map(|p| p.to_string_lossy().into_owned()),
        planned: 0,
        acted: 0,
        bytes_freed: 0,
        kept: 0,
        skipped: 0,
        failed: 0,
        skip_kinds: BTreeMap::new(),
        stopped: false,
        steps: Vec::new(),
    };

    // Every check first, before any change, to say what will be done. A
    // dry run stops at this; with `execute` each group is checked again
    // under its locks just before it is acted on.
    let mut reserved: HashSet<PathBuf> = HashSet::new();
    let mut verifier = crate::reverify::Verifier::new(report, crate::decode::Limits::default());
    let verify = !opts.bench_skip_reverify;
    let mut checked: Vec<(std::result::Result<Target, GroupRefusal>, Vec<Decision>)> = Vec::new();
    let (mut files, mut bytes) = (0u64, 0u64);
    for g in &plan.groups {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let keeper = check_keeper(g, &plan);
        let decisions: Vec<Decision> = g
            .others
            .iter()
            .map(|t| {
                let v = verify.then_some(&mut verifier);
                decide(t, &keeper, g, &plan, opts, &mut reserved, v)
            })
            .collect();
        for (t, d) in g.others.iter().zip(&decisions) {
            if matches!(d, Decision::Act { .. }) {
                files += 1;
                bytes += t.member.bytes;
            }
        }
        checked.push((keeper, decisions));
    }
    on(Event::Start { files, bytes });
    if opts.execute {
        reserved.clear();
    }

    let mut seq = 0u64;
    'groups: for (gi, g) in plan.groups.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            summary.stopped = true;
            break;
        }
        // With execute: lock the group's files, then check it all again.
        let (held, keeper, decisions) = if opts.execute {
            let paths: Vec<&Path> = std::iter::once(g.keeper.abs.as_path())
                .chain(g.others.iter().map(|t| t.abs.as_path()))
                .collect();
            let held = lock::files(&paths, &mut |p: &Path| on(Event::Waiting { path: p }));
            let keeper = match held.failed() {
                Some((p, e)) => Err((
                    format!("cannot lock {}: {e}", p.display()),
                    StepKind::LockFailed,
                )),
                None => check_keeper(g, &plan).and_then(|k| {
                    if held.holds_file_at(&k.abs) {
                        Ok(k)
                    } else {
                        Err((
                            format!(
                                "the keeper {} changed while it was being locked",
                                g.keeper.member.path
                            ),
                            StepKind::KeeperChanged,
                        ))
                    }
                }),
            };
            let before = checked.get(gi).map(|(_, d)| d.as_slice()).unwrap_or(&[]);
            let decisions: Vec<Decision> = g
                .others
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    // Verified by the check pass only if it was to be acted on then.
                    let was_act = matches!(before.get(i), Some(Decision::Act { .. }));
                    let v = (verify && !was_act).then_some(&mut verifier);
                    decide(t, &keeper, g, &plan, opts, &mut reserved, v)
                })
                .collect();
            (held, keeper, decisions)
        } else {
            match checked.get_mut(gi) {
                Some((k, d)) => (lock::Held::none(), k.clone(), std::mem::take(d)),
                None => {
                    summary.stopped = true;
                    break;
                }
            }
        };
        let mut push = |summary: &mut Summary, step: Step| {
            on(Event::Step(&step));
            match step.status {
                Status::Keep => summary.kept += 1,
                Status::WouldDo | Status::Done => {
                    summary.acted += 1;
                    summary.bytes_freed += step.bytes;
                }
                Status::Skipped => {
                    summary.skipped += 1;
                    // Every skip has a kind (`Decision::Skip`).
                    if let Some(kind) = step.kind {
                        *summary.skip_kinds.entry(kind).or_default() += 1;
                    }
                }
                Status::Failed => summary.failed += 1,
            }
            if step.status != Status::Keep {
                summary.planned += 1;
            }
            summary.steps.push(step);
        };
        let base = |t: &Target| Step {
            group: g.id,
            op: opts.action.into(),
            path: t.member.path.clone(),
            to: None,
            bytes: t.member.bytes,
            status: Status::Skipped,
            reason: None,
            kind: None,
        };
        push(
            &mut summary,
            Step {
                op: StepOp::Keep,
                status: Status::Keep,
                reason: Some("keeper".into()),
                kind: Some(StepKind::Keeper),
                ..base(&g.keeper)
            },
        );
        for (t, decision) in g.others.iter().zip(decisions) {
            if cancel.load(Ordering::Relaxed) {
                summary.stopped = true;
                break 'groups;
            }
            let (to, identical) = match decision {
                Decision::Keep { reason, kind } => {
                    push(
                        &mut summary,
                        Step {
                            op: StepOp::Keep,
                            status: Status::Keep,
                            reason: Some(reason),
                            kind: Some(kind),
                            ..base(t)
                        },
                    );
                    continue;
                }
                Decision::Skip { reason, kind } => {
                    push(
                        &mut summary,
                        Step {
                            reason: Some(reason),
                            kind: Some(kind),
                            ..base(t)
                        },
                    );
                    continue;
                }
                Decision::Act { to, identical } => (to, identical),
            };
            let keeper = keeper.as_ref().expect("an Act has a checked keeper");
            let shown_to = match opts.action {
                Action::Move => to.as_ref().map(|d| d.to_string_lossy().into_owned()),
                Action::Hardlink | Action::Symlink => {
                    Some(keeper.abs.to_string_lossy().into_owned())
                }
                _ => None,
            };
            let mut step = Step {
                to: shown_to,
                ..base(t)
            };
            if !opts.execute {
                step.status = Status::WouldDo;
                if opts.action.is_link() && !identical {
                    step.reason = Some(format!(
                        "not identical to the keeper: moved to {} first",
                        to.as_ref().expect("set by decide").display()
                    ));
                }
                push(&mut summary, step);
                continue;
            }
            let journal = journal.as_mut().expect("execute has a journal");
            seq += 1;
            let tmp = opts.action.is_link().then(|| {
                parent(&t.abs).join(format!(
                    ".neardup-{seq}-{}.tmp",
                    t.abs.file_name().unwrap_or_default().to_string_lossy()
                ))
            });
            let mode = std::fs::metadata(&t.abs)
                .map(|m| mode_of(&m))
                .unwrap_or(0o644);
            let begin = Entry {
                seq,
                state: EntryState::Begin,
                op: Some(opts.action),
                path: Some(t.abs.clone()),
                to: to.clone(),
                keeper: opts.action.is_link().then(|| keeper.abs.clone()),
                tmp: tmp.clone(),
                content: t.member.content.clone(),
                bytes: Some(t.member.bytes),
                mtime_ns: t.member.mtime_ns,
                mode: Some(mode),
                time: Some(now_s()),
                error: None,
            };
            if let Err(e) = journal.write(&begin) {
                step.status = Status::Failed;
                step.reason = Some(format!("cannot write the journal: {e} (stopped)"));
                push(&mut summary, step);
                summary.stopped = true;
                break 'groups;
            }
            inj.checkpoint();
            // Right before anything is removed: the keeper's path still
            // names the locked file, which still has its links and bytes.
            let keeper_there = || -> io::Result<()> {
                unchanged(&keeper.abs, &keeper.member, false).map_err(|(why, _)| {
                    io::Error::other(format!("the keeper {why}: not touched"))
                })?;
                if !held.holds_file_at(&keeper.abs) {
                    return Err(io::Error::other(
                        "the keeper is no longer the file that was checked: not touched",
                    ));
                }
                Ok(())
            };
            let result = act(
                opts.action,
                t,
                keeper,
                to.as_deref(),
                tmp.as_deref(),
                &keeper_there,
                &inj,
            );
            inj.checkpoint();
            let mark = Entry {
                seq,
                state: if result.is_ok() {
                    EntryState::Done
                } else {
                    EntryState::Failed
                },
                error: result.as_ref().err().map(|e| e.to_string()),
                ..Entry::default()
            };
            let written = journal.write(&mark);
            match result {
                Ok(()) => step.status = Status::Done,
                Err(e) => {
                    step.status = Status::Failed;
                    step.reason = Some(e.to_string());
                }
            }
            push(&mut summary, step);
            if let Err(e) = written {
                summary.stopped = true;
                summary.failed += 1;
                summary.steps.push(Step {
                    group: g.id,
                    op: StepOp::Journal,
                    path: opts
                        .journal
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    to: None,
                    bytes: 0,
                    status: Status::Failed,
                    reason: Some(format!("cannot write the journal: {e} (stopped)")),
                    kind: None,
                });
                break 'groups;
            }
        }
        // The group's locks are released here, after its last change.
        drop(held);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// Each value serialises to today's spelling and reads back as itself.
    fn round_trip<T>(cases: &[(T, &str)])
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for (value, spelling) in cases {
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(json, format!("\"{spelling}\""), "{value:?}");
            let back: T = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, value);
        }
    }

    #[test]
    fn outcomes_keep_their_json_spellings() {
        round_trip(&[
            (Action::Move, "move"),
            (Action::Trash, "trash"),
            (Action::Hardlink, "hardlink"),
            (Action::Symlink, "symlink"),
            (Action::Delete, "delete"),
        ]);
        round_trip(&[
            (Status::Keep, "keep"),
            (Status::WouldDo, "would_do"),
            (Status::Done, "done"),
            (Status::Skipped, "skipped"),
            (Status::Failed, "failed"),
        ]);
        round_trip(&[
            (StepOp::Keep, "keep"),
            (StepOp::Move, "move"),
            (StepOp::Trash, "trash"),
            (StepOp::Hardlink, "hardlink"),
            (StepOp::Symlink, "symlink"),
            (StepOp::Delete, "delete"),
            (StepOp::Journal, "journal"),
        ]);
        let kinds = [
            (StepKind::Keeper, "keeper"),
            (StepKind::Reference, "reference"),
            (StepKind::RawJpegPair, "raw_jpeg_pair"),
            (StepKind::Gone, "gone"),
            (StepKind::Changed, "changed"),
            (StepKind::OutsideRoots, "outside_roots"),
            (StepKind::Symlink, "symlink"),
            (StepKind::SameFile, "same_file"),
            (StepKind::NotIdentical, "not_identical"),
            (StepKind::OtherFilesystem, "other_filesystem"),
            (StepKind::KeeperChanged, "keeper_changed"),
            (StepKind::KeeperNotAFile, "keeper_not_a_file"),
            (StepKind::KeeperOutsideRoots, "keeper_outside_roots"),
            (StepKind::LockFailed, "lock_failed"),
            (StepKind::NotVerified, "not_verified"),
        ];
        round_trip(&kinds);
        round_trip(&[
            (UndoStatus::Restored, "restored"),
            (UndoStatus::WouldRestore, "would_restore"),
            (UndoStatus::NothingToDo, "nothing_to_do"),
            (UndoStatus::AlreadyUndone, "already_undone"),
            (UndoStatus::CannotRestore, "cannot_restore"),
        ]);
        round_trip(&[
            (EntryState::Begin, "begin"),
            (EntryState::Done, "done"),
            (EntryState::Failed, "failed"),
            (EntryState::Undone, "undone"),
        ]);
        for (a, spelling) in [
            (Action::Move, "move"),
            (Action::Trash, "trash"),
            (Action::Hardlink, "hardlink"),
            (Action::Symlink, "symlink"),
            (Action::Delete, "delete"),
        ] {
            assert_eq!(a.name(), spelling);
            assert_eq!(a.to_string(), spelling);
            assert_eq!(StepOp::from(a).name(), spelling);
        }
        for (k, spelling) in kinds {
            assert_eq!(k.name(), spelling);
        }
    }

    #[test]
    fn skip_kinds_are_counted_in_the_order_of_their_spelling() {
        let mut counts: BTreeMap<StepKind, u64> = BTreeMap::new();
        for k in [
            StepKind::NotVerified,
            StepKind::Changed,
            StepKind::KeeperChanged,
            StepKind::Gone,
            StepKind::OutsideRoots,
        ] {
            counts.insert(k, 1);
        }
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"changed":1,"gone":1,"keeper_changed":1,"not_verified":1,"outside_roots":1}"#
        );
        let back: BTreeMap<StepKind, u64> =
            serde_json::from_str(r#"{"gone":2,"not_verified":3}"#).unwrap();
        assert_eq!(back[&StepKind::NotVerified], 3);
    }

    #[test]
    fn a_journal_written_today_reads_back() {
        let begin = r#"{"seq":3,"state":"begin","op":"hardlink","path":"/p/b.jpg","keeper":"/p/a.jpg","tmp":"/p/.neardup-3-b.jpg.tmp","content":"5:00","bytes":5,"mtime_ns":1,"mode":420,"time":2}"#;
        let e: Entry = serde_json::from_str(begin).unwrap();
        assert_eq!(
            (e.seq, e.state, e.op),
            (3, EntryState::Begin, Some(Action::Hardlink))
        );
        assert_eq!(serde_json::to_string(&e).unwrap(), begin);
        for (line, state) in [
            (r#"{"seq":3,"state":"done"}"#, EntryState::Done),
            (
                r#"{"seq":3,"state":"failed","error":"x"}"#,
                EntryState::Failed,
            ),
            (r#"{"seq":3,"state":"undone"}"#, EntryState::Undone),
        ] {
            let e: Entry = serde_json::from_str(line).unwrap();
            assert_eq!(e.state, state);
            assert_eq!(serde_json::to_string(&e).unwrap(), line);
        }
    }
}
