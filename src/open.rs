//! Opening the user's files safely, for every stage that reads a path again
//! after the walk (decode, verify, thumbnails, explain, plans, journals, the
//! model): never block on a FIFO, never read a device (`/dev/zero` behind a
//! link), never read more than a bound.
//!
//! The file is opened without blocking (`O_NONBLOCK`, so a FIFO with no
//! writer does not hang `open`), then the *open handle* is checked to be a
//! regular file, so a path swapped after the check cannot slip through.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not found")]
    NotFound,
    /// A FIFO, a device, a socket or a folder.
    #[error("not a regular file ({0})")]
    NotAFile(&'static str),
    /// Larger than the bound for what is being read.
    #[error("{len} bytes, more than the {cap} bytes allowed")]
    TooLarge { len: u64, cap: u64 },
    #[error("{0}")]
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        if e.kind() == io::ErrorKind::NotFound {
            ReadError::NotFound
        } else {
            ReadError::Io(e)
        }
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::NotFound => io::Error::from(io::ErrorKind::NotFound),
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

/// What kind of non-regular file the metadata describes.
fn kind_name(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// Open `path` for reading if it is a regular file (following links), with
/// its metadata read from the open handle.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = opts.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(kind_name(&meta)));
    }
    Ok((file, meta))
}

/// The whole content of the regular file at `path`, if it holds at most
/// `cap` bytes. The length is checked before reading, and the read itself
/// stops after `cap + 1` bytes, so a file that grows meanwhile is refused too.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let (file, meta) = open_regular(path)?;
    read_open_capped(file, &meta, cap)
}

/// [`read_capped`] for a file already opened with [`open_regular`].
pub fn read_open_capped(file: File, meta: &Metadata, cap: u64) -> Result<Vec<u8>, ReadError> {
    let len = meta.len();
    if len > cap {
        return Err(ReadError::TooLarge { len, cap });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            len: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read_capped(path, cap)?;
    String::from_utf8(bytes)
        .map_err(|_| ReadError::Io(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")))
}

/// Up to `buf.len()` bytes from the start of `f` (fewer only at its end).
pub fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_within_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jpg");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_capped(&p, 10).unwrap(), b"0123456789");
        assert!(matches!(
            read_capped(&p, 9),
            Err(ReadError::TooLarge { len: 10, cap: 9 })
        ));
        assert!(matches!(
            read_capped(&dir.path().join("none.jpg"), 10),
            Err(ReadError::NotFound)
        ));
        assert!(matches!(
            read_capped(dir.path(), 10),
            Err(ReadError::NotAFile("a folder"))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.jpg");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would hang here.
        assert!(matches!(
            read_capped(&fifo, 1 << 20),
            Err(ReadError::NotAFile("a FIFO"))
        ));
        let link = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_capped(&link, 1 << 20),
            Err(ReadError::NotAFile("a device"))
        ));
    }
}
