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
    Refused(crate::photo::SkipReason),
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

/// What the header says, before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    /// Bytes libjpeg allocates for the whole image's DCT coefficients
    /// before it can output a row: a progressive (or other multi-scan) JPEG
    /// is kept whole as coefficients, 2 bytes each, 64 per 8 x 8 block of
    /// every component at its own sampling, whatever the output scale. 0
    /// for a single-scan (baseline) JPEG, decoded a band at a time.
    pub coefficient_bytes: u64,
}

impl Header {
    fn of<R>(d: &Decompress<R>, bytes: &[u8]) -> Header {
        let coefficient_bytes = if multi_scan(bytes) {
            d.components()
                .iter()
                .map(|c| {
                    let h = c.h_samp_factor.max(1) as u64;
                    let v = c.v_samp_factor.max(1) as u64;
                    let w = (c.width_in_blocks as u64).div_ceil(h) * h;
                    let hb = (c.height_in_blocks as u64).div_ceil(v) * v;
                    w * hb * 64 * 2
                })
                .sum()
        } else {
            0
        };
        Header {
            width: d.width() as u32,
            height: d.height() as u32,
            coefficient_bytes,
        }
    }
}

/// Whether the JPEG in `bytes` has more than one scan (progressive, or
/// sequential with components in separate scans), from its markers up to
/// the first scan. `false` when the markers cannot be followed (libjpeg
/// then fails on them itself).
pub(crate) fn multi_scan(bytes: &[u8]) -> bool {
    let mut pos = 2;
    let mut components = None;
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            pos += 1; // stray bytes between segments: libjpeg skips them too
            continue;
        }
        let marker = bytes[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            pos += 2;
            continue;
        }
        let len = u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize;
        match marker {
            // SOF2, SOF6, SOF10, SOF14: progressive.
            0xC2 | 0xC6 | 0xCA | 0xCE => return true,
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                components = bytes.get(pos + 9).copied();
            }
            0xDA => {
                // A first scan with fewer components than the frame: more
                // scans follow.
                return match (components, bytes.get(pos + 4)) {
                    (Some(nf), Some(&ns)) => ns < nf,
                    _ => false,
                };
            }
            _ => {}
        }
        pos += 2 + len;
    }
    false
}

/// Decode `bytes` as RGB. `scale` sees the header and returns the
/// numerator `n` of the scale `n/8` (1..=8), or refuses the image.
pub(crate) fn decode(
    bytes: &[u8],
    scale: impl FnOnce(&Header) -> Result<u8, crate::photo::SkipReason>,
) -> Result<Decoded, Failure> {
    let run = AssertUnwindSafe(|| -> Result<Decoded, Failure> {
        let io = |e: std::io::Error| Failure::Corrupt(e.to_string());
        let mut d = open(bytes).map_err(io)?;
        let (full_width, full_height) = (d.width() as u32, d.height() as u32);
        let exif = exif_block(&d).map(<[u8]>::to_vec);
        let n = scale(&Header::of(&d, bytes)).map_err(Failure::Refused)?;
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
/// `header` sees each file's header and EXIF block and returns what must
/// match before any pixel is compared (size and orientation); `Ok(None)`
/// when the two differ there, or a file is in a colour space this path does
/// not decode: the caller compares another way.
pub(crate) fn same_pixels<H: PartialEq>(
    a: &[u8],
    b: &[u8],
    header: impl Fn(&Header, Option<&[u8]>) -> Result<H, crate::photo::SkipReason>,
) -> Result<Option<bool>, Failure> {
    let run = AssertUnwindSafe(|| -> Result<Option<bool>, Failure> {
        let io = |e: std::io::Error| Failure::Corrupt(e.to_string());
        type Opened<'a, H> = Option<(Decompress<&'a [u8]>, H)>;
        let open_one = |bytes| -> Result<Opened<'_, H>, Failure> {
            let d = open(bytes).map_err(io)?;
            let h = header(&Header::of(&d, bytes), exif_block(&d)).map_err(Failure::Refused)?;
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

/// libjpeg's state while it reads the header (`jpegint.h`).
const DSTATE_INHEADER: c_int = 201;

fn error_manager() -> ffi::jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of a zeroed struct.
    let mut err: ffi::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(on_error);
    err.emit_message = Some(on_message);
    err
}

extern "C-unwind" fn on_error(cinfo: &mut ffi::jpeg_common_struct) {
    use crate::photo::{SkipKind, SkipReason};
    // SAFETY: libjpeg passes its own struct, whose `err` is our manager.
    let code = unsafe { (*cinfo.err).msg_code };
    let message = message(cinfo);
    let failure = if code == ffi::JERR_BAD_PRECISION as c_int {
        // 12- and 16-bit JPEGs (medical, some scanners): valid files that
        // this 8-bit build of libjpeg does not read.
        Failure::Refused(SkipReason::new(
            SkipKind::UnsupportedFormat,
            format!("JPEG with more than 8 bits per sample is not supported ({message})"),
        ))
    } else if code == ffi::JERR_IMAGE_TOO_BIG as c_int {
        Failure::Refused(SkipReason::new(
            SkipKind::TooLarge,
            format!("JPEG too large: {message}"),
        ))
    } else {
        Failure::Corrupt(message)
    };
    // resume_unwind does not run the panic hook: nothing is printed.
    resume_unwind(Box::new(failure));
}

extern "C-unwind" fn on_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return; // trace messages
    }
    // SAFETY: libjpeg passes its own struct, whose `err` is our manager.
    let code = unsafe { (*cinfo.err).msg_code };
    // Stray bytes between the header's segments are common in camera files
    // and harmless. The same warning once pixels are being decoded means
    // bytes the entropy decoder did not use before a marker: damaged data.
    if code == ffi::JWRN_EXTRANEOUS_DATA as c_int && cinfo.global_state == DSTATE_INHEADER {
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

    /// A `w` x `h` gradient JPEG from libjpeg itself, 4:4:4.
    fn jpeg(w: usize, h: usize, progressive: bool) -> Vec<u8> {
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 90])
            .collect();
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(w, h);
        c.set_quality(85.0);
        c.set_chroma_sampling_pixel_sizes((1, 1), (1, 1));
        if progressive {
            c.set_progressive_mode();
        } else {
            // mozjpeg's defaults are progressive: force a single scan.
            c.set_fastest_defaults();
        }
        let mut started = c.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&rgb).unwrap();
        started.finish().unwrap()
    }

    fn header_of(bytes: &[u8]) -> Header {
        let mut seen = None;
        let r = decode(bytes, |h| {
            seen = Some(*h);
            Ok(1)
        });
        assert!(r.is_ok(), "{:?}", r.err());
        seen.unwrap()
    }

    #[test]
    fn progressive_jpegs_count_their_whole_coefficients() {
        let prog = jpeg(800, 600, true);
        let base = jpeg(800, 600, false);
        assert!(multi_scan(&prog));
        assert!(!multi_scan(&base));
        // 100 x 75 blocks of 64 coefficients of 2 bytes, 3 components.
        assert_eq!(header_of(&prog).coefficient_bytes, 100 * 75 * 128 * 3);
        let h = header_of(&base);
        assert_eq!((h.width, h.height, h.coefficient_bytes), (800, 600, 0));
        assert!(!multi_scan(b"\xFF\xD8"));
    }

    /// The offset of the first scan's entropy-coded data.
    fn scan_data(bytes: &[u8]) -> usize {
        let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        sos + 2 + u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]) as usize
    }

    #[test]
    fn garbage_in_the_pixel_data_is_damage_but_between_header_segments_is_not() {
        let good = jpeg(320, 240, false);
        // Bytes inside the scan that the entropy decoder does not use up:
        // libjpeg warns of extraneous bytes before the next marker (EOI)
        // once the pixels are decoded.
        assert!(good.ends_with(&[0xFF, 0xD9]) && scan_data(&good) < good.len() - 2);
        let end = good.len() - 2;
        let mut bad = good.clone();
        bad.splice(end..end, [0x12u8, 0x34, 0x56, 0x78].repeat(40));
        match decode(&bad, |_| Ok(8)) {
            Err(Failure::Corrupt(m)) => assert!(m.contains("Corrupt JPEG data"), "{m}"),
            other => panic!("{:?}", other.map(|d| d.width)),
        }
        // The same bytes between two header segments (after APP0): harmless.
        let app0_end = 4 + u16::from_be_bytes([good[4], good[5]]) as usize;
        let mut padded = good.clone();
        padded.splice(app0_end..app0_end, [0u8; 7]);
        let d = decode(&padded, |_| Ok(8)).unwrap();
        assert_eq!((d.width, d.height), (320, 240));
    }

    #[test]
    fn twelve_bit_and_oversized_headers_are_refused_with_their_kind() {
        use crate::photo::SkipKind;
        let good = jpeg(64, 48, false);
        let sof = good.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut twelve = good.clone();
        twelve[sof + 4] = 12;
        match decode(&twelve, |_| Ok(8)) {
            Err(Failure::Refused(r)) => {
                assert_eq!(r.kind, SkipKind::UnsupportedFormat, "{r:?}");
                assert!(r.message.contains("8 bits"), "{r:?}");
            }
            other => panic!("{:?}", other.map(|d| d.width)),
        }
        let mut huge = good.clone();
        huge[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        match decode(&huge, |_| Ok(8)) {
            Err(Failure::Refused(r)) => assert_eq!(r.kind, SkipKind::TooLarge, "{r:?}"),
            other => panic!("{:?}", other.map(|d| d.width)),
        }
    }
}
