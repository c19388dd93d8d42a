//! Advisory locks that keep two neardup processes (two applies, an apply
//! and an undo) off the same files at once.
//!
//! Apply locks each group's keeper and members before it checks them again
//! and acts on them, and keeps the locks until the group is done; undo
//! locks the files of each entry it restores; each locks its journal. The
//! files are opened read-only ([`crate::open::open_regular`]) and locked
//! exclusively (`flock` on Unix) in one global order, by (device, inode),
//! so two processes never wait for each other in a cycle; a process holds
//! the locks of one group at a time, taken after its journal's. A lock
//! that is not free is waited for. The locks are advisory: they keep
//! neardup processes apart, not other programs (those are met by checking
//! the keeper again right before each removal).
//!
//! Only on Unix: elsewhere `File::lock` is a mandatory lock that would
//! stop the checks' own reads; there the functions lock nothing.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::lock;
    use std::fs;

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
}
