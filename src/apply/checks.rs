//! The checks of one file before it is acted on: still the file that was
//! scanned, inside the roots, not a reference, not the keeper's own file;
//! and what they decide for each member.

use super::fs::{destination, free_name};
use super::plan::{canonical_prefix, resolved, Plan, PlannedGroup, Target};
use super::{Action, ApplyOptions, StepKind};
use crate::report::Member;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// `size:blake3` of a file's bytes.
pub fn content_of(path: &Path) -> io::Result<String> {
    let (mut f, _) = crate::open::open_regular(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n: u64 = 0;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok(format!("{n}:{}", h.finalize().to_hex()))
}

/// Is the file at `abs` still what the plan says (size, mtime; with `hash`
/// also the content)? `Err` says how it differs.
pub(super) fn unchanged(
    abs: &Path,
    m: &Member,
    hash: bool,
) -> std::result::Result<(), (String, StepKind)> {
    let meta = match fs::metadata(abs) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(("gone since the scan".into(), StepKind::Gone))
        }
        Err(e) => return Err((format!("cannot read: {e}"), StepKind::Gone)),
    };
    if !meta.is_file() {
        return Err(("no longer a file".into(), StepKind::Changed));
    }
    if meta.len() != m.bytes {
        return Err((
            format!(
                "changed since the scan (size {} -> {})",
                m.bytes,
                meta.len()
            ),
            StepKind::Changed,
        ));
    }
    if Some(crate::cache::mtime_ns(&meta)) != m.mtime_ns {
        return Err((
            "changed since the scan (modification time)".into(),
            StepKind::Changed,
        ));
    }
    if hash {
        match content_of(abs) {
            Ok(c) if Some(&c) == m.content.as_ref() => {}
            Ok(_) => return Err(("changed since the scan (content)".into(), StepKind::Changed)),
            Err(e) => return Err((format!("cannot read: {e}"), StepKind::Gone)),
        }
    }
    Ok(())
}

/// Same file on disk (device and inode).
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}

pub(super) fn same_device(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}
/// What the checks decided for one member.
#[derive(Debug, Clone)]
pub(super) enum Decision {
    Keep {
        reason: String,
        kind: StepKind,
    },
    Skip {
        reason: String,
        kind: StepKind,
    },
    /// Passes every check: act on it (`to`: the move's destination, or
    /// the links' backup of a member not identical to the keeper).
    Act {
        to: Option<PathBuf>,
        identical: bool,
    },
}

/// Why a whole group is left alone (its keeper cannot be relied on).
pub(super) type GroupRefusal = (String, StepKind);

/// The keeper's real file: the keeper itself, or the file its symbolic
/// link leads to, when that is a regular file inside the roots and still
/// as scanned (hash included). Links are made to it, and it is the copy
/// that stays.
pub(super) fn check_keeper(
    g: &PlannedGroup,
    plan: &Plan,
) -> std::result::Result<Target, GroupRefusal> {
    let k = &g.keeper;
    let name = &k.member.path;
    let real = fs::canonicalize(&k.abs).map_err(|_| {
        (
            format!("the keeper {name} is not as scanned (gone since the scan, or a broken link)"),
            StepKind::KeeperChanged,
        )
    })?;
    let meta = fs::metadata(&real).map_err(|e| {
        (
            format!("the keeper {name} is not as scanned (cannot read: {e})"),
            StepKind::KeeperChanged,
        )
    })?;
    if !meta.is_file() {
        return Err((
            format!(
                "the keeper {name} is not a regular file (it leads to {})",
                real.display()
            ),
            StepKind::KeeperNotAFile,
        ));
    }
    if !plan.canon_roots.iter().any(|r| real.starts_with(r)) {
        return Err((
            format!(
                "the keeper {name} resolves to {}, outside the roots: no real copy would stay inside them",
                real.display()
            ),
            StepKind::KeeperOutsideRoots,
        ));
    }
    unchanged(&real, &k.member, true).map_err(|(why, _)| {
        (
            format!("the keeper {name} is not as scanned ({why})"),
            StepKind::KeeperChanged,
        )
    })?;
    let mut t = k.clone();
    t.abs = real;
    Ok(t)
}

/// Every check of one member against its group's (checked) keeper, in the
/// order of the module's rules. `reserved` holds the destinations already
/// given to earlier members.
pub(super) fn decide(
    t: &Target,
    keeper: &std::result::Result<Target, GroupRefusal>,
    g: &PlannedGroup,
    plan: &Plan,
    opts: &ApplyOptions,
    reserved: &mut HashSet<PathBuf>,
    verifier: Option<&mut crate::reverify::Verifier>,
) -> Decision {
    if is_reference(t, plan) {
        return Decision::Keep {
            reason: "in a reference folder".into(),
            kind: StepKind::Reference,
        };
    }
    let keeper = match keeper {
        Ok(k) => k,
        Err((why, kind)) => {
            return Decision::Skip {
                reason: format!("{why}: nothing in this group is touched"),
                kind: *kind,
            }
        }
    };
    if !opts.pair_raw_jpeg && g.raw_jpeg_twins.contains(&t.member.path) {
        return Decision::Keep {
            reason: "the RAW+JPEG twin of the keeper (give --pair-raw-jpeg to act on it)".into(),
            kind: StepKind::RawJpegPair,
        };
    }
    if let Err((reason, kind)) = check_target(t, keeper, plan, opts) {
        return Decision::Skip { reason, kind };
    }
    // Still a near-duplicate of the keeper, judged from the files themselves
    // (never the cache). `None`: this member was verified by the check pass,
    // and `check_target` has just proved both files hold the same bytes.
    if let Some(v) = verifier {
        if let Err(reason) = v.check(g.id, &keeper.abs, &keeper.member, &t.abs, &t.member) {
            return Decision::Skip {
                reason,
                kind: StepKind::NotVerified,
            };
        }
    }
    let identical = t.member.content == keeper.member.content;
    let to = match opts.action {
        Action::Move => Some(free_name(
            &destination(t, plan.to.as_ref().expect("validated")),
            reserved,
        )),
        Action::Hardlink | Action::Symlink if !identical => match &plan.to {
            Some(dir) => Some(free_name(&destination(t, dir), reserved)),
            None => {
                return Decision::Skip {
                    reason: "not byte-identical to the keeper: a link would lose its own pixels (give --to DIR to move it there first)".into(),
                    kind: StepKind::NotIdentical,
                }
            }
        },
        _ => None,
    };
    if let Some(d) = &to {
        reserved.insert(d.clone());
    }
    Decision::Act { to, identical }
}

pub(super) fn is_reference(t: &Target, plan: &Plan) -> bool {
    if t.member.reference {
        return true;
    }
    match resolved(&t.abs) {
        Some((here, target)) => plan
            .references
            .iter()
            .any(|r| here.starts_with(r) || target.starts_with(r)),
        // Not there: it will be skipped as gone; a reference path by name
        // still counts.
        None => plan
            .references
            .iter()
            .any(|r| canonical_prefix(&t.abs).starts_with(r)),
    }
}

/// The checks a member must pass before it is acted on.
pub(super) fn check_target(
    t: &Target,
    keeper: &Target,
    plan: &Plan,
    opts: &ApplyOptions,
) -> std::result::Result<(), (String, StepKind)> {
    let lmeta = match fs::symlink_metadata(&t.abs) {
        Ok(m) => m,
        Err(_) => return Err(("gone since the scan".into(), StepKind::Gone)),
    };
    let Some((here, target)) = resolved(&t.abs) else {
        return Err((
            "gone since the scan (or a broken link)".into(),
            StepKind::Gone,
        ));
    };
    let inside = |p: &Path| plan.canon_roots.iter().any(|r| p.starts_with(r));
    if !inside(&here) || !inside(&target) {
        return Err((
            "resolves outside the scanned roots (a symbolic link): not touched".into(),
            StepKind::OutsideRoots,
        ));
    }
    if lmeta.file_type().is_symlink() && !matches!(opts.action, Action::Trash | Action::Delete) {
        return Err((
            "is a symbolic link: only trash and delete act on links".into(),
            StepKind::Symlink,
        ));
    }
    if same_file(&t.abs, &keeper.abs) {
        return Err((
            "is the keeper's own file (a link to it): nothing to do".into(),
            StepKind::SameFile,
        ));
    }
    if opts.action == Action::Hardlink && !same_device(&t.abs, &keeper.abs) {
        return Err((
            "on another file system than the keeper: a hard link cannot cross".into(),
            StepKind::OtherFilesystem,
        ));
    }
    unchanged(&t.abs, &t.member, true)
}
