//! `neardup explain A B`: every number behind the decision for two photos.

use crate::decode::{self, Geometry, Limits};
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::geometry;
use crate::index::cosine_distance;
use crate::model::ModelSource;
use crate::verify::decide::{self, Evidence, Label, Rules};
use serde::Serialize;
use std::path::Path;

/// One photo as the scan sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoFacts {
    pub path: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub format: String,
}

/// Everything measured about a pair, and the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub a: PhotoFacts,
    pub b: PhotoFacts,
    pub distance: f64,
    pub same_bytes: bool,
    /// `None` when not checked (too far apart or of different sizes).
    pub same_pixels: Option<bool>,
    pub inliers: u32,
    /// A RAW file and the camera JPEG of the same shot (same name, same folder).
    pub raw_jpeg_pair: bool,
    pub rules: Rules,
    /// The label, or `None` when the pair is not a near-duplicate in this mode.
    pub label: Option<Label>,
    /// The reason in words.
    pub why: String,
}

fn load(
    path: &Path,
    geo: Geometry,
    limits: Limits,
    embedder: &Embedder,
) -> Result<(PhotoFacts, Vec<u8>, Vec<f32>)> {
    let bytes = crate::open::read_capped(path, decode::MAX_FILE_BYTES)
        .map_err(|e| Error::Param(format!("cannot read {}: {e}", path.display())))?;
    let p = decode::prepare(&bytes, geo, limits)
        .map_err(|r| Error::Param(format!("{}: {}", path.display(), r.message)))?;
    let v = embedder.embed(&p.rgb)?;
    let facts = PhotoFacts {
        path: path.to_string_lossy().into_owned(),
        bytes: bytes.len() as u64,
        width: p.width,
        height: p.height,
        format: p.format.to_string(),
    };
    Ok((facts, bytes, v))
}

/// Measure two photos as a scan would and say whether (and why) they are
/// near-duplicates.
pub fn explain(
    a: &Path,
    b: &Path,
    model: &ModelSource,
    rules: &Rules,
    limits: Limits,
) -> Result<Explanation> {
    let embedder = Embedder::load(model)?;
    let geo = model.sidecar.geometry();
    let (fa, ba, va) = load(a, geo, limits, &embedder)?;
    let (fb, bb, vb) = load(b, geo, limits, &embedder)?;
    let distance = cosine_distance(&va, &vb);
    let same_bytes = ba == bb;
    let same_pixels = (distance <= rules.same_pixels_radius
        && (fa.width, fa.height) == (fb.width, fb.height))
        .then(|| {
            match (
                decode::pixel_hash(&ba, limits),
                decode::pixel_hash(&bb, limits),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => false,
            }
        });
    let params = geometry::OrbParams {
        n_features: rules.geo_features,
        ..Default::default()
    };
    let feats = |bytes: &[u8]| {
        decode::prepare_gray(bytes, rules.geo_long_side, limits)
            .map(|g| {
                geometry::orb(
                    &geometry::Gray {
                        width: g.width,
                        height: g.height,
                        pixels: &g.pixels,
                    },
                    &params,
                )
            })
            .unwrap_or_default()
    };
    let inliers = geometry::homography_inliers(
        &feats(&ba),
        &feats(&bb),
        rules.ratio,
        rules.reproj_px,
        rules.ransac_iters,
        1,
    ) as u32;
    let geo_applies = distance > rules.threshold
        && distance < rules.geo_radius
        && rules.mode == decide::Mode::Similar;
    let raw_jpeg_pair = decide::is_raw_jpeg_pair(a, &fa.format, b, &fb.format);
    let ev = Evidence {
        same_bytes,
        same_pixels: same_pixels.unwrap_or(false),
        inliers: geo_applies.then_some(inliers),
        raw_jpeg: raw_jpeg_pair,
    };
    let label = decide::judge(distance, ev, rules);
    let t = rules.threshold;
    let why = match label {
        Some(Label::Identical) => "the two files have the same bytes".to_string(),
        Some(Label::SamePixels) => "the two files decode to the same pixels".to_string(),
        Some(Label::RawJpeg) => format!(
            "a RAW file and the camera JPEG of the same shot (same name, same folder; distance {distance:.4})"
        ),
        Some(Label::Edited) => format!("the distance {distance:.4} is at or under the threshold {t}"),
        Some(Label::Similar) => format!(
            "the distance {distance:.4} is over the threshold {t}, but the geometric check found {inliers} inliers (>= {})",
            rules.min_inliers
        ),
        None if distance <= t => format!(
            "the distance {distance:.4} is under the threshold, but mode {:?} only groups copies",
            rules.mode
        ),
        None if rules.mode != decide::Mode::Similar => {
            format!("the distance {distance:.4} is over the threshold {t} (mode {:?} runs no geometric check)", rules.mode)
        }
        None if distance >= rules.geo_radius => format!(
            "the distance {distance:.4} is over the threshold {t} and too far ({} or more) for the geometric check",
            rules.geo_radius
        ),
        None => format!(
            "the distance {distance:.4} is over the threshold {t} and the geometric check found only {inliers} inliers (< {})",
            rules.min_inliers
        ),
    };
    Ok(Explanation {
        a: fa,
        b: fb,
        distance: crate::report::round6(distance as f64),
        same_bytes,
        same_pixels,
        inliers,
        raw_jpeg_pair,
        rules: *rules,
        label,
        why,
    })
}
