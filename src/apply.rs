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

/// The largest journal undo reads (a regular file, never a FIFO or device).
pub const JOURNAL_CAP: u64 = 4 << 30;

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

/// Read a plan: the one validated reader, [`crate::report::read_plan`].
pub fn load_plan(path: &Path) -> Result<Report> {
    crate::report::read_plan(path)
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
    /// The roots trusted (absolute, normalised) and where they come from.
    roots: Vec<PathBuf>,
    roots_from: RootsFrom,
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
    let (roots, roots_from) = trusted_roots(report, opts, &mut problems);
    let roots_shown = roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ");
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
                    "group {}: {} is outside the scanned roots ({roots_shown})",
                    g.id, m.path,
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
        roots,
        roots_from,
        canon_roots,
        references,
        to,
    })
}

/// The roots apply may act in: the user's (`--root`, each must exist), or
/// the plan's when the scan's seal over them still matches and none is
/// empty, the whole file system or climbing with `..`. Problems are added
/// to `problems`.
fn trusted_roots(
    report: &Report,
    opts: &ApplyOptions,
    problems: &mut Vec<String>,
) -> (Vec<PathBuf>, RootsFrom) {
    if !opts.roots.is_empty() {
        for r in &opts.roots {
            match fs::metadata(r) {
                Ok(_) => {}
                Err(e) => problems.push(format!("--root {}: {e}", r.display())),
            }
        }
        let roots = opts.roots.iter().map(|r| normalize(r)).collect();
        return (roots, RootsFrom::User);
    }
    let again = "give the folders to act in with --root DIR (repeatable)";
    let p = &report.parameters;
    if p.roots.is_empty() {
        problems.push(format!(
            "the plan lists no roots (parameters.roots): {again}"
        ));
    }
    if let Err(why) = seal_matches(p) {
        problems.push(format!(
            "{why}: its roots ({}) are not trusted; {again}",
            p.roots.join(", ")
        ));
    }
    for r in p.roots.iter().chain(&p.reference) {
        let path = Path::new(r);
        let why = if r.trim().is_empty() {
            Some("is empty")
        } else if path.components().any(|c| c == Component::ParentDir) {
            Some("climbs with ..")
        } else if normalize(path).parent().is_none() {
            Some("is the whole file system")
        } else {
            None
        };
        if let Some(why) = why {
            problems.push(format!(
                "the plan's root or reference folder {r:?} {why}: never trusted from a plan; {again}"
            ));
        }
    }
    let roots = p.roots.iter().map(|r| normalize(Path::new(r))).collect();
    (roots, RootsFrom::Seal)
}

/// The file that holds this user's 32-byte secret for sealing roots:
/// `$NEARDUP_SEAL_KEY` when set (the tests), else
/// `<local data folder>/neardup/seal.key`.
pub fn seal_key_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NEARDUP_SEAL_KEY") {
        return Some(PathBuf::from(p));
    }
    dirs::data_local_dir().map(|d| d.join("neardup").join("seal.key"))
}

fn read_seal_key(path: &Path) -> io::Result<[u8; 32]> {
    let bytes = crate::open::read_capped(path, 64)?;
    bytes.try_into().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the seal key {} is damaged (not 32 bytes)", path.display()),
        )
    })
}

/// The secret, made on first use: 32 random bytes written to a private
/// temporary file (mode 0600) then linked into place, so that two scans at
/// once agree on one key and no reader ever sees half a key.
fn make_seal_key(path: &Path) -> io::Result<[u8; 32]> {
    match read_seal_key(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let dir = parent(path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)?;
    let key = random_key()?;
    let tmp = dir.join(format!(".seal.key.{}.{}.tmp", std::process::id(), now_s()));
    let written = (|| {
        let mut o = fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            sync_dir(dir);
            Ok(key)
        }
        // Made by another process meanwhile: that one is the key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_seal_key(path),
        Err(e) => Err(e),
    }
}

/// 32 random bytes: the system's generator (`/dev/urandom`) on Unix;
/// elsewhere the per-process random keys of std's hasher, mixed with BLAKE3.
fn random_key() -> io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    #[cfg(unix)]
    {
        File::open("/dev/urandom")?.read_exact(&mut key)?;
    }
    #[cfg(not(unix))]
    {
        use std::hash::{BuildHasher, Hasher};
        let mut h = blake3::Hasher::new();
        for i in 0..8u64 {
            let mut s = std::collections::hash_map::RandomState::new().build_hasher();
            s.write_u64(i);
            h.update(&s.finish().to_le_bytes());
        }
        h.update(&std::process::id().to_le_bytes());
        h.update(&format!("{:?}", std::time::SystemTime::now()).into_bytes());
        key = *h.finalize().as_bytes();
    }
    Ok(key)
}

fn seal_of(key: &[u8; 32], p: &crate::report::Parameters) -> blake3::Hash {
    let message = serde_json::to_vec(&("neardup roots seal 1", &p.roots, &p.reference))
        .expect("strings serialise");
    blake3::keyed_hash(key, &message)
}

/// The seal of a report's roots and reference folders (its groups are not
/// covered: users may edit keepers): a keyed BLAKE3 hash with this user's
/// secret ([`seal_key_path`], made on first use). The scan stores it in
/// `parameters.roots_seal`.
pub fn seal_roots(p: &crate::report::Parameters) -> io::Result<String> {
    let path =
        seal_key_path().ok_or_else(|| io::Error::other("no local data folder for the seal key"))?;
    let key = make_seal_key(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("seal key {}: {e}", path.display())))?;
    Ok(seal_of(&key, p).to_hex().to_string())
}

/// Does the plan's seal match its roots and reference folders? `Err` says
/// why not.
fn seal_matches(p: &crate::report::Parameters) -> std::result::Result<(), String> {
    let Some(seal) = &p.roots_seal else {
        return Err("the plan has no roots seal (parameters.roots_seal: written by an older neardup, or removed)".into());
    };
    let path = seal_key_path().ok_or("no local data folder for the seal key")?;
    let key = read_seal_key(&path).map_err(|e| {
        format!(
            "the plan's seal cannot be checked (seal key {}: {e})",
            path.display()
        )
    })?;
    let given = blake3::Hash::from_hex(seal.as_bytes())
        .map_err(|_| "the plan's roots seal is damaged".to_string())?;
    // blake3::Hash compares in constant time.
    if given != seal_of(&key, p) {
        return Err("the plan's roots or reference folders are not those its scan sealed (edited, or scanned by another user or machine)".into());
    }
    Ok(())
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
        let (mut src, _) = crate::open::open_regular(from)?;
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
        // Held for the whole run: an undo of this journal waits for it.
        lock::wait_for(&file, path, &mut |_| {})
            .map_err(|e| Error::Plan(format!("cannot lock the journal {}: {e}", path.display())))?;
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

/// What the checks decided for one member.
#[derive(Debug, Clone)]
enum Decision {
    Keep {
        reason: String,
        kind: &'static str,
    },
    Skip {
        reason: String,
        kind: &'static str,
    },
    /// Passes every check: act on it (`to`: the move's destination, or
    /// the links' backup of a member not identical to the keeper).
    Act {
        to: Option<PathBuf>,
        identical: bool,
    },
}

/// Why a whole group is left alone (its keeper cannot be relied on).
type GroupRefusal = (String, &'static str);

/// The keeper's real file: the keeper itself, or the file its symbolic
/// link leads to, when that is a regular file inside the roots and still
/// as scanned (hash included). Links are made to it, and it is the copy
/// that stays.
fn check_keeper(g: &PlannedGroup, plan: &Plan) -> std::result::Result<Target, GroupRefusal> {
    let k = &g.keeper;
    let name = &k.member.path;
    let real = fs::canonicalize(&k.abs).map_err(|_| {
        (
            format!("the keeper {name} is not as scanned (gone since the scan, or a broken link)"),
            "keeper_changed",
        )
    })?;
    let meta = fs::metadata(&real).map_err(|e| {
        (
            format!("the keeper {name} is not as scanned (cannot read: {e})"),
            "keeper_changed",
        )
    })?;
    if !meta.is_file() {
        return Err((
            format!(
                "the keeper {name} is not a regular file (it leads to {})",
                real.display()
            ),
            "keeper_not_a_file",
        ));
    }
    if !plan.canon_roots.iter().any(|r| real.starts_with(r)) {
        return Err((
            format!(
                "the keeper {name} resolves to {}, outside the roots: no real copy would stay inside them",
                real.display()
            ),
            "keeper_outside_roots",
        ));
    }
    unchanged(&real, &k.member, true).map_err(|(why, _)| {
        (
            format!("the keeper {name} is not as scanned ({why})"),
            "keeper_changed",
        )
    })?;
    let mut t = k.clone();
    t.abs = real;
    Ok(t)
}

/// Every check of one member against its group's (checked) keeper, in the
/// order of the module's rules. `reserved` holds the destinations already
/// given to earlier members.
fn decide(
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
            kind: "reference",
        };
    }
    let keeper = match keeper {
        Ok(k) => k,
        Err((why, kind)) => {
            return Decision::Skip {
                reason: format!("{why}: nothing in this group is touched"),
                kind,
            }
        }
    };
    if !opts.pair_raw_jpeg && g.raw_jpeg_twins.contains(&t.member.path) {
        return Decision::Keep {
            reason: "the RAW+JPEG twin of the keeper (give --pair-raw-jpeg to act on it)".into(),
            kind: "raw_jpeg_pair",
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
                kind: "not_verified",
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
                    kind: "not_identical",
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

/// Carry out a plan. Validation errors come back as [`Error::Plan`] before
/// anything is touched; everything after is reported per file in the
/// [`Summary`].
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
        action: opts.action.name().into(),
        dry_run: !opts.execute,
        journal: opts
            .journal
            .as_ref()
            .filter(|_| opts.execute)
            .map(|p| p.to_string_lossy().into_owned()),
        ..Summary::default()
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
                Some((p, e)) => Err((format!("cannot lock {}: {e}", p.display()), "lock_failed")),
                None => check_keeper(g, &plan).and_then(|k| {
                    if held.holds_file_at(&k.abs) {
                        Ok(k)
                    } else {
                        Err((
                            format!(
                                "the keeper {} changed while it was being locked",
                                g.keeper.member.path
                            ),
                            "keeper_changed",
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
                            op: "keep".into(),
                            status: Status::Keep,
                            reason: Some(reason),
                            kind: Some(kind.into()),
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
                            kind: Some(kind.into()),
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
            let mode = fs::metadata(&t.abs).map(|m| mode_of(&m)).unwrap_or(0o644);
            let begin = Entry {
                seq,
                state: "begin".into(),
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
        // The group's locks are released here, after its last change.
        drop(held);
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
    keeper: &Target,
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
    if same_file(&t.abs, &keeper.abs) {
        return Err((
            "is the keeper's own file (a link to it): nothing to do".into(),
            "same_file",
        ));
    }
    if opts.action == Action::Hardlink && !same_device(&t.abs, &keeper.abs) {
        return Err((
            "on another file system than the keeper: a hard link cannot cross".into(),
            "other_filesystem",
        ));
    }
    unchanged(&t.abs, &t.member, true)
}

/// Make one change. The file is verified just before; the keeper (its real
/// file) is checked again with `keeper_there` just before anything is
/// removed.
fn act(
    action: Action,
    t: &Target,
    keeper: &Target,
    to: Option<&Path>,
    tmp: Option<&Path>,
    keeper_there: &dyn Fn() -> io::Result<()>,
    inj: &Injector,
) -> io::Result<()> {
    let content = t.member.content.as_deref().unwrap_or_default();
    let mtime = t.member.mtime_ns.unwrap_or_default();
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
            keeper_there()?;
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

/// Advisory locks that keep two neardup processes (two applies, an apply
/// and an undo) off the same files at once.
///
/// Apply locks each group's keeper and members before it checks them again
/// and acts on them, and keeps the locks until the group is done; undo
/// locks the files of each entry it restores; each locks its journal. The
/// files are opened read-only ([`crate::open::open_regular`]) and locked
/// exclusively (`flock` on Unix) in one global order, by (device, inode),
/// so two processes never wait for each other in a cycle; a process holds
/// the locks of one group at a time, taken after its journal's. A lock
/// that is not free is waited for. The locks are advisory: they keep
/// neardup processes apart, not other programs (those are met by checking
/// the keeper again right before each removal).
///
/// Only on Unix: elsewhere `File::lock` is a mandatory lock that would
/// stop the checks' own reads; there the functions lock nothing.
pub mod lock {
    use std::fs::File;
    use std::io;
    use std::path::{Path, PathBuf};

    /// A file's identity: device and inode.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct FileId {
        dev: u64,
        ino: u64,
    }

    impl FileId {
        #[cfg(unix)]
        pub fn of(meta: &std::fs::Metadata) -> FileId {
            use std::os::unix::fs::MetadataExt;
            FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        }
        /// The file a path names now (following links).
        #[cfg(unix)]
        pub fn at(path: &Path) -> Option<FileId> {
            std::fs::metadata(path).ok().map(|m| FileId::of(&m))
        }
    }

    /// Locks held until dropped.
    #[derive(Debug, Default)]
    pub struct Held {
        #[cfg_attr(not(unix), allow(dead_code))]
        files: Vec<(FileId, File)>,
        failed: Option<(PathBuf, io::Error)>,
    }

    impl Held {
        /// Nothing locked (a dry run).
        pub fn none() -> Held {
            Held::default()
        }
        /// A file that exists but could not be locked (not a wait: an
        /// error, e.g. a file system without locks).
        pub fn failed(&self) -> Option<&(PathBuf, io::Error)> {
            self.failed.as_ref()
        }
        /// Does `path` name a file locked here that still has a link? True
        /// when nothing could be locked on this platform.
        pub fn holds_file_at(&self, path: &Path) -> bool {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let Some(id) = FileId::at(path) else {
                    return false;
                };
                self.files
                    .iter()
                    .any(|(held, f)| *held == id && f.metadata().is_ok_and(|m| m.nlink() > 0))
            }
            #[cfg(not(unix))]
            {
                let _ = path;
                true
            }
        }
    }

    /// Wait for an exclusive lock on an open file; `waiting` is told when it
    /// is not free at once.
    pub fn wait_for(file: &File, path: &Path, waiting: &mut dyn FnMut(&Path)) -> io::Result<()> {
        #[cfg(unix)]
        {
            match file.try_lock() {
                Ok(()) => Ok(()),
                Err(std::fs::TryLockError::WouldBlock) => {
                    waiting(path);
                    file.lock()
                }
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (file, path, waiting);
            Ok(())
        }
    }

    /// Lock the regular files at `paths` that exist (a path that cannot be
    /// opened is not locked: the checks find it gone), in (device, inode)
    /// order, each file once.
    pub fn files(paths: &[&Path], waiting: &mut dyn FnMut(&Path)) -> Held {
        let mut held = Held::default();
        #[cfg(unix)]
        {
            let mut open: Vec<(FileId, &Path, File)> = paths
                .iter()
                .filter_map(|p| {
                    crate::open::open_regular(p)
                        .ok()
                        .map(|(f, meta)| (FileId::of(&meta), *p, f))
                })
                .collect();
            open.sort_by_key(|(id, _, _)| *id);
            open.dedup_by_key(|(id, _, _)| *id);
            for (id, path, f) in open {
                match wait_for(&f, path, waiting) {
                    Ok(()) => held.files.push((id, f)),
                    Err(e) => {
                        held.failed = Some((path.to_path_buf(), e));
                        break;
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (paths, waiting);
        }
        held
    }
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
    let text = crate::open::read_text_capped(path, JOURNAL_CAP)
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
    let mut states: HashMap<u64, Vec<String>> = HashMap::new();
    for e in entries {
        if e.state == "begin" {
            begins.insert(e.seq, e);
        } else {
            states.entry(e.seq).or_default().push(e.state.clone());
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
    fn plan_roots_are_trusted_only_sealed_and_sane() {
        let d = tempfile::tempdir().unwrap();
        let mut r = crate::report::tests::sample();
        for (roots, want) in [
            (vec!["/".to_string()], "is the whole file system"),
            (vec!["".to_string()], "is empty"),
            (vec!["album/..".to_string()], "climbs with .."),
            (vec![], "lists no roots"),
        ] {
            r.parameters.roots = roots;
            r.parameters.roots_seal = Some("00".repeat(32));
            let mut problems = Vec::new();
            let (_, from) = trusted_roots(&r, &ApplyOptions::new(Action::Delete), &mut problems);
            assert_eq!(from, RootsFrom::Seal);
            let all = problems.join("\n");
            assert!(all.contains(want), "{want}: {all}");
            assert!(all.contains("--root DIR"), "{all}");
        }
        r.parameters.roots_seal = None;
        let mut problems = Vec::new();
        trusted_roots(&r, &ApplyOptions::new(Action::Delete), &mut problems);
        assert!(
            problems.join(" ").contains("has no roots seal"),
            "{problems:?}"
        );
        // --root replaces the plan's roots: they must exist.
        let mut opts = ApplyOptions::new(Action::Delete);
        opts.roots = vec![d.path().to_path_buf()];
        let mut problems = Vec::new();
        let (roots, from) = trusted_roots(&r, &opts, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((roots, from), (vec![normalize(d.path())], RootsFrom::User));
        opts.roots = vec![d.path().join("gone")];
        let mut problems = Vec::new();
        trusted_roots(&r, &opts, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn the_seal_covers_roots_and_references_not_groups() {
        let key = [7u8; 32];
        let mut p = crate::report::tests::sample().parameters;
        let seal = seal_of(&key, &p);
        assert_ne!(seal, seal_of(&[8u8; 32], &p), "another key");
        p.reference.push("/archive".into());
        assert_ne!(seal, seal_of(&key, &p), "a reference folder added");
        p.reference.clear();
        p.roots.push("/".into());
        assert_ne!(seal, seal_of(&key, &p), "a root added");
        p.roots.pop();
        p.threshold += 0.1;
        assert_eq!(seal, seal_of(&key, &p), "other parameters are not sealed");
    }

    #[test]
    fn the_seal_key_is_made_once_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/seal.key");
        let k1 = make_seal_key(&path).unwrap();
        let k2 = make_seal_key(&path).unwrap();
        assert_eq!(k1, k2);
        assert_ne!(k1, [0u8; 32]);
        assert_eq!(
            fs::read_dir(d.path().join("sub")).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::write(&path, b"short").unwrap();
        assert!(make_seal_key(&path)
            .unwrap_err()
            .to_string()
            .contains("damaged"));
    }

    #[cfg(unix)]
    #[test]
    fn locks_are_taken_in_inode_order_and_exclude_other_holders() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        fs::write(&a, b"a").unwrap();
        fs::write(&b, b"b").unwrap();
        fs::hard_link(&a, d.path().join("a2")).unwrap();
        let a2 = d.path().join("a2");
        let gone = d.path().join("gone");
        let mut waits = Vec::new();
        let held = lock::files(&[&b, &a, &a2, &gone], &mut |p| waits.push(p.to_path_buf()));
        assert!(waits.is_empty() && held.failed().is_none());
        assert!(held.holds_file_at(&a) && held.holds_file_at(&a2) && held.holds_file_at(&b));
        assert!(!held.holds_file_at(&gone));
        // Another open file description cannot take it while it is held.
        let other = File::open(&a).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        // A file replaced at the path is not the locked one.
        fs::remove_file(&b).unwrap();
        fs::write(&b, b"b").unwrap();
        assert!(!held.holds_file_at(&b));
        drop(held);
        assert!(other.try_lock().is_ok());
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
