//! Walking the roots: every regular file under them, in a stable order.

use crate::error::{Error, Result};
use crate::photo::{Format, SkipKind, SkipReason};
use crate::progress::Progress;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

// Moved to the vocabulary; re-exported so that other modules still compile.
pub use crate::photo::FileEntry;

/// What the walk found.
#[derive(Debug, Default)]
pub struct WalkOutput {
    /// Regular files (and symlinks to files), sorted by path.
    pub files: Vec<FileEntry>,
    /// Entries that could not be walked (unreadable folders, broken links).
    pub skipped: Vec<(PathBuf, SkipReason)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Also walk files and folders whose names start with a dot.
    pub hidden: bool,
}

/// True when the file name ends in an extension of a photo format
/// ([`Format::from_extension`], case-insensitive; HEIC and AVIF in every
/// build).
pub fn has_photo_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| Format::from_extension(e).is_some())
}

/// Check every root before any work starts, and drop roots nested in
/// another root so that no file is listed twice. A root whose name is not
/// UTF-8 is refused ([`Error::RootName`]): the paths under it could only be
/// reported as lossy copies (the walk skips such names below the roots as
/// [`SkipKind::NonUtf8Name`]).
pub fn check_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut canon = Vec::new();
    for r in roots {
        if r.to_str().is_none() {
            return Err(Error::RootName { shown: escaped(r) });
        }
        let meta = std::fs::metadata(r).map_err(|source| Error::Root {
            path: r.clone(),
            source,
        })?;
        if meta.is_dir() {
            std::fs::read_dir(r).map_err(|source| Error::Root {
                path: r.clone(),
                source,
            })?;
        } else if !meta.is_file() {
            return Err(Error::RootKind { path: r.clone() });
        }
        let c = std::fs::canonicalize(r).map_err(|source| Error::Root {
            path: r.clone(),
            source,
        })?;
        canon.push((c, r.clone()));
    }
    let mut keep = Vec::new();
    for (i, (c, r)) in canon.iter().enumerate() {
        let nested = canon
            .iter()
            .enumerate()
            .any(|(j, (other, _))| j != i && c.starts_with(other) && (c != other || j < i));
        if !nested {
            keep.push(r.clone());
        }
    }
    Ok(keep)
}

/// Walk the roots (already checked by [`check_roots`]).
pub fn walk(
    roots: &[PathBuf],
    opts: WalkOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<WalkOutput> {
    let mut out = WalkOutput::default();
    for root in roots {
        let mut it = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                opts.hidden || e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
            });
        while let Some(entry) = it.next() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    let path = err
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    let reason = SkipReason::new(
                        SkipKind::Unreadable,
                        format!("cannot read: {}", io_message(&err)),
                    );
                    progress.skipped(&path, &reason);
                    out.skipped.push((path, reason));
                    continue;
                }
            };
            let ft = entry.file_type();
            let path = entry.path().to_path_buf();
            // A name that is not UTF-8 would be shown (and acted on) as a
            // lossy copy that may collide with another: skipped, with its
            // bytes escaped. A folder so named is skipped whole.
            if path.to_str().is_none() {
                if ft.is_dir() {
                    it.skip_current_dir();
                }
                let shown = escaped(&path);
                let what = if ft.is_dir() { "folder" } else { "file" };
                let reason = SkipReason::new(
                    SkipKind::NonUtf8Name,
                    format!("the {what} name is not UTF-8: {shown}"),
                );
                progress.skipped(Path::new(&shown), &reason);
                out.skipped.push((PathBuf::from(shown), reason));
                continue;
            }
            if ft.is_file() {
                let (bytes, mtime_ns) = entry
                    .metadata()
                    .map(|m| (m.len(), crate::cache::mtime_ns(&m)))
                    .unwrap_or((0, 0));
                out.files.push(FileEntry {
                    path,
                    bytes,
                    mtime_ns,
                });
                progress.advance(1);
            } else if ft.is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => {
                        out.files.push(FileEntry {
                            path,
                            bytes: m.len(),
                            mtime_ns: crate::cache::mtime_ns(&m),
                        });
                        progress.advance(1);
                    }
                    // Links to folders are not followed (no loops, no
                    // walking out of the roots).
                    Ok(m) if m.is_dir() => {}
                    Ok(m) => {
                        let reason = not_a_file(&m.file_type(), "a symbolic link to ");
                        progress.skipped(&path, &reason);
                        out.skipped.push((path, reason));
                    }
                    Err(e) => {
                        let reason = SkipReason::new(
                            SkipKind::BrokenSymlink,
                            format!("broken symbolic link: {e}"),
                        );
                        progress.skipped(&path, &reason);
                        out.skipped.push((path, reason));
                    }
                }
            } else if !ft.is_dir() {
                // A FIFO would hang a reader, a device never ends.
                let reason = not_a_file(&ft, "");
                progress.skipped(&path, &reason);
                out.skipped.push((path, reason));
            }
        }
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.files.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

/// The skip of a special file (`prefix` says how it was reached).
fn not_a_file(ft: &std::fs::FileType, prefix: &str) -> SkipReason {
    let mut kind = "a special file";
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            kind = "a named pipe (FIFO)";
        } else if ft.is_char_device() || ft.is_block_device() {
            kind = "a device";
        } else if ft.is_socket() {
            kind = "a socket";
        }
    }
    #[cfg(not(unix))]
    let _ = ft;
    SkipReason::new(
        SkipKind::NotAFile,
        format!("not a regular file: {prefix}{kind}"),
    )
}

/// `path` as text, each byte that is not part of valid UTF-8 written as
/// `\xNN` (so two names that differ only there stay distinct).
pub fn escaped(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().into_owned()
    }
}

fn io_message(err: &walkdir::Error) -> String {
    err.io_error()
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn walks_recursively_sorted_and_skips_hidden() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b/c")).unwrap();
        std::fs::create_dir_all(d.path().join(".thumbnails")).unwrap();
        for f in [
            "b/c/z.JPG",
            "a.png",
            "b/x.txt",
            ".thumbnails/t.jpg",
            ".hidden.jpg",
        ] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let cancel = AtomicBool::new(false);
        let out = walk(
            &[d.path().to_path_buf()],
            WalkOptions::default(),
            &NoProgress,
            &cancel,
        )
        .unwrap();
        let names: Vec<_> = out
            .files
            .iter()
            .map(|f| f.path.strip_prefix(d.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            vec![PathBuf::from("a.png"), "b/c/z.JPG".into(), "b/x.txt".into()]
        );
        let all = walk(
            &[d.path().to_path_buf()],
            WalkOptions { hidden: true },
            &NoProgress,
            &cancel,
        )
        .unwrap();
        assert_eq!(all.files.len(), 5);
    }

    #[test]
    fn roots_are_checked_and_nested_roots_dropped() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        let missing = d.path().join("nope");
        assert!(matches!(check_roots(&[missing]), Err(Error::Root { .. })));
        let kept = check_roots(&[
            d.path().join("sub"),
            d.path().to_path_buf(),
            d.path().to_path_buf(),
        ])
        .unwrap();
        assert_eq!(kept, vec![d.path().to_path_buf()]);
    }

    #[cfg(unix)]
    #[test]
    fn a_root_whose_name_is_not_utf8_is_refused() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let bad = d.path().join(OsStr::from_bytes(b"r\xffoot"));
        std::fs::create_dir(&bad).unwrap();
        let e = check_roots(&[d.path().join("fine"), bad.clone()]);
        // Refused for its name before anything else is looked at.
        let Err(Error::RootName { shown }) = check_roots(std::slice::from_ref(&bad)) else {
            panic!("{:?}", check_roots(&[bad]));
        };
        assert!(shown.ends_with("r\\xffoot"), "{shown}");
        assert!(matches!(e, Err(Error::Root { .. })), "{e:?}");
        let file = bad.join("a.jpg");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(check_roots(&[file]), Err(Error::RootName { .. })));
        let e = Error::RootName { shown };
        assert!(e.is_usage());
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn broken_symlinks_are_reported() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(d.path().join("gone.jpg"), d.path().join("link.jpg")).unwrap();
        let cancel = AtomicBool::new(false);
        let out = walk(
            &[d.path().to_path_buf()],
            WalkOptions::default(),
            &NoProgress,
            &cancel,
        )
        .unwrap();
        assert!(out.files.is_empty());
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].1.kind, SkipKind::BrokenSymlink);
    }

    #[cfg(unix)]
    #[test]
    fn special_files_and_non_utf8_names_are_skipped_with_their_kind() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let c = std::ffi::CString::new(d.path().join("x.jpg").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/null", d.path().join("z.jpg")).unwrap();
        for name in [&b"a\xff.jpg"[..], b"a\xfe.jpg"] {
            std::fs::write(d.path().join(OsStr::from_bytes(name)), b"x").unwrap();
        }
        let bad_dir = d.path().join(OsStr::from_bytes(b"d\xe9j\xe0"));
        std::fs::create_dir(&bad_dir).unwrap();
        std::fs::write(bad_dir.join("inside.jpg"), b"x").unwrap();
        std::fs::write(d.path().join("ok.jpg"), b"x").unwrap();
        let cancel = AtomicBool::new(false);
        let out = walk(
            &[d.path().to_path_buf()],
            WalkOptions::default(),
            &NoProgress,
            &cancel,
        )
        .unwrap();
        assert_eq!(out.files.len(), 1);
        assert!(out.files[0].path.ends_with("ok.jpg"));
        let mut got: Vec<(String, SkipKind, String)> = out
            .skipped
            .iter()
            .map(|(p, r)| {
                let rel = p.strip_prefix(d.path()).unwrap();
                (rel.to_str().unwrap().to_string(), r.kind, r.message.clone())
            })
            .collect();
        got.sort();
        let names: Vec<(&str, SkipKind)> = got.iter().map(|g| (g.0.as_str(), g.1)).collect();
        assert_eq!(
            names,
            vec![
                ("a\\xfe.jpg", SkipKind::NonUtf8Name),
                ("a\\xff.jpg", SkipKind::NonUtf8Name),
                ("d\\xe9j\\xe0", SkipKind::NonUtf8Name),
                ("x.jpg", SkipKind::NotAFile),
                ("z.jpg", SkipKind::NotAFile),
            ]
        );
        assert!(got[0].2.ends_with("a\\xfe.jpg"), "{}", got[0].2);
        assert!(got[2].2.contains("folder"), "{}", got[2].2);
        assert!(got[3].2.contains("FIFO"), "{}", got[3].2);
        assert!(got[4].2.contains("link to a device"), "{}", got[4].2);
    }

    #[test]
    fn photo_extensions_ignore_case() {
        assert!(has_photo_extension(Path::new("a/B.JPG")));
        assert!(has_photo_extension(Path::new("x.TiF")));
        assert!(!has_photo_extension(Path::new("notes.txt")));
        assert!(!has_photo_extension(Path::new("jpg")));
    }
}
