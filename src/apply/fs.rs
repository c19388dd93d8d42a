//! File operations: copies that are verified, moves, links, free names.

use super::checks::{content_of, unchanged};
use super::faults::Injector;
use super::plan::Target;
use super::Action;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub(super) fn mode_of(meta: &fs::Metadata) -> u32 {
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

pub(super) fn set_mode(f: &File, mode: u32) -> io::Result<()> {
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

pub(super) fn system_time(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Make a folder's entries durable (best effort where folders cannot be
/// opened).
pub(super) fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

pub(super) fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Copy `from` to the new file `to` (never overwriting), fsync it, give it
/// `mode` and the mtime `mtime_ns`, then read it back and check its content
/// is `content`. On failure the partial copy is removed.
pub(super) fn copy_verified(
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
pub(super) fn move_file(
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
pub(super) fn free_name(want: &Path, reserved: &HashSet<PathBuf>) -> PathBuf {
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
pub(super) fn destination(t: &Target, to: &Path) -> PathBuf {
    let rel = match t.abs.strip_prefix(&t.root) {
        Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
        _ => PathBuf::from(t.abs.file_name().unwrap_or_default()),
    };
    to.join(rel)
}

/// Make one change. The file is verified just before; the keeper (its real
/// file) is checked again with `keeper_there` just before anything is
/// removed.
pub(super) fn act(
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

pub(super) fn make_link(action: Action, keeper: &Path, at: &Path) -> io::Result<()> {
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

pub(super) fn trash_message(e: &trash::Error) -> String {
    format!("cannot move to the trash: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
