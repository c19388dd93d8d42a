//! Acting on a plan (a scan's report): keep each group's keeper, and move,
//! trash, link or delete the other members; an undo journal; undo.
//!
//! Safety rules, in the order they are checked:
//! 1. The whole plan is validated before anything is touched
//!    ([`validate`]): its version, one keeper per group that is one of its
//!    members, no file in two groups, every path inside the scanned roots,
//!    the content hash and mtime of every member present.
//! 2. A group is only acted on when its keeper is still the file that was
//!    scanned (size, mtime, content hash): the last copy is never removed.
//! 3. A member is only acted on when it is still the file that was scanned,
//!    is not in a reference folder, does not resolve (through a symbolic
//!    link) outside the scanned roots, and is not the keeper's own file.
//!    Otherwise it is skipped, with the reason.
//! 4. With `execute`, each change is written to the journal (JSON lines,
//!    flushed and fsynced) before it is made and marked done after, so
//!    [`undo`] can restore what was done even after a kill.
//!
//! Without `execute` nothing is changed: the same checks run (hashes
//! included) and the steps say what would be done.

use crate::error::{Error, Result};
use crate::report::{Member, Report};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The journal format's version (first line: `{"neardup_journal": 1, ..}`).
pub const JOURNAL_VERSION: u32 = 1;

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

/// Faults injected by the tests (`NEARDUP_TEST_FAULTS`, read by the
/// binary): `abort_at=N` aborts the process at the Nth checkpoint (just
/// before or after a change, between a copy and the removal of its source),
/// `enospc_after=BYTES` makes copies fail with "no space left" once that
/// many bytes were written, `force_copy` makes moves copy as if across file
/// systems.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub abort_at: Option<u64>,
    pub enospc_after: Option<u64>,
    pub force_copy: bool,
}

impl Faults {
    pub fn parse(spec: &str) -> Result<Faults> {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| Error::Param(format!("fault {k}: bad number {v:?}")))
            };
            match k {
                "abort_at" => f.abort_at = Some(num()?),
                "enospc_after" => f.enospc_after = Some(num()?),
                "force_copy" => f.force_copy = true,
                _ => return Err(Error::Param(format!("unknown fault {k:?}"))),
            }
        }
        Ok(f)
    }
}

/// The faults of one run, with their counters.
#[derive(Default)]
struct Injector {
    faults: Faults,
    checkpoints: Cell<u64>,
    written: Cell<u64>,
}

impl Injector {
    fn checkpoint(&self) {
        let n = self.checkpoints.get() + 1;
        self.checkpoints.set(n);
        if self.faults.abort_at == Some(n) {
            // A kill: no unwinding, no clean-up, no flush beyond what was synced.
            std::process::abort();
        }
    }
    fn wrote(&self, n: u64) -> io::Result<()> {
        let total = self.written.get() + n;
        self.written.set(total);
        match self.faults.enospc_after {
            Some(limit) if total > limit => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device (injected)",
            )),
            _ => Ok(()),
        }
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

/// One line of the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub group: u64,
    /// `keep` or the action.
    pub op: String,
    pub path: String,
    /// Where the file goes (move) or the keeper it is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub bytes: u64,
    pub status: Status,
    /// Why it was kept, skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A short key of the skip reason (`gone`, `changed`, `outside_roots`,
    /// `symlink`, `same_file`, `not_identical`, `other_filesystem`,
    /// `keeper_changed`, `not_verified`) or of the keep reason (`keeper`, `reference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub action: String,
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
    pub skip_kinds: BTreeMap<String, u64>,
    /// Stopped early (Ctrl-C, or the journal could not be written).
    pub stopped: bool,
    pub steps: Vec<Step>,
}

/// Told to the caller while the plan runs.
pub enum Event<'a> {
    /// Before the first change: the files and bytes planned for the action
    /// (members present with the scanned size and mtime).
    Start {
        files: u64,
        bytes: u64,
    },
    Step(&'a Step),
}

/// Read a plan: valid JSON, a neardup report of this schema version.
pub fn load_plan(path: &Path) -> Result<Report> {
    let text = fs::read_to_string(path)
        .map_err(|e| Error::Plan(format!("cannot read the plan {}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Plan(format!("{} is not valid JSON: {e}", path.display())))?;
    if v.get("tool")
        .and_then(|t| t.get("name"))
        .and_then(|n| n.as_str())
        != Some("neardup")
    {
        return Err(Error::Plan(format!(
            "{} is not a neardup report (no tool.name \"neardup\")",
            path.display()
        )));
    }
    match v.get("schema_version").and_then(|s| s.as_u64()) {
        Some(n) if n == crate::report::SCHEMA_VERSION as u64 => {}
        Some(n) => {
            return Err(Error::Plan(format!(
                "{} has schema_version {n}; this neardup reads version {}",
                path.display(),
                crate::report::SCHEMA_VERSION
            )))
        }
        None => {
            return Err(Error::Plan(format!(
                "{} has no schema_version",
                path.display()
            )))
        }
    }
    serde_json::from_value(v).map_err(|e| {
        Error::Plan(format!(
            "{} is not a valid neardup report: {e}",
            path.display()
        ))
    })
}

/// The default journal for a plan: `<plan>.journal.jsonl` next to it, or
/// `<plan>.journal-2.jsonl`... when that exists (an earlier run's journal is
/// never overwritten).
pub fn default_journal(plan: &Path) -> PathBuf {
    let stem = plan
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    let dir = plan.parent().unwrap_or(Path::new(""));
    let mut k = 1;
    loop {
        let name = if k == 1 {
            format!("{stem}.journal.jsonl")
        } else {
            format!("{stem}.journal-{k}.jsonl")
        };
        let p = dir.join(name);
        if fs::symlink_metadata(&p).is_err() {
            return p;
        }
        k += 1;
    }
}

/// An absolute path with `.` and `..` resolved lexically.
pub fn normalize(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A member of the plan, resolved.
#[derive(Debug, Clone)]
struct Target {
    member: Member,
    /// Absolute, normalised.
    abs: PathBuf,
    /// The root it lies under (absolute, normalised).
    root: PathBuf,
}

#[derive(Debug, Clone)]
struct PlannedGroup {
    id: u64,
    keeper: Target,
    others: Vec<Target>,
    /// Members that are the keeper's RAW+JPEG twin (same shot, same name).
    raw_jpeg_twins: Vec<String>,
}

/// A validated plan.
#[derive(Debug)]
struct Plan {
    groups: Vec<PlannedGroup>,
    /// Canonical roots (those that still exist).
    canon_roots: Vec<PathBuf>,
    /// Canonical reference folders.
    references: Vec<PathBuf>,
    to: Option<PathBuf>,
}

/// Check the whole plan and the options before anything is touched. Every
/// problem is listed in the error.
fn validate(report: &Report, opts: &ApplyOptions) -> Result<Plan> {
    let mut problems: Vec<String> = Vec::new();
    let roots: Vec<PathBuf> = report
        .parameters
        .roots
        .iter()
        .map(|r| normalize(Path::new(r)))
        .collect();
    if roots.is_empty() {
        problems.push("the plan lists no roots (parameters.roots)".into());
    }
    let root_of = |p: &Path| -> Option<PathBuf> {
        roots
            .iter()
            .filter(|r| p.starts_with(r))
            .max_by_key(|r| r.components().count())
            .cloned()
    };
    let mut seen: HashMap<PathBuf, u64> = HashMap::new();
    let mut groups = Vec::new();
    for g in &report.groups {
        let mut paths: Vec<&str> = g.members.iter().map(|m| m.path.as_str()).collect();
        let mut files: Vec<&str> = g.files.iter().map(String::as_str).collect();
        paths.sort_unstable();
        files.sort_unstable();
        if paths != files {
            problems.push(format!(
                "group {}: \"files\" and \"members\" list different paths (edit both, or keep them equal)",
                g.id
            ));
        }
        let mut targets = Vec::new();
        for m in &g.members {
            let abs = normalize(Path::new(&m.path));
            match seen.insert(abs.clone(), g.id) {
                Some(other) if other == g.id => {
                    problems.push(format!("group {}: {} is listed twice", g.id, m.path))
                }
                Some(other) => problems.push(format!(
                    "{} is listed in groups {other} and {}",
                    m.path, g.id
                )),
                None => {}
            }
            let Some(root) = root_of(&abs) else {
                problems.push(format!(
                    "group {}: {} is outside the scanned roots ({})",
                    g.id,
                    m.path,
                    report.parameters.roots.join(", ")
                ));
                continue;
            };
            if m.content.is_none() || m.mtime_ns.is_none() {
                problems.push(format!(
                    "group {}: {} has no content hash or mtime (the plan was written by an older neardup: scan again)",
                    g.id, m.path
                ));
            }
            targets.push(Target {
                member: m.clone(),
                abs,
                root,
            });
        }
        let keeper = match &g.keeper {
            None => {
                problems.push(format!("group {}: no keeper", g.id));
                continue;
            }
            Some(k) => k,
        };
        if !g.members.iter().any(|m| &m.path == keeper) {
            problems.push(format!(
                "group {}: the keeper {keeper} is not one of its members",
                g.id
            ));
            continue;
        }
        // A keeper outside the roots was reported above.
        let Some(ki) = targets.iter().position(|t| &t.member.path == keeper) else {
            continue;
        };
        let keeper = targets.remove(ki);
        let raw_jpeg_twins = g
            .pairs
            .iter()
            .filter(|p| p.raw_jpeg_pair)
            .filter_map(|p| {
                if p.a == keeper.member.path {
                    Some(p.b.clone())
                } else if p.b == keeper.member.path {
                    Some(p.a.clone())
                } else {
                    None
                }
            })
            .collect();
        groups.push(PlannedGroup {
            id: g.id,
            keeper,
            others: targets,
            raw_jpeg_twins,
        });
    }
    let canon_roots: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| fs::canonicalize(r).ok())
        .collect();
    let mut references: Vec<PathBuf> = report
        .parameters
        .reference
        .iter()
        .map(PathBuf::from)
        .chain(opts.reference.iter().cloned())
        .filter_map(|r| fs::canonicalize(r).ok())
        .collect();
    references.sort();
    references.dedup();
    let to = match (&opts.to, opts.action) {
        (None, Action::Move) => {
            problems.push("move needs a destination: --to DIR".into());
            None
        }
        (Some(_), Action::Trash | Action::Delete) => {
            problems.push(format!(
                "--to goes with move, hardlink and symlink, not {}",
                opts.action.name()
            ));
            None
        }
        (Some(to), _) => {
            let abs = normalize(to);
            if let Ok(m) = fs::metadata(&abs) {
                if !m.is_dir() {
                    problems.push(format!("--to {} is not a folder", to.display()));
                }
            }
            let canon = canonical_prefix(&abs);
            if let Some(r) = references.iter().find(|r| canon.starts_with(r)) {
                problems.push(format!(
                    "--to {} is inside the reference folder {} (reference folders are never touched)",
                    to.display(),
                    r.display()
                ));
            }
            Some(abs)
        }
        (None, _) => None,
    };
    if opts.execute && opts.journal.is_none() {
        problems.push("--execute needs a journal".into());
    }
    if !problems.is_empty() {
        let n = problems.len();
        let mut text = format!(
            "the plan cannot be applied ({n} problem{}; nothing was touched):",
            if n == 1 { "" } else { "s" }
        );
        for p in problems.iter().take(20) {
            text.push_str("\n  ");
            text.push_str(p);
        }
        if n > 20 {
            text.push_str(&format!("\n  ... and {} more", n - 20));
        }
        return Err(Error::Plan(text));
    }
    Ok(Plan {
        groups,
        canon_roots,
        references,
        to,
    })
}

/// The canonical form of the longest existing prefix of `p`, with the rest
/// appended (for paths that do not exist yet).
fn canonical_prefix(p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = fs::canonicalize(&cur) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// Where a file is, resolved: its folder canonicalised, plus, for a link,
/// where the link leads.
fn resolved(abs: &Path) -> Option<(PathBuf, PathBuf)> {
    let parent = abs.parent()?;
    let dir = fs::canonicalize(parent).ok()?;
    let here = dir.join(abs.file_name()?);
    let target = fs::canonicalize(abs).ok()?;
    Some((here, target))
}

/// `size:blake3` of a file's bytes.
pub fn content_of(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
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
fn unchanged(
    abs: &Path,
    m: &Member,
    hash: bool,
) -> std::result::Result<(), (String, &'static str)> {
    let meta = match fs::metadata(abs) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(("gone since the scan".into(), "gone"))
        }
        Err(e) => return Err((format!("cannot read: {e}"), "gone")),
    };
    if !meta.is_file() {
        return Err(("no longer a file".into(), "changed"));
    }
    if meta.len() != m.bytes {
        return Err((
            format!(
                "changed since the scan (size {} -> {})",
                m.bytes,
                meta.len()
            ),
            "changed",
        ));
    }
    if Some(crate::cache::mtime_ns(&meta)) != m.mtime_ns {
        return Err((
            "changed since the scan (modification time)".into(),
            "changed",
        ));
    }
    if hash {
        match content_of(abs) {
            Ok(c) if Some(&c) == m.content.as_ref() => {}
            Ok(_) => return Err(("changed since the scan (content)".into(), "changed")),
            Err(e) => return Err((format!("cannot read: {e}"), "gone")),
        }
    }
    Ok(())
}

/// Same file on disk (device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
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

fn same_device(a: &Path, b: &Path) -> bool {
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

fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode()
    }
    #[cfg(not(unix))]
    {
        if meta.permissions().readonly() {
            0o444
        } else {
            0o644
        }
    }
}

fn set_mode(f: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
    }
    #[cfg(not(unix))]
    {
        let mut p = f.metadata()?.permissions();
        p.set_readonly(mode & 0o200 == 0);
        f.set_permissions(p)
    }
}

fn system_time(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Make a folder's entries durable (best effort where folders cannot be
/// opened).
fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Copy `from` to the new file `to` (never overwriting), fsync it, give it
/// `mode` and the mtime `mtime_ns`, then read it back and check its content
/// is `content`. On failure the partial copy is removed.
fn copy_verified(
    from: &Path,
    to: &Path,
    content: &str,
    mode: u32,
    mtime_ns: i64,
    inj: &Injector,
) -> io::Result<()> {
    let result = (|| {
        let mut src = File::open(from)?;
        let mut dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = src.read(&mut buf)?;
            if k == 0 {
                break;
            }
            inj.wrote(k as u64)?;
            dst.write_all(&buf[..k])?;
        }
        dst.sync_all()?;
        set_mode(&dst, mode)?;
        dst.set_modified(system_time(mtime_ns))?;
        dst.sync_all()?;
        drop(dst);
        sync_dir(parent(to));
        let got = content_of(to)?;
        if got != content {
            return Err(io::Error::other(format!(
                "the copy at {} does not match the original",
                to.display()
            )));
        }
        Ok(())
    })();
    if result.is_err() {
        // Only a file this call created is removed (create_new above).
        if let Err(e) = &result {
            if e.kind() != io::ErrorKind::AlreadyExists {
                let _ = fs::remove_file(to);
            }
        }
    }
    result
}

/// Move `from` to `to` (which must not exist): a hard link then unlink on
/// the same file system, else copy, fsync, verify, remove.
fn move_file(
    from: &Path,
    m_content: &str,
    mtime_ns: i64,
    to: &Path,
    inj: &Injector,
) -> io::Result<()> {
    fs::create_dir_all(parent(to))?;
    let linked = if inj.faults.force_copy {
        false
    } else {
        match fs::hard_link(from, to) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
            Err(e)
                if e.kind() == io::ErrorKind::CrossesDevices
                    || e.kind() == io::ErrorKind::Unsupported
                    || e.raw_os_error() == Some(1) =>
            {
                false
            }
            Err(e) => return Err(e),
        }
    };
    if linked {
        sync_dir(parent(to));
        inj.checkpoint();
        fs::remove_file(from)?;
        sync_dir(parent(from));
        return Ok(());
    }
    let mode = fs::metadata(from).map(|m| mode_of(&m))?;
    copy_verified(from, to, m_content, mode, mtime_ns, inj)?;
    inj.checkpoint();
    // The source must still be the same file before it goes.
    let meta = fs::metadata(from)?;
    if crate::cache::mtime_ns(&meta) != mtime_ns {
        let _ = fs::remove_file(to);
        return Err(io::Error::other("the source changed while it was copied"));
    }
    fs::remove_file(from)?;
    sync_dir(parent(from));
    Ok(())
}

/// A free name for `want`: itself, or `name-1.ext`, `name-2.ext`...
fn free_name(want: &Path, reserved: &HashSet<PathBuf>) -> PathBuf {
    let taken = |p: &Path| reserved.contains(p) || fs::symlink_metadata(p).is_ok();
    if !taken(want) {
        return want.to_path_buf();
    }
    let stem = want
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = want
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut k = 1;
    loop {
        let p = parent(want).join(format!("{stem}-{k}{ext}"));
        if !taken(&p) {
            return p;
        }
        k += 1;
    }
}

/// Where a member goes under `to`: its path relative to its root.
fn destination(t: &Target, to: &Path) -> PathBuf {
    let rel = match t.abs.strip_prefix(&t.root) {
        Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
        _ => PathBuf::from(t.abs.file_name().unwrap_or_default()),
    };
    to.join(rel)
}

/// One journal line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// `begin` (written before the change), `done`, `failed` (nothing was
    /// changed), `undone` (written by undo).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Action>,
    /// The member acted on (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Where it was moved (move; the links' backup of a member that is not
    /// identical to the keeper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PathBuf>,
    /// The keeper (links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper: Option<PathBuf>,
    /// The temporary name a link is made under before it replaces the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmp: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Seconds since the epoch when the change began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The journal's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub neardup_journal: u32,
    pub tool_version: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PathBuf>,
}

/// An append-only JSON-lines file; each line is flushed and fsynced.
struct Journal {
    file: File,
}

impl Journal {
    fn create(path: &Path) -> Result<Journal> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                Error::Plan(format!(
                    "cannot create the journal {}: {e}{}",
                    path.display(),
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        " (an existing journal is never overwritten: give another --journal)"
                    } else {
                        ""
                    }
                ))
            })?;
        sync_dir(parent(&normalize(path)));
        Ok(Journal { file })
    }
    fn append(path: &Path) -> io::Result<Journal> {
        let file = fs::OpenOptions::new().append(true).open(path)?;
        Ok(Journal { file })
    }
    fn write<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()?;
        self.file.sync_data()
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Carry out a plan. Validation errors come back as [`Error::Plan`] before
/// anything is touched; everything after is reported per file in the
/// [`Summary`].
pub fn apply(
    report: &Report,
    opts: &ApplyOptions,
    on: &mut dyn FnMut(Event),
    cancel: &AtomicBool,
) -> Result<Summary> {
    let plan = validate(report, opts)?;
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
        action: opts.action.name().into(),
        dry_run: !opts.execute,
        journal: opts
            .journal
            .as_ref()
            .filter(|_| opts.execute)
            .map(|p| p.to_string_lossy().into_owned()),
        ..Summary::default()
    };

    // What is planned, from a cheap look (size and mtime) before any change.
    let (mut files, mut bytes) = (0u64, 0u64);
    for g in &plan.groups {
        for t in &g.others {
            if !is_reference(t, &plan) && unchanged(&t.abs, &t.member, false).is_ok() {
                files += 1;
                bytes += t.member.bytes;
            }
        }
    }
    on(Event::Start { files, bytes });

    let mut reserved: HashSet<PathBuf> = HashSet::new();
    let mut seq = 0u64;
    let mut verifier = crate::reverify::Verifier::new(report, crate::decode::Limits::default());
    'groups: for g in &plan.groups {
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
                    *summary
                        .skip_kinds
                        .entry(step.kind.clone().unwrap_or_default())
                        .or_default() += 1;
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
            op: opts.action.name().into(),
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
                op: "keep".into(),
                status: Status::Keep,
                reason: Some("keeper".into()),
                kind: Some("keeper".into()),
                ..base(&g.keeper)
            },
        );
        let keeper_ok = unchanged(&g.keeper.abs, &g.keeper.member, true);
        for t in &g.others {
            if cancel.load(Ordering::Relaxed) {
                summary.stopped = true;
                break 'groups;
            }
            if is_reference(t, &plan) {
                push(
                    &mut summary,
                    Step {
                        op: "keep".into(),
                        status: Status::Keep,
                        reason: Some("in a reference folder".into()),
                        kind: Some("reference".into()),
                        ..base(t)
                    },
                );
                continue;
            }
            let skip = |why: String, kind: &str| Step {
                reason: Some(why),
                kind: Some(kind.into()),
                ..base(t)
            };
            if let Err((why, _)) = &keeper_ok {
                push(
                    &mut summary,
                    skip(
                        format!(
                            "the keeper {} is not as scanned ({why}): nothing in this group is touched",
                            g.keeper.member.path
                        ),
                        "keeper_changed",
                    ),
                );
                continue;
            }
            if !opts.pair_raw_jpeg && g.raw_jpeg_twins.contains(&t.member.path) {
                push(
                    &mut summary,
                    Step {
                        op: "keep".into(),
                        status: Status::Keep,
                        reason: Some(
                            "the RAW+JPEG twin of the keeper (give --pair-raw-jpeg to act on it)"
                                .into(),
                        ),
                        kind: Some("raw_jpeg_pair".into()),
                        ..base(t)
                    },
                );
                continue;
            }
            if let Err((why, kind)) = check_target(t, g, &plan, opts) {
                push(&mut summary, skip(why, kind));
                continue;
            }
            // Still a near-duplicate of the keeper, from the files themselves.
            if !opts.bench_skip_reverify {
                let (k, m) = (&g.keeper, t);
                let v = verifier.check(g.id, &k.abs, &k.member, &m.abs, &m.member);
                if let Err(why) = v {
                    push(&mut summary, skip(why, "not_verified"));
                    continue;
                }
            }
            let identical = t.member.content == g.keeper.member.content;
            let to = match opts.action {
                Action::Move => Some(free_name(
                    &destination(t, plan.to.as_ref().expect("validated")),
                    &reserved,
                )),
                Action::Hardlink | Action::Symlink if !identical => match &plan.to {
                    Some(dir) => Some(free_name(&destination(t, dir), &reserved)),
                    None => {
                        push(
                            &mut summary,
                            skip(
                                "not byte-identical to the keeper: a link would lose its own pixels (give --to DIR to move it there first)".into(),
                                "not_identical",
                            ),
                        );
                        continue;
                    }
                },
                _ => None,
            };
            if let Some(d) = &to {
                reserved.insert(d.clone());
            }
            let shown_to = match opts.action {
                Action::Move => to.as_ref().map(|d| d.to_string_lossy().into_owned()),
                Action::Hardlink | Action::Symlink => Some(g.keeper.member.path.clone()),
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
                        to.as_ref().expect("set above").display()
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
            let mode = fs::metadata(&t.abs).map(|m| mode_of(&m)).unwrap_or(0o644);
            let begin = Entry {
                seq,
                state: "begin".into(),
                op: Some(opts.action),
                path: Some(t.abs.clone()),
                to: to.clone(),
                keeper: opts.action.is_link().then(|| g.keeper.abs.clone()),
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
            let result = act(
                opts.action,
                t,
                &g.keeper,
                to.as_deref(),
                tmp.as_deref(),
                &inj,
            );
            inj.checkpoint();
            let mark = Entry {
                seq,
                state: if result.is_ok() { "done" } else { "failed" }.into(),
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
                    op: "journal".into(),
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
    }
    Ok(summary)
}

fn is_reference(t: &Target, plan: &Plan) -> bool {
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
fn check_target(
    t: &Target,
    g: &PlannedGroup,
    plan: &Plan,
    opts: &ApplyOptions,
) -> std::result::Result<(), (String, &'static str)> {
    let lmeta = match fs::symlink_metadata(&t.abs) {
        Ok(m) => m,
        Err(_) => return Err(("gone since the scan".into(), "gone")),
    };
    let Some((here, target)) = resolved(&t.abs) else {
        return Err(("gone since the scan (or a broken link)".into(), "gone"));
    };
    let inside = |p: &Path| plan.canon_roots.iter().any(|r| p.starts_with(r));
    if !inside(&here) || !inside(&target) {
        return Err((
            "resolves outside the scanned roots (a symbolic link): not touched".into(),
            "outside_roots",
        ));
    }
    if lmeta.file_type().is_symlink() && !matches!(opts.action, Action::Trash | Action::Delete) {
        return Err((
            "is a symbolic link: only trash and delete act on links".into(),
            "symlink",
        ));
    }
    if same_file(&t.abs, &g.keeper.abs) {
        return Err((
            "is the keeper's own file (a link to it): nothing to do".into(),
            "same_file",
        ));
    }
    if opts.action == Action::Hardlink && !same_device(&t.abs, &g.keeper.abs) {
        return Err((
            "on another file system than the keeper: a hard link cannot cross".into(),
            "other_filesystem",
        ));
    }
    unchanged(&t.abs, &t.member, true)
}

/// Make one change. The file is verified just before; the keeper is checked
/// again just before anything is removed.
fn act(
    action: Action,
    t: &Target,
    keeper: &Target,
    to: Option<&Path>,
    tmp: Option<&Path>,
    inj: &Injector,
) -> io::Result<()> {
    let content = t.member.content.as_deref().unwrap_or_default();
    let mtime = t.member.mtime_ns.unwrap_or_default();
    let keeper_there = || -> io::Result<()> {
        unchanged(&keeper.abs, &keeper.member, false)
            .map_err(|(why, _)| io::Error::other(format!("the keeper {why}: not touched")))
    };
    keeper_there()?;
    match action {
        Action::Move => move_file(
            &t.abs,
            content,
            mtime,
            to.expect("move has a destination"),
            inj,
        ),
        Action::Trash => {
            trash::delete(&t.abs).map_err(|e| io::Error::other(trash_message(&e)))?;
            Ok(())
        }
        Action::Delete => {
            fs::remove_file(&t.abs)?;
            sync_dir(parent(&t.abs));
            Ok(())
        }
        Action::Hardlink | Action::Symlink => {
            let tmp = tmp.expect("links have a temporary name");
            make_link(action, &keeper.abs, tmp)?;
            inj.checkpoint();
            let replace = || -> io::Result<()> {
                if let Some(backup) = to {
                    // Not identical: the original goes to the backup first.
                    move_file(&t.abs, content, mtime, backup, inj)?;
                    inj.checkpoint();
                    if let Err(e) = fs::rename(tmp, &t.abs) {
                        // Put the original back where it was.
                        let _ = move_file(backup, content, mtime, &t.abs, inj);
                        return Err(e);
                    }
                } else {
                    keeper_there()?;
                    unchanged(&t.abs, &t.member, false)
                        .map_err(|(why, _)| io::Error::other(why))?;
                    fs::rename(tmp, &t.abs)?;
                }
                sync_dir(parent(&t.abs));
                Ok(())
            };
            let r = replace();
            if r.is_err() {
                let _ = fs::remove_file(tmp);
            }
            r
        }
    }
}

fn make_link(action: Action, keeper: &Path, at: &Path) -> io::Result<()> {
    match action {
        Action::Hardlink => fs::hard_link(keeper, at),
        _ => {
            #[cfg(unix)]
            {
                std::os::unix::fs::symlink(keeper, at)
            }
            #[cfg(not(unix))]
            {
                let _ = (keeper, at);
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "symbolic links are not supported here",
                ))
            }
        }
    }
}

fn trash_message(e: &trash::Error) -> String {
    format!("cannot move to the trash: {e}")
}

/// What undo did (or would do) with one journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoStep {
    pub seq: u64,
    pub op: Action,
    pub path: String,
    /// `restored` (or `would_restore`), `nothing_to_do`, `already_undone`,
    /// `cannot_restore`.
    pub status: String,
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

/// Read a journal: its header and entries.
fn read_journal(path: &Path) -> Result<(Header, Vec<Entry>, bool)> {
    let text = fs::read_to_string(path)
        .map_err(|e| Error::Plan(format!("cannot read the journal {}: {e}", path.display())))?;
    let mut lines = text.split('\n').filter(|l| !l.trim().is_empty()).peekable();
    let head = lines
        .next()
        .ok_or_else(|| Error::Plan(format!("{} is empty", path.display())))?;
    let header: Header = serde_json::from_str(head).map_err(|e| {
        Error::Plan(format!(
            "{} is not a neardup journal (first line: {e})",
            path.display()
        ))
    })?;
    if header.neardup_journal != JOURNAL_VERSION {
        return Err(Error::Plan(format!(
            "{} is a journal of version {}; this neardup reads version {JOURNAL_VERSION}",
            path.display(),
            header.neardup_journal
        )));
    }
    let mut entries = Vec::new();
    let mut torn = false;
    let complete = text.ends_with('\n');
    let mut k = 1;
    while let Some(line) = lines.next() {
        k += 1;
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => entries.push(e),
            Err(_) if lines.peek().is_none() && !complete => torn = true,
            Err(e) => {
                return Err(Error::Plan(format!(
                    "{} line {k} is not a journal entry: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok((header, entries, torn))
}

/// Undo what a journal records, newest first. Without `execute` nothing is
/// changed and the steps say what would be restored.
pub fn undo(
    journal_path: &Path,
    execute: bool,
    on: &mut dyn FnMut(&UndoStep),
    cancel: &AtomicBool,
) -> Result<UndoSummary> {
    let (_header, entries, torn) = read_journal(journal_path)?;
    let mut begins: BTreeMap<u64, Entry> = BTreeMap::new();
    let mut states: HashMap<u64, Vec<String>> = HashMap::new();
    for e in entries {
        if e.state == "begin" {
            begins.insert(e.seq, e);
        } else {
            states.entry(e.seq).or_default().push(e.state.clone());
        }
    }
    let mut journal = if execute {
        Some(Journal::append(journal_path).map_err(|e| {
            Error::Plan(format!(
                "cannot write to the journal {}: {e}",
                journal_path.display()
            ))
        })?)
    } else {
        None
    };
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
        let mut step = UndoStep {
            seq: *seq,
            op,
            path: path.to_string_lossy().into_owned(),
            status: String::new(),
            detail: String::new(),
        };
        if st.iter().any(|s| s == "undone") {
            step.status = "already_undone".into();
            step.detail = "undone by an earlier run".into();
        } else {
            match restore(e, &path, execute, &inj) {
                Ok(Restore::Restored(d)) => {
                    step.status = if execute { "restored" } else { "would_restore" }.into();
                    step.detail = d;
                    if let Some(j) = journal.as_mut() {
                        j.write(&Entry {
                            seq: *seq,
                            state: "undone".into(),
                            ..Entry::default()
                        })?;
                    }
                }
                Ok(Restore::Nothing(d)) => {
                    step.status = "nothing_to_do".into();
                    step.detail = d;
                }
                Err(d) => {
                    step.status = "cannot_restore".into();
                    step.detail = d;
                }
            }
        }
        match step.status.as_str() {
            "restored" | "would_restore" => summary.restored += 1,
            "nothing_to_do" => summary.nothing_to_do += 1,
            "already_undone" => summary.already_undone += 1,
            _ => summary.cannot_restore += 1,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d.jpg")),
            PathBuf::from("/a/c/d.jpg")
        );
        assert_eq!(normalize(Path::new("/a/../../etc")), PathBuf::from("/etc"));
        assert!(normalize(Path::new("x.jpg")).is_absolute());
    }

    #[test]
    fn faults_parse() {
        let f = Faults::parse("abort_at=3, enospc_after=10,force_copy").unwrap();
        assert_eq!(
            f,
            Faults {
                abort_at: Some(3),
                enospc_after: Some(10),
                force_copy: true
            }
        );
        assert!(Faults::parse("abort_at=x").is_err());
        assert!(Faults::parse("explode").is_err());
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
    }

    #[test]
    fn free_names_never_collide() {
        let d = tempfile::tempdir().unwrap();
        let want = d.path().join("a.jpg");
        let mut reserved = HashSet::new();
        assert_eq!(free_name(&want, &reserved), want);
        fs::write(&want, b"x").unwrap();
        let one = free_name(&want, &reserved);
        assert_eq!(one, d.path().join("a-1.jpg"));
        reserved.insert(one);
        assert_eq!(free_name(&want, &reserved), d.path().join("a-2.jpg"));
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut r = crate::report::tests::sample();
        r.parameters.roots = vec!["/photos".into()];
        let g = &mut r.groups[0];
        g.members[0].path = "/photos/a.jpg".into();
        g.members[1].path = "/elsewhere/b.png".into();
        g.files = vec!["/photos/a.jpg".into(), "/elsewhere/b.png".into()];
        g.keeper = Some("/photos/zzz.jpg".into());
        let mut dup = g.clone();
        dup.id = 2;
        r.groups.push(dup);
        let err = validate(&r, &ApplyOptions::new(Action::Move))
            .unwrap_err()
            .to_string();
        for want in [
            "is outside the scanned roots",
            "is not one of its members",
            "is listed in groups 1 and 2",
            "move needs a destination",
            "nothing was touched",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn a_torn_last_journal_line_is_ignored_but_a_torn_middle_is_not() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.jsonl");
        let head = r#"{"neardup_journal":1,"tool_version":"0.1.0","action":"delete"}"#;
        let entry =
            r#"{"seq":1,"state":"begin","op":"delete","path":"/nowhere/x.jpg","content":"1:00"}"#;
        fs::write(&p, format!("{head}\n{entry}\n{{\"seq\":1,\"sta")).unwrap();
        let (_, entries, torn) = read_journal(&p).unwrap();
        assert!(torn);
        assert_eq!(entries.len(), 1);
        fs::write(&p, format!("{head}\n{{\"seq\":1,\"sta\n{entry}\n")).unwrap();
        assert!(read_journal(&p).is_err());
        fs::write(
            &p,
            "{\"neardup_journal\":2,\"tool_version\":\"9\",\"action\":\"move\"}\n",
        )
        .unwrap();
        assert!(read_journal(&p)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
        fs::write(&p, "not json\n").unwrap();
        assert!(read_journal(&p)
            .unwrap_err()
            .to_string()
            .contains("not a neardup journal"));
    }
}
