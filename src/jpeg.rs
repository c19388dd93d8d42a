//! JPEG decoding with libjpeg-turbo's DCT-domain scaling.
//!
//! libjpeg-turbo comes from the `mozjpeg` crate, which compiles it from
//! source with the C compiler (no system library, no cmake, no nasm). Its
//! scaled decode skips most of the inverse DCT work: a 12 MP photo decoded
//! at 1/8 costs little more than its entropy decoding. Measured against
//! jpeg-decoder's scaled decode and zune-jpeg's full decode on 40 camera
//! JPEGs of 12 MP (see the commit that added this module).
//!
//! libjpeg reports fatal errors through a callback that must not return; the
//! callback here unwinds with a [`Failure`] that [`decode`] catches. Warnings
//! about damaged data (a truncated file, a corrupt segment) are treated as
//! errors too, so that a damaged photo is skipped rather than embedded with
//! grey bands. This is the only module that knows mozjpeg.

use mozjpeg::{Decompress, Marker};
use mozjpeg_sys as ffi;
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Why a JPEG was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Damaged data, with libjpeg's message.
    Corrupt(String),
    /// Valid, but not something this path handles (CMYK): try another decoder.
    Unsupported(String),
    /// Refused by the caller's size check.
    Refused(crate::decode::SkipReason),
}

/// Pixels decoded at a reduced scale, stored orientation.
pub(crate) struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The full size in the file.
    pub full_width: u32,
    pub full_height: u32,
    /// The EXIF block (the TIFF structure after `Exif\0\0`), if any.
    pub exif: Option<Vec<u8>>,
}

/// Decode `bytes` as RGB. `scale` sees the full size and returns the
/// numerator `n` of the scale `n/8` (1..=8), or refuses the image.
pub(crate) fn decode(
    bytes: &[u8],
    scale: impl FnOnce(u32, u32) -> Result<u8, crate::decode::SkipReason>,
) -> Result<Decoded, Failure> {
    let run = AssertUnwindSafe(|| -> Result<Decoded, Failure> {
        let io = |e: std::io::Error| Failure::Corrupt(e.to_string());
        let mut d = open(bytes).map_err(io)?;
        let (full_width, full_height) = (d.width() as u32, d.height() as u32);
        let exif = exif_block(&d).map(<[u8]>::to_vec);
        let n = scale(full_width, full_height).map_err(Failure::Refused)?;
        if !decodes_to_rgb(&d) {
            return Err(Failure::Unsupported(format!(
                "colour space {:?}",
                d.color_space()
            )));
        }
        d.scale(n.clamp(1, 8));
        let mut started = d.rgb().map_err(io)?;
        let (width, height) = (started.width() as u32, started.height() as u32);
        let rgb = started.read_scanlines::<u8>().map_err(io)?;
        started.finish().map_err(io)?;
        if rgb.len() != width as usize * height as usize * 3 {
            return Err(Failure::Corrupt("short pixel data".into()));
        }
        Ok(Decoded {
            rgb,
            width,
            height,
            full_width,
            full_height,
            exif,
        })
    });
    match catch_unwind(run) {
        Ok(r) => r,
        Err(payload) => Err(unwound(payload)),
    }
}

/// Whether two JPEGs decode to the same pixels at full size: both are
/// decoded side by side, a band of rows at a time, and the comparison stops
/// at the first band that differs. Two different photos of the same size
/// (the usual case: a copy re-saved at another quality) then cost a few rows
/// instead of two whole decodes; two equal ones cost both decodes, as a
/// hash of each would.
///
/// `header` sees each file's full size and EXIF block and returns what must
/// match before any pixel is compared (size and orientation); `Ok(None)`
/// when the two differ there, or a file is in a colour space this path does
/// not decode: the caller compares another way.
pub(crate) fn same_pixels<H: PartialEq>(
    a: &[u8],
    b: &[u8],
    header: impl Fn(u32, u32, Option<&[u8]>) -> Result<H, crate::decode::SkipReason>,
) -> Result<Option<bool>, Failure> {
    let run = AssertUnwindSafe(|| -> Result<Option<bool>, Failure> {
        let io = |e: std::io::Error| Failure::Corrupt(e.to_string());
        type Opened<'a, H> = Option<(Decompress<&'a [u8]>, H)>;
        let open_one = |bytes| -> Result<Opened<'_, H>, Failure> {
            let d = open(bytes).map_err(io)?;
            let h = header(d.width() as u32, d.height() as u32, exif_block(&d))
                .map_err(Failure::Refused)?;
            Ok(decodes_to_rgb(&d).then_some((d, h)))
        };
        let (Some((da, ha)), Some((db, hb))) = (open_one(a)?, open_one(b)?) else {
            return Ok(None);
        };
        if ha != hb || da.size() != db.size() {
            return Ok(None);
        }
        let mut sa = da.rgb().map_err(io)?;
        let mut sb = db.rgb().map_err(io)?;
        let (w, h) = (sa.width(), sa.height());
        const BAND: usize = 16;
        let mut ba = vec![0u8; w * 3 * BAND];
        let mut bb = vec![0u8; w * 3 * BAND];
        let mut row = 0;
        while row < h {
            let rows = BAND.min(h - row);
            let (ra, rb) = (&mut ba[..w * 3 * rows], &mut bb[..w * 3 * rows]);
            sa.read_scanlines_into(&mut ra[..]).map_err(io)?;
            sb.read_scanlines_into(&mut rb[..]).map_err(io)?;
            if ra != rb {
                return Ok(Some(false));
            }
            row += rows;
        }
        sa.finish().map_err(io)?;
        sb.finish().map_err(io)?;
        Ok(Some(true))
    });
    match catch_unwind(run) {
        Ok(r) => r,
        Err(payload) => Err(unwound(payload)),
    }
}

/// A decompressor on `bytes` with our error manager, keeping APP1 (EXIF).
fn open(bytes: &[u8]) -> std::io::Result<Decompress<&[u8]>> {
    Decompress::builder()
        .with_err(error_manager())
        .with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
}

/// The EXIF block (the TIFF structure after `Exif\0\0`), if any.
fn exif_block<R>(d: &Decompress<R>) -> Option<&[u8]> {
    d.markers()
        .find(|m| matches!(m.marker, Marker::APP(1)) && m.data.starts_with(b"Exif\0\0"))
        .map(|m| &m.data[6..])
}

/// Whether libjpeg converts this colour space to RGB (not CMYK/YCCK).
fn decodes_to_rgb<R>(d: &Decompress<R>) -> bool {
    matches!(
        d.color_space(),
        ffi::J_COLOR_SPACE::JCS_GRAYSCALE
            | ffi::J_COLOR_SPACE::JCS_YCbCr
            | ffi::J_COLOR_SPACE::JCS_RGB
    )
}

/// The [`Failure`] a decoder callback unwound with.
fn unwound(payload: Box<dyn std::any::Any + Send>) -> Failure {
    match payload.downcast::<Failure>() {
        Ok(f) => *f,
        Err(payload) => match payload.downcast::<String>() {
            Ok(s) => Failure::Corrupt(*s),
            Err(_) => Failure::Corrupt("the decoder failed".into()),
        },
    }
}

/// The smallest numerator `n` (scale `n/8`) whose scaled `side` still covers
/// `target`; 8 (full size) when no reduction fits.
///
/// Only the power-of-two scales 1/8, 1/4 and 1/2: libjpeg-turbo's other
/// scaled inverse DCTs (3/8, 5/8...) resample worse, and moved the distances
/// of some photos twice as far from a full decode (largest change over
/// synth-dev 0.044 against 0.024, mean 0.0049 against 0.0029).
pub(crate) fn numerator_for(side: u32, target: u32) -> u8 {
    [1u8, 2, 4, 8]
        .into_iter()
        .find(|&n| (side as u64 * n as u64).div_ceil(8) >= target as u64)
        .unwrap_or(8)
}

fn error_manager() -> ffi::jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of a zeroed struct.
    let mut err: ffi::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(on_error);
    err.emit_message = Some(on_message);
    err
}

extern "C-unwind" fn on_error(cinfo: &mut ffi::jpeg_common_struct) {
    let message = message(cinfo);
    // resume_unwind does not run the panic hook: nothing is printed.
    resume_unwind(Box::new(Failure::Corrupt(message)));
}

extern "C-unwind" fn on_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return; // trace messages
    }
    // SAFETY: libjpeg passes its own struct, whose `err` is our manager.
    let code = unsafe { (*cinfo.err).msg_code };
    // Stray bytes between segments are common in camera files and harmless.
    if code == ffi::JWRN_EXTRANEOUS_DATA as c_int {
        return;
    }
    let message = message(cinfo);
    resume_unwind(Box::new(Failure::Corrupt(message)));
}

/// libjpeg's own text for the current message.
fn message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    let mut buf = [0u8; 80];
    // SAFETY: `err` is our manager, filled in by jpeg_std_error; its
    // format_message writes a NUL-terminated string of at most 80 bytes
    // into the buffer (the binding declares the buffer as shared, but the
    // C function writes to it, so it is given a mutable one).
    unsafe {
        let Some(format) = (*cinfo.err).format_message else {
            return format!("libjpeg message {}", (*cinfo.err).msg_code);
        };
        let format: unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, &mut [u8; 80]) =
            std::mem::transmute(format);
        format(cinfo, &mut buf);
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerator_is_the_smallest_that_covers_the_target() {
        assert_eq!(numerator_for(3000, 224), 1); // 375
        assert_eq!(numerator_for(1000, 224), 2); // 250
        assert_eq!(numerator_for(600, 224), 4); // 300 (3/8 would do, but is not used)
        assert_eq!(numerator_for(1000, 250), 2); // 250
        assert_eq!(numerator_for(224, 224), 8);
        assert_eq!(numerator_for(100, 224), 8);
    }
}
