//! The one way a photo is read again once its content key is known (its
//! metadata on a warm scan; mirror image, same pixels, pixel hash and
//! geometric gray in the verify stage; thumbnails): the file is read with
//! [`open::read_capped`] and its content key must equal the one recorded.
//! Bytes that changed since are never used, so no result computed from them
//! is cached by the old content.

use crate::cache;
use crate::decode;
use crate::embed::Photo;
use crate::open;
use crate::progress::Progress;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

/// Why a photo could not be read again.
#[derive(Debug, thiserror::Error)]
pub enum RereadError {
    #[error("{0}")]
    Read(#[from] open::ReadError),
    /// Its bytes are not the ones that were embedded.
    #[error("changed since it was read")]
    Changed,
}

/// The bytes of `photo`'s file, when they are still the ones embedded
/// (regular files only, bounded like the first read).
pub fn checked(photo: &Photo) -> Result<Vec<u8>, RereadError> {
    read_unchanged(&photo.file.path, &photo.content)
}

/// The bytes of the file at `path`, when their content key is `content`.
pub fn read_unchanged(path: &Path, content: &str) -> Result<Vec<u8>, RereadError> {
    let bytes = open::read_capped(path, decode::MAX_FILE_BYTES)?;
    if cache::content_key(&bytes) != content {
        return Err(RereadError::Changed);
    }
    Ok(bytes)
}

/// [`checked`] for the photos of one scan: a photo found changed is warned
/// about once through [`Progress`] and not read again.
pub struct Reread<'a> {
    photos: &'a [Photo],
    progress: &'a dyn Progress,
    changed: Mutex<BTreeSet<u32>>,
}

impl<'a> Reread<'a> {
    pub fn new(photos: &'a [Photo], progress: &'a dyn Progress) -> Self {
        Reread {
            photos,
            progress,
            changed: Mutex::new(BTreeSet::new()),
        }
    }

    /// The bytes of photo `i`, checked against its content key.
    pub fn bytes(&self, i: u32) -> Result<Vec<u8>, RereadError> {
        let changed = || self.changed.lock().unwrap_or_else(|e| e.into_inner());
        if changed().contains(&i) {
            return Err(RereadError::Changed);
        }
        let photo = &self.photos[i as usize];
        let read = checked(photo);
        if let Err(RereadError::Changed) = read {
            if changed().insert(i) {
                self.progress.warn(&format!(
                    "{}: changed since it was read; not compared further",
                    photo.file.path.display()
                ));
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::meta::Meta;
    use crate::walk::FileEntry;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn photo(path: &std::path::Path, bytes: &[u8]) -> Photo {
        Photo {
            file: FileEntry {
                path: path.to_path_buf(),
                bytes: bytes.len() as u64,
                mtime_ns: 0,
            },
            width: 1,
            height: 1,
            format: crate::photo::Format::Jpeg,
            content: cache::content_key(bytes),
            meta: Meta::default(),
        }
    }

    #[derive(Default)]
    struct Warnings(AtomicUsize);
    impl Progress for Warnings {
        fn warn(&self, _message: &str) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn an_unchanged_file_gives_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, b"the same bytes").unwrap();
        let photos = [photo(&path, b"the same bytes")];
        let warnings = Warnings::default();
        let r = Reread::new(&photos, &warnings);
        assert_eq!(r.bytes(0).unwrap(), b"the same bytes");
        assert_eq!(warnings.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_changed_file_gives_no_bytes_and_one_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, b"other bytes").unwrap();
        let photos = [photo(&path, b"the bytes embedded")];
        let warnings = Warnings::default();
        let r = Reread::new(&photos, &warnings);
        assert!(matches!(r.bytes(0), Err(RereadError::Changed)));
        // Changed back: still not used in this scan, and no second warning.
        std::fs::write(&path, b"the bytes embedded").unwrap();
        assert!(matches!(r.bytes(0), Err(RereadError::Changed)));
        assert_eq!(warnings.0.load(Ordering::Relaxed), 1);
        assert!(checked(&photos[0]).is_ok());
    }

    #[test]
    fn a_vanished_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let photos = [photo(&dir.path().join("gone.jpg"), b"x")];
        let r = Reread::new(&photos, &crate::progress::NoProgress);
        assert!(matches!(r.bytes(0), Err(RereadError::Read(_))));
    }
}
