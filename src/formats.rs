//! What this build can read: the list `neardup formats` prints, made from
//! [`Format::ALL`].

use crate::photo::Format;

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

const HEIF_NOTE: &str = if Format::Heic.decodes() {
    "libheif (the heif feature); rotation and mirroring of the file applied"
} else {
    "not in this build: build with --features heif (needs libheif-dev)"
};

const RAW_NOTE: &str = "largest embedded JPEG preview, orientation from the RAW's metadata";

/// How this build reads `format`, or why it does not.
fn note(format: Format) -> &'static str {
    match format {
        Format::Jpeg => {
            "decoded at 1/2, 1/4 or 1/8 scale when that is enough; EXIF orientation applied"
        }
        Format::Png => "transparency over white",
        Format::Webp => "lossy and lossless; animated: the first frame",
        Format::Tiff => "8 and 16 bit; multi-page: the first page",
        Format::Bmp => "",
        Format::Gif => "the first frame",
        Format::Heic | Format::Avif => HEIF_NOTE,
        Format::Raw => "as the RAW formats above, when the file holds a JPEG preview",
        _ => RAW_NOTE,
    }
}

/// Every format neardup knows, in the order `neardup formats` lists them
/// (the order of [`Format::ALL`]).
pub fn catalogue() -> Vec<FormatInfo> {
    Format::ALL
        .into_iter()
        .map(|f| FormatInfo {
            name: f.name(),
            description: f.description(),
            extensions: f.extensions(),
            readable: f.decodes(),
            note: note(f),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_built_from_all_formats() {
        let all = catalogue();
        assert_eq!(all.len(), Format::ALL.len());
        for (info, f) in all.iter().zip(Format::ALL) {
            assert_eq!(Format::from_name(info.name), Some(f));
            assert_eq!(info.readable, f.decodes(), "{f}");
            assert_eq!(
                info.readable,
                crate::decode::heif::AVAILABLE || !matches!(f, Format::Heic | Format::Avif)
            );
            for e in info.extensions {
                assert_eq!(Format::from_extension(e), Some(f), "{e} of {f}");
            }
            assert_eq!(info.note == RAW_NOTE, f.is_raw() && f != Format::Raw, "{f}");
        }
    }
}
