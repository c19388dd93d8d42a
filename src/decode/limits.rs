//! Limits that protect against decompression bombs, and the checks every
//! decoder runs against them from a file's header, before any pixel buffer
//! is allocated.

use crate::photo::{SkipKind, SkipReason};

/// Limits that protect against decompression bombs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest width x height accepted, read from the header before any
    /// pixel buffer is allocated.
    pub max_pixels: u64,
    /// Largest memory one decode may use, in bytes, estimated from the
    /// header before any pixel buffer is allocated (see `decode_estimate`
    /// in `decode.rs`: the decoder's whole-image buffers, the conversion to
    /// RGB, libjpeg's coefficients of a progressive JPEG), and given to the
    /// image crate as its allocation limit. With `--threads N`, N decodes
    /// run at once.
    pub max_alloc: u64,
    /// Decode every pixel, never at reduced DCT scale (JPEGs with the same
    /// decoder, libjpeg-turbo, at full size), and compare same-size pixels
    /// by whole hashes: slow, for checking that the fast paths give the
    /// same report.
    pub plain: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 1 << 28,
            max_alloc: 1 << 30,
            plain: false,
        }
    }
}

/// Refuse an image with no pixels or more than `limits.max_pixels`, from
/// its header, before any pixel buffer is allocated.
pub(crate) fn check_size(w: u64, h: u64, limits: Limits) -> Result<(), SkipReason> {
    if w == 0 || h == 0 {
        return Err(SkipReason::new(
            SkipKind::Corrupt,
            "the image has no pixels",
        ));
    }
    if w * h > limits.max_pixels {
        return Err(SkipReason::new(
            SkipKind::TooLarge,
            format!(
                "{w}x{h} pixels is over the limit of {} megapixels",
                limits.max_pixels / 1_000_000
            ),
        ));
    }
    Ok(())
}

/// Refuse a decode whose estimated memory is over `budget` bytes.
pub(crate) fn check_memory(estimate: u64, budget: u64, what: &str) -> Result<(), SkipReason> {
    if estimate > budget {
        return Err(SkipReason::new(
            SkipKind::TooLarge,
            format!(
                "decoding this {what} needs about {} MB, more than the {} MB one decode may use",
                estimate.div_ceil(1_000_000),
                budget / 1_000_000
            ),
        ));
    }
    Ok(())
}
