//! The words every stage shares: which file ([`FileEntry`], [`PhotoId`],
//! [`ContentKey`]), what it holds ([`Format`]) and why it was not used
//! ([`SkipKind`], [`SkipReason`]).
//!
//! This module imports nothing from the stages, so that every stage (walk,
//! decode and its parts, keep, report...) can import it without a circle.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A photo's index in the scan's list of embedded photos.
pub type PhotoId = u32;

/// The content key of a file: its size and the BLAKE3 hash of its bytes
/// (see [`crate::cache::content_key`]). Two files with the same key hold
/// the same bytes.
pub type ContentKey = String;

/// A file found under a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: PathBuf,
    pub bytes: u64,
    /// Modification time, nanoseconds since the epoch (0 when unknown).
    pub mtime_ns: i64,
}

/// Why a file was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The bytes are not an image (text, HTML, empty file...).
    NotAnImage,
    /// An image format this build does not decode.
    UnsupportedFormat,
    /// The image is damaged (truncated, invalid data).
    Corrupt,
    /// A RAW file without a usable embedded JPEG preview.
    NoPreview,
    /// Larger than the limits allow (decompression bomb guard).
    TooLarge,
    /// The file could not be read (permissions, I/O error).
    Unreadable,
    /// The file disappeared during the scan.
    Vanished,
    /// A symbolic link whose target does not exist.
    BrokenSymlink,
    /// A named pipe (FIFO), a device or a socket, or a link to one: never
    /// opened for reading.
    NotAFile,
    /// A file or folder whose name is not valid UTF-8: it cannot be shown
    /// in a report without losing which file it is (the message gives the
    /// name with the invalid bytes escaped, `a\xff.jpg`).
    NonUtf8Name,
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipReason {
    pub kind: SkipKind,
    pub message: String,
}

impl SkipReason {
    pub fn new(kind: SkipKind, message: impl Into<String>) -> SkipReason {
        SkipReason {
            kind,
            message: message.into(),
        }
    }
}

/// No file larger than this is read as a photo (the largest
/// [`Format::max_file_bytes`]).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// A file format neardup knows. The format of a file is decided from its
/// bytes ([`crate::decode::sniff`]), never from its name; the extensions
/// only say which names look like photos (a skip of a file so named is
/// worth a warning).
///
/// The serde spelling is [`Format::name`] (`"jpeg"`, `"cr2"`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Tiff,
    Bmp,
    Gif,
    /// HEIC/HEIF (decoded with the `heif` feature).
    Heic,
    /// AVIF (decoded with the `heif` feature).
    Avif,
    Dng,
    Cr2,
    Cr3,
    Nef,
    Arw,
    Orf,
    Raf,
    Rw2,
    Pef,
    Srw,
    /// Another TIFF-based RAW file (sensor data, an unknown maker).
    Raw,
}

impl Format {
    /// Every format, in the order `neardup formats` lists them.
    pub const ALL: [Format; 19] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Tiff,
        Format::Bmp,
        Format::Gif,
        Format::Heic,
        Format::Avif,
        Format::Dng,
        Format::Cr2,
        Format::Cr3,
        Format::Nef,
        Format::Arw,
        Format::Orf,
        Format::Raf,
        Format::Rw2,
        Format::Pef,
        Format::Srw,
        Format::Raw,
    ];

    /// The name in reports (`members[].format`), cache rows and
    /// `neardup formats`: lowercase, `"jpeg"`, `"cr2"`...
    pub const fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::Gif => "gif",
            Format::Heic => "heic",
            Format::Avif => "avif",
            Format::Dng => "dng",
            Format::Cr2 => "cr2",
            Format::Cr3 => "cr3",
            Format::Nef => "nef",
            Format::Arw => "arw",
            Format::Orf => "orf",
            Format::Raf => "raf",
            Format::Rw2 => "rw2",
            Format::Pef => "pef",
            Format::Srw => "srw",
            Format::Raw => "raw",
        }
    }

    /// The format named `name` (exactly as [`Format::name`] spells it).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The format as a person knows it (`"Canon CR2"`).
    pub const fn description(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
            Format::Tiff => "TIFF",
            Format::Bmp => "BMP",
            Format::Gif => "GIF",
            Format::Heic => "HEIC/HEIF",
            Format::Avif => "AVIF",
            Format::Dng => "Adobe DNG",
            Format::Cr2 => "Canon CR2",
            Format::Cr3 => "Canon CR3",
            Format::Nef => "Nikon NEF",
            Format::Arw => "Sony ARW",
            Format::Orf => "Olympus/OM ORF",
            Format::Raf => "Fujifilm RAF",
            Format::Rw2 => "Panasonic RW2",
            Format::Pef => "Pentax PEF",
            Format::Srw => "Samsung SRW",
            Format::Raw => "other TIFF-based RAW",
        }
    }

    /// File name extensions (lowercase, without the dot) of this format;
    /// none for [`Format::Raw`], which is only known from its bytes.
    /// HEIC and AVIF have theirs in every build.
    pub const fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Jpeg => &["jpg", "jpeg", "jpe"],
            Format::Png => &["png"],
            Format::Webp => &["webp"],
            Format::Tiff => &["tif", "tiff"],
            Format::Bmp => &["bmp"],
            Format::Gif => &["gif"],
            Format::Heic => &["heic", "heif", "hif"],
            Format::Avif => &["avif"],
            Format::Dng => &["dng"],
            Format::Cr2 => &["cr2"],
            Format::Cr3 => &["cr3"],
            Format::Nef => &["nef", "nrw"],
            Format::Arw => &["arw", "srf", "sr2"],
            Format::Orf => &["orf"],
            Format::Raf => &["raf"],
            Format::Rw2 => &["rw2"],
            Format::Pef => &["pef"],
            Format::Srw => &["srw"],
            Format::Raw => &[],
        }
    }

    /// The format whose [`Format::extensions`] include `ext`
    /// (case-insensitive, without the dot).
    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.extensions().iter().any(|e| e.eq_ignore_ascii_case(ext)))
    }

    /// True for the RAW camera formats (read through their embedded JPEG
    /// preview, see [`crate::decode::raw`]).
    pub const fn is_raw(self) -> bool {
        matches!(
            self,
            Format::Dng
                | Format::Cr2
                | Format::Cr3
                | Format::Nef
                | Format::Arw
                | Format::Orf
                | Format::Raf
                | Format::Rw2
                | Format::Pef
                | Format::Srw
                | Format::Raw
        )
    }

    /// True for what a camera writes beside its RAW file in RAW+JPEG mode:
    /// a JPEG, or a HEIC.
    pub const fn is_camera_jpeg(self) -> bool {
        matches!(self, Format::Jpeg | Format::Heic)
    }

    /// How good a copy in this format is, higher is better: RAW > TIFF >
    /// PNG > HEIC > JPEG > WebP > others (the keep criterion `format`).
    pub const fn keep_rank(self) -> u8 {
        match self {
            f if f.is_raw() => 6,
            Format::Tiff => 5,
            Format::Png => 4,
            Format::Heic => 3,
            Format::Jpeg => 2,
            Format::Webp => 1,
            _ => 0,
        }
    }

    /// The largest file of this format that is read whole. Compressed
    /// formats: 512 MiB, more than a 268-megapixel JPEG at quality 100
    /// takes. Formats that may be stored uncompressed (TIFF, BMP, PNG) and
    /// RAW files (read for their preview, but whole): 1 GiB
    /// ([`MAX_FILE_BYTES`]).
    pub const fn max_file_bytes(self) -> u64 {
        match self {
            Format::Jpeg | Format::Webp | Format::Gif | Format::Heic | Format::Avif => 512 << 20,
            _ => MAX_FILE_BYTES,
        }
    }

    /// True when this build decodes the format: all of them, but HEIC and
    /// AVIF only with the `heif` feature.
    pub const fn decodes(self) -> bool {
        cfg!(feature = "heif") || !matches!(self, Format::Heic | Format::Avif)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_the_serde_spelling() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f), "{f:?}");
            assert_eq!(f.to_string(), f.name());
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
            assert_eq!(
                serde_json::from_str::<Format>(&format!("\"{f}\"")).unwrap(),
                f
            );
            assert_eq!(f.name(), f.name().to_ascii_lowercase());
        }
        assert_eq!(Format::from_name("unknown"), None);
        assert_eq!(Format::from_name("JPEG"), None);
        assert_eq!(Format::from_name("jpg"), None);
    }

    #[test]
    fn every_extension_maps_back_to_its_format() {
        let mut seen = std::collections::HashSet::new();
        for f in Format::ALL {
            for e in f.extensions() {
                assert!(seen.insert(*e), "{e} is listed twice");
                assert_eq!(*e, e.to_ascii_lowercase());
                assert_eq!(Format::from_extension(e), Some(f), "{e}");
                assert_eq!(
                    Format::from_extension(&e.to_ascii_uppercase()),
                    Some(f),
                    "{e}"
                );
            }
        }
        assert_eq!(seen.len(), 26);
        assert_eq!(Format::from_extension("txt"), None);
        assert_eq!(Format::from_extension(""), None);
        assert_eq!(Format::from_extension("raw"), None);
    }

    #[test]
    fn all_lists_every_format_once() {
        let names: std::collections::HashSet<_> = Format::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Format::ALL.len());
        let raws: Vec<&str> = Format::ALL
            .into_iter()
            .filter(|f| f.is_raw())
            .map(Format::name)
            .collect();
        assert_eq!(
            raws,
            ["dng", "cr2", "cr3", "nef", "arw", "orf", "raf", "rw2", "pef", "srw", "raw"]
        );
        let decoded = Format::ALL.into_iter().filter(|f| !f.decodes()).count();
        assert_eq!(decoded, if cfg!(feature = "heif") { 0 } else { 2 });
    }

    #[test]
    fn keep_ranks_and_size_caps() {
        let ranked = [
            Format::Dng,
            Format::Tiff,
            Format::Png,
            Format::Heic,
            Format::Jpeg,
            Format::Webp,
            Format::Bmp,
        ];
        for w in ranked.windows(2) {
            assert!(w[0].keep_rank() > w[1].keep_rank(), "{w:?}");
        }
        assert_eq!(Format::Raw.keep_rank(), Format::Cr3.keep_rank());
        assert_eq!(Format::Avif.keep_rank(), 0);
        assert_eq!(Format::Gif.keep_rank(), 0);
        assert_eq!(Format::Jpeg.max_file_bytes(), 512 << 20);
        assert_eq!(Format::Tiff.max_file_bytes(), MAX_FILE_BYTES);
        assert_eq!(Format::Nef.max_file_bytes(), MAX_FILE_BYTES);
        assert!(Format::ALL
            .into_iter()
            .all(|f| f.max_file_bytes() <= MAX_FILE_BYTES));
    }
}
