//! Thumbnails for the HTML report.
//!
//! During a scan that asks for them, every decoded photo's thumbnail is
//! made from the pixels already decoded for the model (no second decode)
//! and appended to a [`Spool`], an unnamed temporary file: memory does not
//! grow with the number of photos, only their offsets are kept. The cache
//! remembers them too ([`FACT_KIND`], keyed by content), so a warm scan,
//! which decodes nothing, still has them. A photo served from a cache that
//! lacks its thumbnail (the cache was filled without HTML output) is
//! decoded again at reduced scale, only when it is in a group.

use crate::decode::{self, Limits, Thumbnail};
use crate::report::Report;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

/// Cache kind of thumbnails (bump when their size, quality or source decode
/// change; 2: JPEGs decoded at power-of-two scales only).
pub const FACT_KIND: &str = "thumb/2";

/// Thumbnails by path as the report shows it; a photo without one carries
/// the reason (it could not be read again, it changed...).
pub type Thumbnails = BTreeMap<String, Result<Thumbnail, String>>;

/// Thumbnails written to an unnamed temporary file, by content key.
#[derive(Debug)]
pub struct Spool {
    inner: Mutex<SpoolInner>,
}

#[derive(Debug)]
struct SpoolInner {
    /// `None` once writing failed: later thumbnails are then made again
    /// from the files when needed.
    file: Option<std::fs::File>,
    end: u64,
    index: HashMap<String, (u64, u32)>,
}

impl Spool {
    /// A new spool; `None` when no temporary file can be made.
    pub fn new() -> Option<Spool> {
        let file = tempfile::tempfile().ok()?;
        Some(Spool {
            inner: Mutex::new(SpoolInner {
                file: Some(file),
                end: 0,
                index: HashMap::new(),
            }),
        })
    }

    /// Keep the thumbnail of `content` (the first one wins).
    pub fn put(&self, content: &str, thumb: &Thumbnail) {
        let mut s = self.inner.lock().expect("spool lock");
        if s.index.contains_key(content) {
            return;
        }
        let bytes = thumb.to_bytes();
        let end = s.end;
        let Some(file) = s.file.as_mut() else {
            return;
        };
        let written = file
            .seek(SeekFrom::Start(end))
            .and_then(|_| file.write_all(&bytes));
        match written {
            Ok(()) => {
                s.end += bytes.len() as u64;
                s.index
                    .insert(content.to_string(), (end, bytes.len() as u32));
            }
            Err(_) => s.file = None,
        }
    }

    /// The thumbnail of `content`, if it was kept.
    pub fn get(&self, content: &str) -> Option<Thumbnail> {
        let mut s = self.inner.lock().expect("spool lock");
        let &(at, len) = s.index.get(content)?;
        let file = s.file.as_mut()?;
        let mut buf = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(at)).ok()?;
        file.read_exact(&mut buf).ok()?;
        Thumbnail::from_bytes(&buf)
    }

    /// How many thumbnails are kept.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("spool lock").index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Thumbnails of every photo in the report's groups, made from the files as
/// they are now (a JSON report does not embed them), decoded at the scale
/// the scan used so that they are the same bytes as the scan's.
pub fn from_files(report: &Report, limits: Limits) -> Thumbnails {
    let shorter_side = report.model.resize.shorter_side;
    let mut paths: Vec<&str> = report
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.path.as_str()))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .par_iter()
        .map(|&p| {
            // A member may have become a FIFO or a link to a device since
            // the scan: refused without blocking, and never read unbounded.
            let t = crate::open::read_capped(std::path::Path::new(p), decode::MAX_FILE_BYTES)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|bytes| {
                    decode::thumbnail(&bytes, shorter_side, limits, decode::THUMB_LONG_SIDE)
                        .map_err(|r| r.message)
                });
            (p.to_string(), t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(w: u32, seed: u8) -> Thumbnail {
        let img = image::RgbImage::from_fn(w, 10, |x, y| image::Rgb([seed, x as u8, y as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&img)
            .unwrap();
        Thumbnail {
            width: w,
            height: 10,
            jpeg,
        }
    }

    #[test]
    fn spool_gives_back_what_it_kept() {
        let s = Spool::new().unwrap();
        let (a, b) = (thumb(20, 1), thumb(30, 2));
        s.put("1:a", &a);
        s.put("2:b", &b);
        s.put("1:a", &b); // the first one wins
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("2:b"), Some(b));
        assert_eq!(s.get("1:a"), Some(a));
        assert_eq!(s.get("3:c"), None);
    }
}
