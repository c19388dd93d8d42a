//! Decoding: from a file's bytes to the model's input pixels.
//!
//! The format is decided from the bytes, never from the name. JPEGs are
//! decoded with DCT-domain scaling (1/2, 1/4 or 1/8) to the smallest size
//! whose shorter side still covers the model's resize target; everything is
//! then resized (antialiased bilinear, SIMD) and centre-cropped in one pass,
//! and the EXIF orientation is applied so that photos are compared as a
//! person sees them.

use crate::photo::Format;
use fast_image_resize as fir;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, RgbImage};
use std::io::Cursor;

pub use crate::photo::MAX_FILE_BYTES;
// Moved to the vocabulary; re-exported so that other modules still compile.
pub use crate::photo::{SkipKind, SkipReason};
pub use limits::Limits;
pub(crate) use limits::{check_memory, check_size};

pub mod heif;
mod jpeg;
pub mod limits;
pub mod meta;
pub mod raw;

/// The largest file of `format` (a [`sniff`] result) that is read whole
/// ([`Format::max_file_bytes`]).
pub fn max_file_bytes(format: Format) -> u64 {
    format.max_file_bytes()
}

/// Where the model wants its pixels: resize the shorter side to
/// `shorter_side`, then crop `width` x `height` from the centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub shorter_side: u32,
    pub width: u32,
    pub height: u32,
}

/// A decoded photo, reduced to the model's input.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Width and height as displayed (EXIF orientation applied), at full
    /// resolution.
    pub width: u32,
    pub height: u32,
    pub format: Format,
    /// `geometry.width * geometry.height` RGB pixels, row-major, as displayed.
    pub rgb: Vec<u8>,
}

/// Identify the image format from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Result<Format, SkipReason> {
    if head.is_empty() {
        return Err(SkipReason::new(
            SkipKind::NotAnImage,
            "not an image: empty file",
        ));
    }
    if let Some(f) = raw::sniff(head).or_else(|| heif::sniff(head)) {
        return Ok(f);
    }
    match image::guess_format(head) {
        Ok(f) => match format_name(f) {
            Some(name) => Ok(name),
            None => Err(SkipReason::new(
                SkipKind::UnsupportedFormat,
                format!("{f:?} images are not supported by this build"),
            )),
        },
        // The start of a JPEG (SOI) cut off before its first segment.
        Err(_) if head.starts_with(&[0xFF, 0xD8]) => Err(SkipReason::new(
            SkipKind::Corrupt,
            if head.len() < 4 {
                "damaged JPEG: the file ends after its start marker"
            } else {
                "damaged JPEG: no segment after its start marker"
            },
        )),
        Err(_) => Err(SkipReason::new(
            SkipKind::NotAnImage,
            describe_non_image(head),
        )),
    }
}

fn format_name(f: ImageFormat) -> Option<Format> {
    Some(match f {
        ImageFormat::Jpeg => Format::Jpeg,
        ImageFormat::Png => Format::Png,
        ImageFormat::WebP => Format::Webp,
        ImageFormat::Tiff => Format::Tiff,
        ImageFormat::Bmp => Format::Bmp,
        ImageFormat::Gif => Format::Gif,
        _ => return None,
    })
}

/// The image crate's decoder of the formats [`decode_generic`] reads.
fn image_format(format: Format) -> ImageFormat {
    match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Bmp => ImageFormat::Bmp,
        _ => ImageFormat::Gif,
    }
}

fn describe_non_image(head: &[u8]) -> String {
    let start: Vec<u8> = head
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    let text = String::from_utf8_lossy(&start);
    if text.starts_with("<!doctype html") || text.starts_with("<html") {
        "not an image: the file is an HTML page".into()
    } else if text.starts_with("<?xml") || text.starts_with("<svg") {
        "not an image this build reads: the file is XML/SVG".into()
    } else if head
        .iter()
        .take(512)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace() || *b >= 0x80)
    {
        "not an image: the file is text".into()
    } else {
        "not an image: unknown file type".into()
    }
}

/// How much resolution a caller needs: decoders may scale down (JPEG DCT
/// scaling) as long as the result still covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The shorter side must stay at least this long.
    Shorter(u32),
    /// The longer side must stay at least 15/16 of this long.
    Longer(u32),
    /// Both: the shorter side at least the first, the longer at least 15/16
    /// of the second.
    Both(u32, u32),
    /// Every pixel.
    Full,
}

impl Need {
    /// The numerator `n` of the JPEG scale `n/8` this asks of a photo whose
    /// stored size is `w` × `h`.
    fn numerator(self, w: u32, h: u32) -> u8 {
        match self {
            Need::Shorter(t) => jpeg::numerator_for(w.min(h), t),
            // Within 15/16 of the target is close enough: a 12 MP photo
            // (4000 x 3000) is read at 1/8 (500 px, upscaled to 512) instead
            // of 1/4 (1000 px): a fifth of the geometric check's time.
            Need::Longer(t) => jpeg::numerator_for(w.max(h), t * 15 / 16),
            Need::Both(s, l) => Need::Shorter(s)
                .numerator(w, h)
                .max(Need::Longer(l).numerator(w, h)),
            Need::Full => 8,
        }
    }
}

/// Pixels as a decoder produced them (stored orientation, maybe scaled).
struct Raw {
    rgb: Vec<u8>,
    w: u32,
    h: u32,
    /// The file's full size, stored orientation.
    full_w: u32,
    full_h: u32,
    orientation: Orientation,
    format: Format,
    /// The numerator `n` of the scale `n/8` it was decoded at (8: every
    /// pixel, as for any format but JPEG).
    scale: u8,
}

impl Raw {
    /// Whether these are the pixels a decode for `need` gives: the same
    /// scale (a decoder that reads every pixel gives them for any need).
    fn serves(&self, need: Need) -> bool {
        self.scale == 8 || self.scale == need.numerator(self.full_w, self.full_h)
    }

    /// Full size as displayed.
    fn display_size(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.full_h, self.full_w)
        } else {
            (self.full_w, self.full_h)
        }
    }
}

fn decode_raw(bytes: &[u8], need: Need, limits: Limits) -> Result<Raw, SkipReason> {
    let format = sniff(bytes)?;
    if format.is_raw() {
        // The preview is a JPEG: decoded like any other (DCT-scaled), with
        // the RAW's orientation, when it gives one, over the preview's own.
        let preview = raw::preview(bytes, format)?;
        let mut raw = decode_raw(preview.jpeg, need, limits).map_err(|r| {
            SkipReason::new(
                r.kind,
                format!("{} preview: {}", format.name().to_uppercase(), r.message),
            )
        })?;
        if let Some(o) = preview
            .orientation
            .and_then(|o| Orientation::from_exif(o as u8))
        {
            raw.orientation = o;
        }
        raw.format = format;
        return Ok(raw);
    }
    if matches!(format, Format::Heic | Format::Avif) {
        let d = heif::decode(bytes, format, limits)?;
        return Ok(Raw {
            rgb: d.rgb,
            w: d.width,
            h: d.height,
            full_w: d.width,
            full_h: d.height,
            orientation: Orientation::NoTransforms,
            format,
            scale: 8,
        });
    }
    if format == Format::Jpeg {
        // --plain-decode: every pixel, with the same decoder.
        let need = if limits.plain { Need::Full } else { need };
        match decode_jpeg_scaled(bytes, need, limits) {
            Err(JpegOutcome::Skip(r)) => return Err(r),
            Ok(raw) => return Ok(raw),
            // What the scaled path does not handle (CMYK): fall back to a
            // full decode with the image crate.
            Err(JpegOutcome::Unsupported) => {}
        }
    }
    decode_generic(bytes, format, need, limits)
}

/// Flip packed RGB pixels (`width` pixels a row) left to right in place:
/// the mirror image the scan's `--mirror` and apply's re-verification embed.
pub fn mirror_rgb(rgb: &mut [u8], width: u32) {
    for line in rgb.chunks_exact_mut(width as usize * 3) {
        let (px, _) = line.as_chunks_mut::<3>();
        px.reverse();
    }
}

/// Decode `bytes` and reduce them to the model's input.
pub fn prepare(bytes: &[u8], geo: Geometry, limits: Limits) -> Result<Prepared, SkipReason> {
    prepare_with(bytes, geo, limits, Extras::default()).map(|d| d.prepared)
}

fn finish_prepare(raw: Raw, geo: Geometry) -> Result<Prepared, SkipReason> {
    let rgb = resize_crop_orient(&raw.rgb, raw.w, raw.h, geo, raw.orientation)
        .map_err(|m| SkipReason::new(SkipKind::Corrupt, m))?;
    let (width, height) = raw.display_size();
    Ok(Prepared {
        width,
        height,
        format: raw.format,
        rgb,
    })
}

/// A small preview of a photo as displayed (EXIF orientation applied):
/// JPEG bytes, for the HTML report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// The longer side of a thumbnail, in pixels (smaller photos keep their size).
pub const THUMB_LONG_SIDE: u32 = 160;
/// JPEG quality of thumbnails.
pub const THUMB_QUALITY: u8 = 70;

impl Thumbnail {
    /// Width and height (little-endian u32) then the JPEG: how a cache stores it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + self.jpeg.len());
        v.extend_from_slice(&self.width.to_le_bytes());
        v.extend_from_slice(&self.height.to_le_bytes());
        v.extend_from_slice(&self.jpeg);
        v
    }

    /// The inverse of [`Thumbnail::to_bytes`]; `None` when the bytes are not one.
    pub fn from_bytes(b: &[u8]) -> Option<Thumbnail> {
        let width = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
        let height = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
        let jpeg = b.get(8..)?.to_vec();
        (width > 0 && height > 0 && jpeg.starts_with(&[0xFF, 0xD8])).then_some(Thumbnail {
            width,
            height,
            jpeg,
        })
    }
}

/// What one decode gives besides the model's input, when asked
/// ([`prepare_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// A thumbnail whose longer side is this (see [`thumbnail`]).
    pub thumbnail: Option<u32>,
    /// The gray image of the geometric check whose longer side is this (see
    /// [`prepare_gray`]), when these pixels are the ones it is made from.
    pub gray: Option<u32>,
}

/// The model's input and the [`Extras`] asked for, from one decode.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub prepared: Prepared,
    pub thumbnail: Option<Thumbnail>,
    /// `None` when the photo was decoded at a smaller scale than the gray
    /// image needs: [`prepare_gray`] decodes it again.
    pub gray: Option<GrayImage>,
}

/// [`prepare`], and what `extras` asks for, made from the same decoded
/// pixels: each is the same bytes as the function that makes it alone
/// ([`thumbnail`], [`prepare_gray`]) gives.
pub fn prepare_with(
    bytes: &[u8],
    geo: Geometry,
    limits: Limits,
    extras: Extras,
) -> Result<Decoded, SkipReason> {
    let raw = decode_raw(bytes, Need::Shorter(geo.shorter_side), limits)?;
    let thumbnail = match extras.thumbnail {
        Some(long_side) => Some(make_thumbnail(&raw, long_side)?),
        None => None,
    };
    let gray = extras
        .gray
        .filter(|&long_side| raw.serves(gray_need(geo, long_side)))
        .and_then(|long_side| make_gray(&raw, long_side).ok());
    Ok(Decoded {
        prepared: finish_prepare(raw, geo)?,
        thumbnail,
        gray,
    })
}

/// A thumbnail alone. Decoded at the scale [`prepare`] uses for a model
/// whose resize target is `shorter_side`, so that it is the same bytes as
/// the one [`prepare_with`] made during a scan.
pub fn thumbnail(
    bytes: &[u8],
    shorter_side: u32,
    limits: Limits,
    long_side: u32,
) -> Result<Thumbnail, SkipReason> {
    make_thumbnail(
        &decode_raw(bytes, Need::Shorter(shorter_side), limits)?,
        long_side,
    )
}

fn make_thumbnail(raw: &Raw, long_side: u32) -> Result<Thumbnail, SkipReason> {
    let bad = |e: String| SkipReason::new(SkipKind::Corrupt, e);
    let scale = (long_side as f64 / raw.w.max(raw.h) as f64).min(1.0);
    let tw = ((raw.w as f64 * scale).round() as u32).max(1);
    let th = ((raw.h as f64 * scale).round() as u32).max(1);
    let small = if (tw, th) == (raw.w, raw.h) {
        raw.rgb[..raw.w as usize * raw.h as usize * 3].to_vec()
    } else {
        bilinear(&raw.rgb, raw.w, raw.h, fir::PixelType::U8x3, (tw, th), None).map_err(bad)?
    };
    let mut img = DynamicImage::ImageRgb8(
        RgbImage::from_raw(tw, th, small).ok_or_else(|| bad("thumbnail buffer".into()))?,
    );
    img.apply_orientation(raw.orientation);
    let rgb = img.into_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, THUMB_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| bad(format!("thumbnail: {e}")))?;
    Ok(Thumbnail {
        width: rgb.width(),
        height: rgb.height(),
        jpeg,
    })
}

/// A gray image as displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// What the gray image of a model of input `geo` needs of a decode: the
/// model's own need as well as the long side, so that the embed stage's
/// decode serves it whenever it is large enough.
fn gray_need(geo: Geometry, long_side: u32) -> Need {
    Need::Both(geo.shorter_side, long_side)
}

/// Decode `bytes` to gray (ITU-R 601 luma), resized (up or down) so that
/// the longer side is `long_side`, EXIF orientation applied: the input of
/// the geometric check. Decoded at the scale that covers both `long_side`
/// and the input of the model `geo` ([`Need::Both`]), so that a scan's
/// embed stage makes the same image from its own decode ([`prepare_with`]).
pub fn prepare_gray(
    bytes: &[u8],
    geo: Geometry,
    long_side: u32,
    limits: Limits,
) -> Result<GrayImage, SkipReason> {
    make_gray(
        &decode_raw(bytes, gray_need(geo, long_side), limits)?,
        long_side,
    )
}

fn make_gray(raw: &Raw, long_side: u32) -> Result<GrayImage, SkipReason> {
    let gray: Vec<u8> = raw
        .rgb
        .chunks_exact(3)
        .map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8)
        .collect();
    let scale = long_side as f64 / raw.w.max(raw.h) as f64;
    let tw = ((raw.w as f64 * scale).round() as u32).max(1);
    let th = ((raw.h as f64 * scale).round() as u32).max(1);
    let bad = |e: String| SkipReason::new(SkipKind::Corrupt, e);
    let small = bilinear(&gray, raw.w, raw.h, fir::PixelType::U8, (tw, th), None).map_err(bad)?;
    let mut img = DynamicImage::ImageLuma8(
        image::GrayImage::from_raw(tw, th, small).ok_or_else(|| bad("resize".into()))?,
    );
    img.apply_orientation(raw.orientation);
    let g = img.into_luma8();
    Ok(GrayImage {
        width: g.width(),
        height: g.height(),
        pixels: g.into_raw(),
    })
}

/// A hash of the fully decoded pixels as displayed (size included): two
/// files with the same hash show the same image.
pub fn pixel_hash(bytes: &[u8], limits: Limits) -> Result<String, SkipReason> {
    let raw = decode_raw(bytes, Need::Full, limits)?;
    let mut img = DynamicImage::ImageRgb8(
        RgbImage::from_raw(raw.w, raw.h, raw.rgb)
            .ok_or_else(|| SkipReason::new(SkipKind::Corrupt, "short pixel data"))?,
    );
    img.apply_orientation(raw.orientation);
    let rgb = img.into_rgb8();
    let mut h = blake3::Hasher::new();
    h.update(&rgb.width().to_le_bytes());
    h.update(&rgb.height().to_le_bytes());
    h.update(rgb.as_raw());
    Ok(h.finalize().to_hex().to_string())
}

/// Whether two photos of the same size are the same pixels, compared
/// without hashing either whole when both are JPEGs in the same orientation
/// (see [`jpeg::same_pixels`]). `Ok(None)` when this cannot tell
/// cheaply (another format, another orientation): compare [`pixel_hash`]es.
pub fn same_pixels(a: &[u8], b: &[u8], limits: Limits) -> Result<Option<bool>, SkipReason> {
    if limits.plain || sniff(a)? != Format::Jpeg || sniff(b)? != Format::Jpeg {
        return Ok(None);
    }
    jpeg::same_pixels(a, b, |head, exif| {
        check_size(head.width as u64, head.height as u64, limits)?;
        // Two decoders at once, each with a band of rows, and the
        // coefficients of either if progressive: half the budget each.
        let band = head.width as u64 * 3 * 16;
        check_memory(head.coefficient_bytes + band, limits.max_alloc / 2, "JPEG")?;
        Ok(exif
            .and_then(Orientation::from_exif_chunk)
            .unwrap_or(Orientation::NoTransforms))
    })
    .map_err(|f| match f {
        jpeg::Failure::Refused(r) => r,
        jpeg::Failure::Corrupt(m) | jpeg::Failure::Unsupported(m) => {
            SkipReason::new(SkipKind::Corrupt, format!("damaged JPEG: {m}"))
        }
    })
}

enum JpegOutcome {
    Skip(SkipReason),
    Unsupported,
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn decode_jpeg_scaled(bytes: &[u8], need: Need, limits: Limits) -> Result<Raw, JpegOutcome> {
    let decoded = jpeg::decode(bytes, |head| {
        let (w, h) = (head.width, head.height);
        check_size(w as u64, h as u64, limits)?;
        let n = need.numerator(w, h);
        // The output at that scale, held whole (twice for a full decode,
        // which may be turned upright), and the coefficients of a
        // progressive JPEG, which libjpeg keeps at any scale.
        let out = (w as u64 * n as u64).div_ceil(8) * (h as u64 * n as u64).div_ceil(8) * 3;
        let copies = if need == Need::Full { 2 } else { 1 };
        check_memory(
            head.coefficient_bytes + out * copies,
            limits.max_alloc,
            "JPEG",
        )?;
        Ok(n)
    })
    .map_err(|f| match f {
        jpeg::Failure::Refused(r) => JpegOutcome::Skip(r),
        jpeg::Failure::Unsupported(_) => JpegOutcome::Unsupported,
        jpeg::Failure::Corrupt(m) => JpegOutcome::Skip(SkipReason::new(
            SkipKind::Corrupt,
            format!("damaged JPEG: {m}"),
        )),
    })?;
    let orientation = decoded
        .exif
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Raw {
        rgb: decoded.rgb,
        w: decoded.width,
        h: decoded.height,
        full_w: decoded.full_width,
        full_h: decoded.full_height,
        orientation,
        format: Format::Jpeg,
        // What the header callback above chose from the same size.
        scale: need.numerator(decoded.full_width, decoded.full_height),
    })
}

/// Memory a whole decode with the image crate takes: its buffer in the
/// file's own colour type (`native` bytes), then the conversion to 8-bit
/// RGB ([`flatten_to_rgb`]), and for a full decode (`full`) a copy turned
/// upright.
fn decode_estimate(native: u64, color: image::ColorType, w: u32, h: u32, full: bool) -> u64 {
    let px = w as u64 * h as u64;
    let convert = match color {
        image::ColorType::Rgb8 => 0,
        // Composited over white in place.
        image::ColorType::Rgba8 => 0,
        c if c.has_alpha() => 4 * px,
        _ => 3 * px,
    };
    native + convert + if full { 3 * px } else { 0 }
}

fn decode_generic(
    bytes: &[u8],
    format: Format,
    need: Need,
    limits: Limits,
) -> Result<Raw, SkipReason> {
    let bad = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => {
            SkipReason::new(SkipKind::TooLarge, format!("over the decoding limits: {l}"))
        }
        image::ImageError::Unsupported(u) => {
            SkipReason::new(SkipKind::UnsupportedFormat, u.to_string())
        }
        other => SkipReason::new(
            SkipKind::Corrupt,
            format!("damaged {}: {other}", format.name().to_uppercase()),
        ),
    };
    // The BMP decoder refuses sizes over its own limit as a format error:
    // read from the header here, they are too large, not damage.
    if let Some((w, h)) = (format == Format::Bmp).then(|| bmp_size(bytes)).flatten() {
        check_size(w, h, limits)?;
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut lim = image::Limits::default();
    lim.max_alloc = Some(limits.max_alloc);
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (w, h) = decoder.dimensions();
    check_size(w as u64, h as u64, limits)?;
    let estimate = decode_estimate(
        decoder.total_bytes(),
        decoder.color_type(),
        w,
        h,
        need == Need::Full,
    );
    check_memory(estimate, limits.max_alloc, &format.name().to_uppercase())?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    let rgb = flatten_to_rgb(img);
    Ok(Raw {
        rgb: rgb.into_raw(),
        w,
        h,
        full_w: w,
        full_h: h,
        orientation,
        format,
        scale: 8,
    })
}

/// Width and height from a BMP's info header (negative heights are
/// top-down bitmaps).
fn bmp_size(bytes: &[u8]) -> Option<(u64, u64)> {
    let header = u32::from_le_bytes(bytes.get(14..18)?.try_into().ok()?);
    if header == 12 {
        let w = u16::from_le_bytes(bytes.get(18..20)?.try_into().ok()?);
        let h = u16::from_le_bytes(bytes.get(20..22)?.try_into().ok()?);
        return Some((w as u64, h as u64));
    }
    let w = i32::from_le_bytes(bytes.get(18..22)?.try_into().ok()?);
    let h = i32::from_le_bytes(bytes.get(22..26)?.try_into().ok()?);
    Some((w.unsigned_abs() as u64, h.unsigned_abs() as u64))
}

/// RGB with any transparency composited over white.
fn flatten_to_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    // In place: pixel i's 3 bytes go to 3i, which never passes 4i, the
    // start of pixels not yet read.
    let mut buf = rgba.into_raw();
    let n = buf.len() / 4;
    for i in 0..n {
        let a = buf[4 * i + 3] as u32;
        for c in 0..3 {
            let v = buf[4 * i + c] as u32;
            buf[3 * i + c] = ((v * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    // Not shrunk: that would copy, with both buffers alive.
    buf.truncate(3 * n);
    RgbImage::from_raw(w, h, buf).expect("buffer size matches")
}

/// Resize so that the shorter side (as displayed) is `geo.shorter_side`, crop
/// the centre `geo.width` x `geo.height` (as displayed), and return it in
/// display orientation. The source `rgb` is `w` x `h` as stored in the file.
fn resize_crop_orient(
    rgb: &[u8],
    w: u32,
    h: u32,
    geo: Geometry,
    orientation: Orientation,
) -> Result<Vec<u8>, String> {
    // The crop in stored coordinates: a display crop of W x H is H x W in a
    // file stored sideways.
    let (cw, ch) = if swaps_axes(orientation) {
        (geo.height, geo.width)
    } else {
        (geo.width, geo.height)
    };
    let scale = geo.shorter_side as f64 / w.min(h) as f64;
    let (rw, rh) = (w as f64 * scale, h as f64 * scale);
    let (crop_w, crop_h) = ((cw as f64).min(rw), (ch as f64).min(rh));
    let left = (rw - crop_w) / 2.0 / scale;
    let top = (rh - crop_h) / 2.0 / scale;
    let crop = (left, top, crop_w / scale, crop_h / scale);
    let buf = bilinear(rgb, w, h, fir::PixelType::U8x3, (cw, ch), Some(crop))?;
    if orientation == Orientation::NoTransforms {
        return Ok(buf);
    }
    let mut img = DynamicImage::ImageRgb8(RgbImage::from_raw(cw, ch, buf).ok_or("resize buffer")?);
    img.apply_orientation(orientation);
    Ok(img.into_rgb8().into_raw())
}

/// Antialiased bilinear resize (SIMD) of `w` x `h` pixels to `to`, of the
/// `crop` (left, top, width, height in source pixels) when given.
fn bilinear(
    pixels: &[u8],
    w: u32,
    h: u32,
    kind: fir::PixelType,
    to: (u32, u32),
    crop: Option<(f64, f64, f64, f64)>,
) -> Result<Vec<u8>, String> {
    let src = fir::images::ImageRef::new(w, h, pixels, kind).map_err(|e| e.to_string())?;
    let mut dst = fir::images::Image::new(to.0, to.1, kind);
    let mut opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    if let Some((left, top, cw, ch)) = crop {
        opts = opts.crop(left, top, cw, ch);
    }
    fir::Resizer::new()
        .resize(&src, &mut dst, &opts)
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    const GEO: Geometry = Geometry {
        shorter_side: 32,
        width: 28,
        height: 28,
    };

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        })
    }

    fn encode(img: &RgbImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    #[test]
    fn format_comes_from_bytes_not_name() {
        let png = encode(&gradient(40, 30), ImageFormat::Png);
        assert_eq!(sniff(&png).unwrap(), Format::Png);
        let html = b"<!DOCTYPE html><html><body>404</body></html>";
        let r = sniff(html).unwrap_err();
        assert_eq!(r.kind, SkipKind::NotAnImage);
        assert!(r.message.contains("HTML"));
        assert_eq!(sniff(b"").unwrap_err().message, "not an image: empty file");
        assert!(sniff(b"shopping list\nmilk\n")
            .unwrap_err()
            .message
            .contains("text"));
    }

    #[test]
    fn every_supported_format_decodes_to_the_input_size() {
        let img = gradient(90, 60);
        for fmt in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Tiff,
            ImageFormat::Bmp,
            ImageFormat::Gif,
        ] {
            let bytes = encode(&img, fmt);
            let p = prepare(&bytes, GEO, Limits::default())
                .unwrap_or_else(|e| panic!("{fmt:?}: {e:?}"));
            assert_eq!((p.width, p.height), (90, 60), "{fmt:?}");
            assert_eq!(p.rgb.len(), 28 * 28 * 3, "{fmt:?}");
        }
    }

    #[test]
    fn jpeg_is_decoded_at_reduced_scale_with_the_same_look() {
        // A large JPEG: the scaled decode must still give nearly the pixels
        // a full decode + resize gives.
        let img = gradient(1600, 1200);
        let bytes = encode(&img, ImageFormat::Jpeg);
        let fast = prepare(&bytes, GEO, Limits::default()).unwrap();
        let full = finish_prepare(
            decode_generic(&bytes, Format::Jpeg, Need::Full, Limits::default()).unwrap(),
            GEO,
        )
        .unwrap();
        let max_diff = fast
            .rgb
            .iter()
            .zip(&full.rgb)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(max_diff <= 12, "max diff {max_diff}");
    }

    #[test]
    fn truncated_and_bomb_files_are_refused() {
        let bytes = encode(&gradient(300, 200), ImageFormat::Jpeg);
        let r = prepare(&bytes[..bytes.len() / 3], GEO, Limits::default()).unwrap_err();
        assert_eq!(r.kind, SkipKind::Corrupt, "{r:?}");
        let png = encode(&gradient(300, 200), ImageFormat::Png);
        assert_eq!(
            prepare(&png[..png.len() / 2], GEO, Limits::default())
                .unwrap_err()
                .kind,
            SkipKind::Corrupt
        );
        // A PNG header that claims 100000 x 100000 pixels (the CRC no longer
        // matches: the decoder may call it corrupt or too large, both refuse).
        let mut bomb = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bomb)
            .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
            .unwrap();
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let r = prepare(&bomb, GEO, Limits::default()).unwrap_err();
        assert!(
            matches!(r.kind, SkipKind::TooLarge | SkipKind::Corrupt),
            "{r:?}"
        );
    }

    #[test]
    fn gray_and_pixel_hash() {
        let img = gradient(1000, 600);
        let png = encode(&img, ImageFormat::Png);
        let bmp = encode(&img, ImageFormat::Bmp);
        let g = prepare_gray(&png, GEO, 512, Limits::default()).unwrap();
        assert_eq!((g.width, g.height, g.pixels.len()), (512, 307, 512 * 307));
        // Same pixels in two formats: same hash; a one-pixel change: another.
        let (a, b) = (
            pixel_hash(&png, Limits::default()).unwrap(),
            pixel_hash(&bmp, Limits::default()).unwrap(),
        );
        assert_eq!(a, b);
        let mut other = img.clone();
        other.put_pixel(3, 3, Rgb([0, 0, 0]));
        assert_ne!(
            pixel_hash(&encode(&other, ImageFormat::Png), Limits::default()).unwrap(),
            a
        );
        // A small JPEG is upscaled to the long side.
        let small = prepare_gray(
            &encode(&gradient(200, 100), ImageFormat::Jpeg),
            GEO,
            512,
            Limits::default(),
        )
        .unwrap();
        assert_eq!((small.width, small.height), (512, 256));
    }

    #[test]
    fn jpegs_are_compared_pixel_for_pixel_band_by_band() {
        let jpeg = |img: &RgbImage, q: u8| {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
                .encode_image(img)
                .unwrap();
            out
        };
        // 250 x 170: the last band of 16 rows is partial.
        let img = gradient(250, 170);
        let a = jpeg(&img, 90);
        // Same pixels, other bytes: an EXIF block saying "upright".
        let mut rewrapped = a.clone();
        insert_exif_orientation(&mut rewrapped, 1);
        assert_ne!(a, rewrapped);
        // One pixel changed in the last row only.
        let mut last = img.clone();
        last.put_pixel(249, 169, Rgb([255, 0, 255]));
        let last = jpeg(&last, 90);
        let mut rotated = a.clone();
        insert_exif_orientation(&mut rotated, 6);
        let png = encode(&img, ImageFormat::Png);
        let l = Limits::default();
        let hash = |b: &[u8]| pixel_hash(b, l).unwrap();
        for (x, y, want) in [
            (&a, &rewrapped, Some(true)),
            (&a, &a, Some(true)),
            (&a, &jpeg(&img, 80), Some(false)),
            (&a, &last, Some(false)),
            (&a, &jpeg(&gradient(250, 171), 90), None),
            (&a, &rotated, None),
            (&a, &png, None),
        ] {
            let got = same_pixels(x, y, l).unwrap();
            assert_eq!(got, want);
            // Whenever it answers, it agrees with the hashes of whole decodes.
            if let Some(same) = got {
                assert_eq!(same, hash(x) == hash(y));
            }
        }
        // The fast path is off with --plain-decode; damage is an error.
        let plain = Limits { plain: true, ..l };
        assert_eq!(same_pixels(&a, &rewrapped, plain).unwrap(), None);
        assert!(same_pixels(&a, &last[..last.len() / 2], l).is_err());
    }

    #[test]
    fn exif_orientation_is_applied() {
        // Pixels stored rotated 90 degrees counter-clockwise, with the EXIF tag
        // saying "rotate 90 clockwise to display": must look like the original.
        let upright = gradient(120, 80);
        let stored = image::imageops::rotate270(&upright);
        let plain = prepare(&encode(&upright, ImageFormat::Jpeg), GEO, Limits::default()).unwrap();
        let mut jpeg = encode(&stored, ImageFormat::Jpeg);
        insert_exif_orientation(&mut jpeg, 6);
        let rotated = prepare(&jpeg, GEO, Limits::default()).unwrap();
        assert_eq!((rotated.width, rotated.height), (120, 80));
        let diff: i64 = plain
            .rgb
            .iter()
            .zip(&rotated.rgb)
            .map(|(a, b)| (*a as i64 - *b as i64).abs())
            .sum();
        let mean = diff as f64 / plain.rgb.len() as f64;
        assert!(mean < 4.0, "mean abs diff {mean}");
    }

    #[test]
    fn the_gray_image_comes_from_the_embed_decode_when_its_scale_serves() {
        const MODEL: Geometry = Geometry {
            shorter_side: 224,
            width: 224,
            height: 224,
        };
        let l = Limits::default();
        let extras = Extras {
            thumbnail: None,
            gray: Some(512),
        };
        // 2000 x 1500, stored sideways: the model's 1/4 (375 px shorter
        // side) leaves 500 px on the longer side, within 15/16 of 512, the
        // scale the gray image asks for too: the same bytes from one decode.
        let mut sideways = encode(
            &image::imageops::rotate90(&gradient(2000, 1500)),
            ImageFormat::Jpeg,
        );
        insert_exif_orientation(&mut sideways, 6);
        let d = prepare_with(&sideways, MODEL, l, extras).unwrap();
        let alone = prepare_gray(&sideways, MODEL, 512, l).unwrap();
        assert_eq!((alone.width, alone.height), (512, 384));
        assert_eq!(d.gray.as_ref(), Some(&alone));
        // 1800 x 1200: the model's 1/4 gives 450 px, too few; the gray image
        // is decoded again at 1/2.
        let small = encode(&gradient(1800, 1200), ImageFormat::Jpeg);
        assert!(prepare_with(&small, MODEL, l, extras)
            .unwrap()
            .gray
            .is_none());
        let again = prepare_gray(&small, MODEL, 512, l).unwrap();
        assert_eq!((again.width, again.height), (512, 341));
        // Formats read whole serve any need.
        let png = encode(&gradient(900, 300), ImageFormat::Png);
        let d = prepare_with(&png, MODEL, l, extras).unwrap();
        assert_eq!(d.gray, Some(prepare_gray(&png, MODEL, 512, l).unwrap()));
        // A model that needs more than the gray image: its scale is used.
        let wide = Geometry {
            shorter_side: 700,
            ..MODEL
        };
        let d = prepare_with(&small, wide, l, extras).unwrap();
        assert_eq!(d.gray, Some(prepare_gray(&small, wide, 512, l).unwrap()));
    }

    #[test]
    fn thumbnail_shows_the_whole_frame_upright_from_the_same_decode() {
        // Stored sideways with EXIF "rotate 90 clockwise": the thumbnail is
        // upright, whole (not the model's square crop) and the longer side fits.
        let upright = gradient(1200, 400);
        let mut jpeg = encode(&image::imageops::rotate270(&upright), ImageFormat::Jpeg);
        insert_exif_orientation(&mut jpeg, 6);
        let geo = Geometry {
            shorter_side: 256,
            ..GEO
        };
        let extras = Extras {
            thumbnail: Some(256),
            gray: None,
        };
        let d = prepare_with(&jpeg, geo, Limits::default(), extras).unwrap();
        let (p, t) = (d.prepared, d.thumbnail.unwrap());
        assert!(d.gray.is_none());
        assert_eq!((p.width, p.height), (1200, 400));
        assert_eq!((t.width, t.height), (256, 85));
        let img = image::load_from_memory(&t.jpeg).unwrap().into_rgb8();
        assert_eq!(img.dimensions(), (256, 85));
        // Left edge dark red, right edge bright red: upright and whole.
        assert!(img.get_pixel(2, 40)[0] < 30, "{:?}", img.get_pixel(2, 40));
        assert!(
            img.get_pixel(253, 40)[0] > 225,
            "{:?}",
            img.get_pixel(253, 40)
        );
        // The thumbnail alone is the same bytes; it survives a cache round trip.
        assert_eq!(thumbnail(&jpeg, 256, Limits::default(), 256).unwrap(), t);
        assert_eq!(Thumbnail::from_bytes(&t.to_bytes()), Some(t));
        assert_eq!(Thumbnail::from_bytes(b"short"), None);
        // A photo smaller than the thumbnail keeps its size.
        let small = thumbnail(
            &encode(&gradient(90, 60), ImageFormat::Png),
            GEO.shorter_side,
            Limits::default(),
            256,
        )
        .unwrap();
        assert_eq!((small.width, small.height), (90, 60));
    }

    #[test]
    fn a_jpeg_start_marker_alone_is_a_truncated_jpeg() {
        for bytes in [&b"\xFF\xD8"[..], b"\xFF\xD8\x00\x10JFIF"] {
            let r = prepare(bytes, GEO, Limits::default()).unwrap_err();
            assert_eq!(r.kind, SkipKind::Corrupt, "{r:?}");
            assert!(r.message.contains("JPEG"), "{r:?}");
        }
    }

    #[test]
    fn oversized_bmp_header_is_too_large() {
        let mut bmp = encode(&gradient(4, 4), ImageFormat::Bmp);
        bmp[18..22].copy_from_slice(&100_000i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&100_000i32.to_le_bytes());
        let r = prepare(&bmp, GEO, Limits::default()).unwrap_err();
        assert_eq!(r.kind, SkipKind::TooLarge, "{r:?}");
    }

    #[test]
    fn decode_memory_is_estimated_from_the_header_and_bounded() {
        // 1000 x 1000 RGBA: 4 MB decoded, composited to RGB in place.
        let rgba = image::RgbaImage::from_fn(1000, 1000, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, (x / 4) as u8])
        });
        let mut png = Cursor::new(Vec::new());
        rgba.write_to(&mut png, ImageFormat::Png).unwrap();
        let png = png.into_inner();
        let tight = Limits {
            max_alloc: 3_000_000,
            ..Limits::default()
        };
        let r = prepare(&png, GEO, tight).unwrap_err();
        assert_eq!(r.kind, SkipKind::TooLarge, "{r:?}");
        assert!(
            r.message.contains("needs about 4 MB, more than the 3 MB"),
            "{r:?}"
        );
        let enough = Limits {
            max_alloc: 4_100_000,
            ..Limits::default()
        };
        assert_eq!(prepare(&png, GEO, enough).unwrap().width, 1000);
        // A full decode (pixel hash) also holds an upright copy.
        assert_eq!(
            pixel_hash(&png, enough).unwrap_err().kind,
            SkipKind::TooLarge
        );
        // A baseline JPEG decoded at 1/8 needs little: 4 MB pixels, 5% of that.
        let jpeg = encode(&gradient(1000, 1000), ImageFormat::Jpeg);
        let small = Limits {
            max_alloc: 200_000,
            ..Limits::default()
        };
        assert_eq!(prepare(&jpeg, GEO, small).unwrap().width, 1000);
        let r = pixel_hash(&jpeg, small).unwrap_err();
        assert_eq!(r.kind, SkipKind::TooLarge, "{r:?}");
    }

    #[test]
    fn transparency_is_composited_over_white_in_place() {
        let img = image::RgbaImage::from_fn(3, 2, |x, y| {
            image::Rgba([200, 100, 0, [255, 0, 128][x as usize] / (y as u8 + 1)])
        });
        let rgb = flatten_to_rgb(DynamicImage::ImageRgba8(img));
        assert_eq!(
            rgb.into_raw(),
            vec![
                200, 100, 0, 255, 255, 255, 227, 177, 127, // row 0
                228, 178, 128, 255, 255, 255, 241, 216, 191, // row 1: half the alpha
            ]
        );
    }

    /// Insert an APP1 EXIF segment with one Orientation entry after SOI.
    pub(crate) fn insert_exif_orientation(jpeg: &mut Vec<u8>, value: u16) {
        let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut seg = vec![0xFF, 0xE1];
        let len = (2 + 6 + tiff.len()) as u16;
        seg.extend_from_slice(&len.to_be_bytes());
        seg.extend_from_slice(b"Exif\0\0");
        seg.extend_from_slice(&tiff);
        jpeg.splice(2..2, seg);
    }
}
