//! Undo: restore what a journal records, newest first.

use super::checks::content_of;
use super::checks::same_file;
use super::faults::Injector;
use super::fs::{copy_verified, move_file, parent, sync_dir};
use super::journal::{read_journal, Entry, EntryState, Journal};
use super::lock;
use super::Action;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// What undo did (or would do) with one journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoStatus {
    Restored,
    /// Dry run: would be restored.
    WouldRestore,
    /// The change was never made (or nothing of it is left to undo).
    NothingToDo,
    /// Undone by an earlier run.
    AlreadyUndone,
    CannotRestore,
}

/// What undo did (or would do) with one journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoStep {
    pub seq: u64,
    pub op: Action,
    pub path: String,
    pub status: UndoStatus,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UndoSummary {
    pub dry_run: bool,
    pub restored: u64,
    pub nothing_to_do: u64,
    pub already_undone: u64,
    pub cannot_restore: u64,
    /// A last line cut short (a kill while it was written) was ignored.
    pub torn_line: bool,
    pub steps: Vec<UndoStep>,
}

/// Undo what a journal records, newest first. Without `execute` nothing is
/// changed and the steps say what would be restored.
///
/// With `execute` the journal is locked first (an apply still writing it,
/// or another undo, is waited for; `waiting` is told) and the files of
/// each entry are locked while it is restored (see [`lock`]).
pub fn undo(
    journal_path: &Path,
    execute: bool,
    on: &mut dyn FnMut(&UndoStep),
    waiting: &mut dyn FnMut(&Path),
    cancel: &AtomicBool,
) -> Result<UndoSummary> {
    // Read once to refuse what is not a journal (never opened for writing:
    // a FIFO would block), then again under the journal's lock.
    let mut read = read_journal(journal_path)?;
    let mut journal = if execute {
        let j = Journal::append(journal_path).map_err(|e| {
            Error::Plan(format!(
                "cannot write to the journal {}: {e}",
                journal_path.display()
            ))
        })?;
        lock::wait_for(&j.file, journal_path, waiting).map_err(|e| {
            Error::Plan(format!(
                "cannot lock the journal {}: {e}",
                journal_path.display()
            ))
        })?;
        read = read_journal(journal_path)?;
        Some(j)
    } else {
        None
    };
    let (_header, entries, torn) = read;
    let mut begins: BTreeMap<u64, Entry> = BTreeMap::new();
    let mut states: HashMap<u64, Vec<EntryState>> = HashMap::new();
    for e in entries {
        if e.state == EntryState::Begin {
            begins.insert(e.seq, e);
        } else {
            states.entry(e.seq).or_default().push(e.state);
        }
    }
    let inj = Injector::default();
    let mut summary = UndoSummary {
        dry_run: !execute,
        torn_line: torn,
        ..UndoSummary::default()
    };
    for (seq, e) in begins.iter().rev() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let st = states.get(seq).cloned().unwrap_or_default();
        let (Some(op), Some(path)) = (e.op, e.path.clone()) else {
            continue;
        };
        let (status, detail) = if st.contains(&EntryState::Undone) {
            (UndoStatus::AlreadyUndone, "undone by an earlier run".into())
        } else {
            // The entry's files stay locked while it is restored.
            let held = if execute {
                let paths: Vec<&Path> = std::iter::once(path.as_path())
                    .chain(e.to.as_deref())
                    .chain(e.keeper.as_deref())
                    .collect();
                lock::files(&paths, waiting)
            } else {
                lock::Held::none()
            };
            let result = match held.failed() {
                Some((p, err)) => Err(format!("cannot lock {}: {err}", p.display())),
                None => restore(e, &path, execute, &inj),
            };
            drop(held);
            match result {
                Ok(Restore::Restored(d)) => {
                    if let Some(j) = journal.as_mut() {
                        j.write(&Entry {
                            seq: *seq,
                            state: EntryState::Undone,
                            ..Entry::default()
                        })?;
                    }
                    let status = if execute {
                        UndoStatus::Restored
                    } else {
                        UndoStatus::WouldRestore
                    };
                    (status, d)
                }
                Ok(Restore::Nothing(d)) => (UndoStatus::NothingToDo, d),
                Err(d) => (UndoStatus::CannotRestore, d),
            }
        };
        let step = UndoStep {
            seq: *seq,
            op,
            path: path.to_string_lossy().into_owned(),
            status,
            detail,
        };
        match step.status {
            UndoStatus::Restored | UndoStatus::WouldRestore => summary.restored += 1,
            UndoStatus::NothingToDo => summary.nothing_to_do += 1,
            UndoStatus::AlreadyUndone => summary.already_undone += 1,
            UndoStatus::CannotRestore => summary.cannot_restore += 1,
        }
        on(&step);
        summary.steps.push(step);
    }
    Ok(summary)
}

enum Restore {
    Restored(String),
    Nothing(String),
}

fn has_content(p: &Path, content: &str) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) && content_of(p).is_ok_and(|c| c == content)
}

/// Restore one journal entry, looking at what is on disk now (the entry may
/// be a `begin` without `done`: the process was killed during the change).
fn restore(
    e: &Entry,
    path: &Path,
    execute: bool,
    inj: &Injector,
) -> std::result::Result<Restore, String> {
    let content = e.content.clone().unwrap_or_default();
    let mtime = e.mtime_ns.unwrap_or_default();
    let here = has_content(path, &content);
    let mv_back = |from: &Path| -> std::result::Result<Restore, String> {
        if execute {
            move_file(from, &content, mtime, path, inj)
                .map_err(|err| format!("cannot move {} back: {err}", from.display()))?;
        }
        Ok(Restore::Restored(format!(
            "{} -> {}",
            from.display(),
            path.display()
        )))
    };
    match e.op.expect("checked") {
        Action::Move => {
            let to = e.to.clone().ok_or("the entry has no destination")?;
            if here {
                // Never moved, or killed before the source went: drop a
                // complete copy or link left at the destination.
                if fs::symlink_metadata(&to).is_ok()
                    && (same_file(&to, path) || has_content(&to, &content))
                {
                    if execute {
                        fs::remove_file(&to).map_err(|err| {
                            format!("cannot remove the extra copy {}: {err}", to.display())
                        })?;
                    }
                    return Ok(Restore::Restored(format!(
                        "removed the extra copy {}",
                        to.display()
                    )));
                }
                return Ok(Restore::Nothing("the file is still in its place".into()));
            }
            if fs::symlink_metadata(path).is_ok() {
                return Err(format!(
                    "something else is at {} now: not overwritten",
                    path.display()
                ));
            }
            if has_content(&to, &content) {
                return mv_back(&to);
            }
            Err(format!(
                "the moved file is not at {} (or it changed)",
                to.display()
            ))
        }
        Action::Delete => {
            if here {
                Ok(Restore::Nothing("the file was not deleted".into()))
            } else {
                Err("deleted: a deleted file cannot be restored".into())
            }
        }
        Action::Trash => {
            if here {
                return Ok(Restore::Nothing("the file was not trashed".into()));
            }
            if fs::symlink_metadata(path).is_ok() {
                return Err(format!(
                    "something else is at {} now: not overwritten",
                    path.display()
                ));
            }
            restore_from_trash(path, e.time.unwrap_or(0), execute)
        }
        Action::Hardlink | Action::Symlink => {
            let keeper = e.keeper.clone().ok_or("the entry has no keeper")?;
            if let Some(tmp) = &e.tmp {
                if execute && fs::symlink_metadata(tmp).is_ok() {
                    let _ = fs::remove_file(tmp);
                }
            }
            let is_our_link = |p: &Path| -> bool {
                match e.op {
                    Some(Action::Symlink) => fs::read_link(p).is_ok_and(|t| t == keeper),
                    _ => {
                        fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) && same_file(p, &keeper)
                    }
                }
            };
            if let Some(backup) = &e.to {
                if has_content(backup, &content) {
                    if here {
                        // Copied but not replaced: the backup is extra.
                        if execute {
                            fs::remove_file(backup).map_err(|err| err.to_string())?;
                        }
                        return Ok(Restore::Restored(format!(
                            "removed the extra copy {}",
                            backup.display()
                        )));
                    }
                    if fs::symlink_metadata(path).is_ok() && !is_our_link(path) {
                        return Err(format!(
                            "something else is at {} now: not overwritten",
                            path.display()
                        ));
                    }
                    if execute && fs::symlink_metadata(path).is_ok() {
                        fs::remove_file(path).map_err(|err| err.to_string())?;
                    }
                    return mv_back(backup);
                }
                if here {
                    return Ok(Restore::Nothing("the file is still in its place".into()));
                }
                return Err(format!(
                    "the original is not at {} (or it changed)",
                    backup.display()
                ));
            }
            if here && !is_our_link(path) {
                return Ok(Restore::Nothing("the file is still in its place".into()));
            }
            if fs::symlink_metadata(path).is_ok() && !is_our_link(path) {
                return Err(format!(
                    "something else is at {} now: not overwritten",
                    path.display()
                ));
            }
            // Identical to the keeper: a separate copy of its bytes.
            if !has_content(&keeper, &content) {
                return Err(format!(
                    "the keeper {} no longer holds the content",
                    keeper.display()
                ));
            }
            if execute {
                let tmp = parent(path).join(format!(
                    ".neardup-undo-{}-{}.tmp",
                    e.seq,
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
                let _ = fs::remove_file(&tmp);
                copy_verified(&keeper, &tmp, &content, e.mode.unwrap_or(0o644), mtime, inj)
                    .map_err(|err| format!("cannot copy the keeper: {err}"))?;
                fs::rename(&tmp, path).map_err(|err| {
                    let _ = fs::remove_file(&tmp);
                    format!("cannot replace the link: {err}")
                })?;
                sync_dir(parent(path));
            }
            Ok(Restore::Restored(format!(
                "a separate copy of {} again",
                keeper.display()
            )))
        }
    }
}

#[cfg(any(
    target_os = "windows",
    all(
        unix,
        not(target_os = "macos"),
        not(target_os = "ios"),
        not(target_os = "android")
    )
))]
fn restore_from_trash(
    path: &Path,
    since: i64,
    execute: bool,
) -> std::result::Result<Restore, String> {
    // The trash records the folder canonicalised.
    let want = match (
        path.parent().and_then(|p| fs::canonicalize(p).ok()),
        path.file_name(),
    ) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    };
    let items = trash::os_limited::list().map_err(|e| format!("cannot list the trash: {e}"))?;
    let found = items
        .into_iter()
        .filter(|i| i.original_path() == want || i.original_path() == path)
        .filter(|i| i.time_deleted >= since - 2 || i.time_deleted < 0)
        .max_by_key(|i| i.time_deleted);
    let Some(item) = found else {
        return Err("not found in the trash (emptied?)".into());
    };
    if execute {
        trash::os_limited::restore_all([item])
            .map_err(|e| format!("cannot restore from the trash: {e}"))?;
    }
    Ok(Restore::Restored("from the trash".into()))
}

#[cfg(not(any(
    target_os = "windows",
    all(
        unix,
        not(target_os = "macos"),
        not(target_os = "ios"),
        not(target_os = "android")
    )
)))]
fn restore_from_trash(
    _path: &Path,
    _since: i64,
    _execute: bool,
) -> std::result::Result<Restore, String> {
    Err(
        "this platform's trash cannot be restored from here: restore it from the desktop trash"
            .into(),
    )
}
