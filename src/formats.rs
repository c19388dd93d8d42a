//! What this build can read: the list `neardup formats` prints.

/// One file format as a person knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FormatInfo {
    /// The name in reports (`members[].format`).
    pub name: &'static str,
    pub description: &'static str,
    /// File name extensions, lowercase.
    pub extensions: &'static [&'static str],
    /// True when this build decodes it.
    pub readable: bool,
    /// How it is read, or why not.
    pub note: &'static str,
}

const HEIF_NOTE: &str = if crate::heif::AVAILABLE {
    "libheif (the heif feature); rotation and mirroring of the file applied"
} else {
    "not in this build: build with --features heif (needs libheif-dev)"
};

const RAW_NOTE: &str = "largest embedded JPEG preview, orientation from the RAW's metadata";

/// Every format neardup knows, in the order `neardup formats` lists them.
pub fn catalogue() -> Vec<FormatInfo> {
    let f = |name, description, extensions, readable, note| FormatInfo {
        name,
        description,
        extensions,
        readable,
        note,
    };
    vec![
        f(
            "jpeg",
            "JPEG",
            &["jpg", "jpeg", "jpe"],
            true,
            "decoded at 1/2, 1/4 or 1/8 scale when that is enough; EXIF orientation applied",
        ),
        f("png", "PNG", &["png"], true, "transparency over white"),
        f(
            "webp",
            "WebP",
            &["webp"],
            true,
            "lossy and lossless; animated: the first frame",
        ),
        f(
            "tiff",
            "TIFF",
            &["tif", "tiff"],
            true,
            "8 and 16 bit; multi-page: the first page",
        ),
        f("bmp", "BMP", &["bmp"], true, ""),
        f("gif", "GIF", &["gif"], true, "the first frame"),
        f(
            "heic",
            "HEIC/HEIF",
            &["heic", "heif", "hif"],
            crate::heif::AVAILABLE,
            HEIF_NOTE,
        ),
        f("avif", "AVIF", &["avif"], crate::heif::AVAILABLE, HEIF_NOTE),
        f("dng", "Adobe DNG", &["dng"], true, RAW_NOTE),
        f("cr2", "Canon CR2", &["cr2"], true, RAW_NOTE),
        f("cr3", "Canon CR3", &["cr3"], true, RAW_NOTE),
        f("nef", "Nikon NEF", &["nef", "nrw"], true, RAW_NOTE),
        f("arw", "Sony ARW", &["arw", "srf", "sr2"], true, RAW_NOTE),
        f("orf", "Olympus/OM ORF", &["orf"], true, RAW_NOTE),
        f("raf", "Fujifilm RAF", &["raf"], true, RAW_NOTE),
        f("rw2", "Panasonic RW2", &["rw2"], true, RAW_NOTE),
        f("pef", "Pentax PEF", &["pef"], true, RAW_NOTE),
        f("srw", "Samsung SRW", &["srw"], true, RAW_NOTE),
        f(
            "raw",
            "other TIFF-based RAW",
            &[],
            true,
            "as the RAW formats above, when the file holds a JPEG preview",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_agrees_with_the_decoder() {
        let all = catalogue();
        for f in &all {
            assert_eq!(
                f.readable,
                crate::decode::SUPPORTED_FORMATS.contains(&f.name),
                "{}",
                f.name
            );
            for e in f.extensions {
                assert!(
                    crate::decode::PHOTO_EXTENSIONS.contains(e),
                    "{e} of {}",
                    f.name
                );
            }
        }
        for name in crate::decode::SUPPORTED_FORMATS {
            assert!(all.iter().any(|f| f.name == *name), "{name}");
        }
        for name in crate::raw::RAW_FORMATS {
            assert!(all.iter().any(|f| f.name == *name), "{name}");
        }
    }
}
