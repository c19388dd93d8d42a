//! HEIC/HEIF and AVIF photos, through libheif (the `heif` cargo feature).
//!
//! Recognising the files needs no library: [`sniff`] reads the ISO-BMFF
//! `ftyp` brands. Decoding needs libheif (Debian: `libheif-dev`), bound by
//! the libheif-rs crate; a build without the `heif` feature skips these
//! files with a warning that says how to get a build that reads them.
//! libheif applies the file's rotation, mirroring and crop (`irot`, `imir`,
//! `clap`), which the HEIF standard makes authoritative: the EXIF
//! orientation a phone also writes is not applied on top.

use super::limits::Limits;
use crate::photo::{Format, SkipKind, SkipReason};

/// True when this build decodes HEIC and AVIF.
pub const AVAILABLE: bool = Format::Heic.decodes();

/// "heic" or "avif" from a file's first bytes (its `ftyp` box), or `None`.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.len() < 16 || &head[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(head[0..4].try_into().ok()?) as usize;
    let end = size.clamp(16, 4096).min(head.len());
    // The major brand, then the compatible brands (after the minor version).
    let brands = std::iter::once(&head[8..12]).chain(head[16..end].chunks_exact(4));
    let mut heic = false;
    for b in brands {
        match b {
            b"avif" | b"avis" => return Some(Format::Avif),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                heic = true
            }
            _ => {}
        }
    }
    heic.then_some(Format::Heic)
}

/// Pixels as displayed (transformations applied), 8-bit RGB, row-major.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Decode a HEIC or AVIF file (`format` from [`sniff`]).
#[cfg(not(feature = "heif"))]
pub fn decode(_bytes: &[u8], format: Format, _limits: Limits) -> Result<Decoded, SkipReason> {
    Err(SkipReason::new(
        SkipKind::UnsupportedFormat,
        format!(
            "this build cannot read {}; build with --features heif",
            format.name().to_uppercase()
        ),
    ))
}

/// Decode a HEIC or AVIF file (`format` from [`sniff`]).
#[cfg(feature = "heif")]
pub fn decode(bytes: &[u8], format: Format, limits: Limits) -> Result<Decoded, SkipReason> {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    let name = format.name().to_uppercase();
    let bad = |e: libheif_rs::HeifError| {
        SkipReason::new(SkipKind::Corrupt, format!("damaged {name}: {}", e.message))
    };
    let ctx = HeifContext::read_from_bytes(bytes).map_err(bad)?;
    let handle = ctx.primary_image_handle().map_err(bad)?;
    let (w, h) = (handle.width() as u64, handle.height() as u64);
    super::limits::check_size(w, h, limits)?;
    let alpha = handle.has_alpha_channel();
    // libheif's decoded planes (up to 3 bytes a pixel, more above 8 bits),
    // its interleaved RGB(A), then ours.
    let depth = if handle.luma_bits_per_pixel() > 8 {
        2
    } else {
        1
    };
    let channels = if alpha { 4 } else { 3 };
    super::limits::check_memory(
        w * h * (3 * depth + channels * depth + 3),
        limits.max_alloc,
        &name,
    )?;
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let image = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(bad)?;
    let plane = image.planes().interleaved.ok_or_else(|| {
        SkipReason::new(
            SkipKind::Corrupt,
            format!("damaged {name}: no pixels decoded"),
        )
    })?;
    let (width, height) = (plane.width, plane.height);
    let channels = if alpha { 4 } else { 3 };
    let row = width as usize * channels;
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height as usize {
        let line = plane
            .data
            .get(y * plane.stride..y * plane.stride + row)
            .ok_or_else(|| {
                SkipReason::new(
                    SkipKind::Corrupt,
                    format!("damaged {name}: short pixel data"),
                )
            })?;
        if alpha {
            // Composited over white, as the other formats are.
            for p in line.chunks_exact(4) {
                let a = p[3] as u32;
                for &c in &p[..3] {
                    rgb.push(((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8);
                }
            }
        } else {
            rgb.extend_from_slice(line);
        }
    }
    Ok(Decoded { rgb, width, height })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/formats/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn brands_tell_heic_from_avif() {
        assert_eq!(sniff(&fixture("photo.heic")), Some(Format::Heic));
        assert_eq!(sniff(&fixture("photo.avif")), Some(Format::Avif));
        assert_eq!(sniff(&fixture("rotated.avif")[..64]), Some(Format::Avif));
        assert_eq!(sniff(&fixture("shot.cr3")), None);
        assert_eq!(sniff(&fixture("twin.jpg")), None);
        // A MP4 video is no photo.
        let mut mp4 = 24u32.to_be_bytes().to_vec();
        mp4.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
        assert_eq!(sniff(&mp4), None);
    }

    #[cfg(not(feature = "heif"))]
    #[test]
    fn without_the_feature_the_skip_says_how_to_get_it() {
        let r = decode(&fixture("photo.heic"), Format::Heic, Default::default()).unwrap_err();
        assert_eq!(r.kind, SkipKind::UnsupportedFormat);
        assert_eq!(
            r.message,
            "this build cannot read HEIC; build with --features heif"
        );
    }

    #[cfg(feature = "heif")]
    #[test]
    fn heic_and_avif_decode_upright() {
        for name in ["photo.heic", "photo.avif", "rotated.heic", "rotated.avif"] {
            let bytes = fixture(name);
            let format = sniff(&bytes).unwrap();
            let d = decode(&bytes, format, Default::default())
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!((d.width, d.height), (192, 128), "{name}");
            assert_eq!(d.rgb.len(), 192 * 128 * 3, "{name}");
        }
        for cut in [10, 200, 2000] {
            let bytes = fixture("photo.heic");
            assert!(decode(&bytes[..cut], Format::Heic, Default::default()).is_err());
        }
    }
}
