//! The plan: a scan's report, loaded and validated before anything is
//! touched; the roots it may act in and the seal that lets a plan's own
//! roots be trusted.

use super::fs::{parent, sync_dir};
use super::journal::now_s;
use super::{Action, ApplyOptions, RootsFrom};
use crate::error::{Error, Result};
use crate::report::{Member, Report};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

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
pub(super) struct Target {
    pub(super) member: Member,
    /// Absolute, normalised.
    pub(super) abs: PathBuf,
    /// The root it lies under (absolute, normalised).
    pub(super) root: PathBuf,
}

#[derive(Debug, Clone)]
pub(super) struct PlannedGroup {
    pub(super) id: u64,
    pub(super) keeper: Target,
    pub(super) others: Vec<Target>,
    /// Members that are the keeper's RAW+JPEG twin (same shot, same name).
    pub(super) raw_jpeg_twins: Vec<String>,
}

/// A validated plan.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) groups: Vec<PlannedGroup>,
    /// The roots trusted (absolute, normalised) and where they come from.
    pub(super) roots: Vec<PathBuf>,
    pub(super) roots_from: RootsFrom,
    /// Canonical roots (those that still exist).
    pub(super) canon_roots: Vec<PathBuf>,
    /// Canonical reference folders.
    pub(super) references: Vec<PathBuf>,
    pub(super) to: Option<PathBuf>,
}

/// Check the whole plan and the options before anything is touched. Every
/// problem is listed in the error.
pub(super) fn validate(report: &Report, opts: &ApplyOptions) -> Result<Plan> {
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
        // The user decided this group is not to be acted on.
        if g.decision.is_some() {
            continue;
        }
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
pub(super) fn trusted_roots(
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

pub(super) fn read_seal_key(path: &Path) -> io::Result<[u8; 32]> {
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
pub(super) fn make_seal_key(path: &Path) -> io::Result<[u8; 32]> {
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

pub(super) fn seal_of(key: &[u8; 32], p: &crate::report::Parameters) -> blake3::Hash {
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
pub(super) fn seal_matches(p: &crate::report::Parameters) -> std::result::Result<(), String> {
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
pub(super) fn canonical_prefix(p: &Path) -> PathBuf {
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
pub(super) fn resolved(abs: &Path) -> Option<(PathBuf, PathBuf)> {
    let parent = abs.parent()?;
    let dir = fs::canonicalize(parent).ok()?;
    let here = dir.join(abs.file_name()?);
    let target = fs::canonicalize(abs).ok()?;
    Some((here, target))
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
}
