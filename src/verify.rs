//! The verify stage: scored pairs → judged pairs. What else a pair needs
//! beyond its distance: same bytes, same pixels ([`pixels`]), a mirrored
//! copy ([`mirror`]), the geometric check ([`geometric`]); then the rules of
//! [`decide`] give each pair its label. Every photo read again goes through
//! [`crate::reread`], which checks that its bytes are still the ones embedded.

pub mod decide;
mod geometric;
pub(crate) mod keypoints;
mod mirror;
pub(crate) mod pixels;

pub use decide::{Evidence, Judged, Label, Mode, Rules};
pub use keypoints::{Keypoints, KEYPOINT_BUDGET};

use crate::cache::Cache;
use crate::decode::{Geometry, Limits};
use crate::embed::{Embed, Photo};
use crate::error::Result;
use crate::index::{Embeddings, ScoredPair};
use crate::layout::Layouts;
use crate::progress::{check_cancel, Progress};
use crate::reread::Reread;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

/// What the verify stage reads: the embed stage's photos and vectors, the
/// rules, and where it may look things up.
pub struct Context<'a> {
    pub photos: &'a [Photo],
    pub vectors: &'a Embeddings,
    pub rules: &'a Rules,
    pub limits: Limits,
    pub cache: &'a Cache,
    /// Where things are in each photo (the embed stage's [`Layouts`]); a
    /// layout missing from them and from the cache (a damaged row) is
    /// computed again with `embedder` from the photo decoded to `geometry`.
    pub layouts: &'a Layouts,
    /// Keypoints the embed stage made from its own decode, taken before any
    /// photo is decoded again for them.
    pub keypoints: Option<&'a Keypoints>,
    pub embedder: &'a dyn Embed,
    pub geometry: Geometry,
    pub progress: &'a dyn Progress,
    pub cancel: &'a AtomicBool,
}

/// Mirrored copies count: every photo is also embedded flipped left to
/// right, and pairs within `threshold` of a mirror image are added.
pub struct Mirror<'a> {
    pub embedder: &'a dyn Embed,
    pub geometry: Geometry,
    pub threshold: f32,
    pub seed: u64,
    pub centre: Option<&'a [f32]>,
}

/// The verify stage's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The pairs that are edges in this mode, sorted by `(a, b)`, each with
    /// everything later stages need.
    pub judged: Vec<Judged>,
    /// Pairs that went through the geometric check.
    pub geometric_checks: u64,
    /// Pairs whose frame distance settled them without the geometric check.
    pub frame_settled: u64,
    /// Pairs that would be edges by their distance or inliers, but that are
    /// not the same picture (frame distance, or the geometric check's model).
    pub not_same_picture: u64,
}

impl Verified {
    /// The judged pairs as the group stage's edges.
    pub fn edges(&self) -> Vec<ScoredPair> {
        self.judged.iter().map(|j| j.pair).collect()
    }

    /// The judged pair of photos `a < b`, if it is an edge.
    pub fn get(&self, a: u32, b: u32) -> Option<&Judged> {
        self.judged
            .binary_search_by_key(&(a, b), |j| (j.pair.a, j.pair.b))
            .ok()
            .map(|k| &self.judged[k])
    }
}

/// A pair with everything measured about it, before the rules of
/// [`decide`] judge it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// The pair and its exact distance (the smaller of the direct and the
    /// mirrored one with [`Mirror`]).
    pub pair: ScoredPair,
    pub evidence: Evidence,
    /// Found only through a mirror image (or closer through one).
    pub mirrored: bool,
}

/// The evidence of every pair, sorted by `(a, b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidenced {
    pub pairs: Vec<Measured>,
    /// Pairs that went through the geometric check.
    pub geometric_checks: u64,
    /// Pairs whose frame distance alone showed they are not the same
    /// picture, without the geometric check.
    pub frame_settled: u64,
}

/// Verify the pairs the index found (sorted by `(a, b)`, as
/// [`crate::index::search`] returns them): [`measure`] them, then keep
/// those the rules make edges.
pub fn verify(cx: &Context, near: Vec<ScoredPair>, mirror: Option<Mirror>) -> Result<Verified> {
    let rules = cx.rules;
    let measured = measure(cx, near, mirror)?;
    let mut not_same_picture = 0;
    let mut judged = Vec::new();
    for m in &measured.pairs {
        let Some(label) = decide::tier(m.pair.distance, m.evidence, rules) else {
            continue;
        };
        if !decide::same_picture(label, m.evidence, rules) {
            not_same_picture += 1;
            continue;
        }
        judged.push(Judged {
            pair: m.pair,
            label,
            inliers: m.evidence.inliers,
            coverage: m.evidence.coverage,
            regions: m.evidence.regions,
            frame: m.evidence.frame,
            mirrored: m.mirrored,
        });
    }
    Ok(Verified {
        judged,
        geometric_checks: measured.geometric_checks,
        frame_settled: measured.frame_settled,
        not_same_picture,
    })
}

/// Everything the verify stage measures about each pair: same bytes, same
/// pixels, a mirror image, the geometric check (for each photo's nearest
/// neighbours, [`decide::geometric_candidates`]). `neardup explain` calls
/// this too, so that it measures a pair exactly as a scan does.
pub fn measure(
    cx: &Context,
    mut near: Vec<ScoredPair>,
    mirror: Option<Mirror>,
) -> Result<Evidenced> {
    let Context {
        photos,
        vectors,
        rules,
        limits,
        cache,
        layouts: _,
        keypoints: _,
        embedder: _,
        geometry: _,
        progress,
        cancel,
    } = *cx;
    let reread = Reread::new(photos, progress);
    let mirrored: HashSet<(u32, u32)> = match mirror {
        Some(m) => {
            let flipped = mirror::embed_mirrored(
                photos, m.embedder, m.geometry, limits, cache, &reread, cancel,
            )?;
            mirror::mirror_pairs(vectors, &flipped, &mut near, m.threshold, m.seed, m.centre)?
        }
        None => HashSet::new(),
    };
    let same_pixels = pixels::same_pixel_pairs(photos, &near, rules, limits, cache, &reread);
    check_cancel(cancel)?;
    // What needs no picture: same bytes, same pixels, one shot in RAW and JPEG.
    let plain: Vec<Evidence> = near
        .iter()
        .map(|p| {
            let (a, b) = (&photos[p.a as usize], &photos[p.b as usize]);
            Evidence {
                same_bytes: a.content == b.content,
                same_pixels: same_pixels.contains(&(p.a, p.b)),
                raw_jpeg: decide::is_raw_jpeg_pair(
                    &a.file.path,
                    Some(a.format),
                    &b.file.path,
                    Some(b.format),
                ),
                ..Evidence::default()
            }
        })
        .collect();
    let needs_picture: Vec<bool> = plain
        .iter()
        .map(|ev| !(ev.same_bytes || ev.same_pixels || ev.raw_jpeg))
        .collect();
    let checks = geometric_checks(photos.len(), &near, &needs_picture, rules);
    let found = geometric::geometric_check(cx, &checks, &reread)?;
    let fitted = found.values().filter(|c| c.fit.is_some()).count();
    let pairs = near
        .iter()
        .zip(plain)
        .map(|(p, ev)| {
            let checked = found.get(&(p.a, p.b));
            let fit = checked.and_then(|c| c.fit.as_ref());
            Measured {
                pair: *p,
                evidence: Evidence {
                    inliers: fit.map(|f| f.inliers),
                    coverage: fit.and_then(|f| f.coverage),
                    regions: fit.and_then(|f| f.regions),
                    frame: checked.and_then(|c| c.frame),
                    ..ev
                },
                mirrored: mirrored.contains(&(p.a, p.b)),
            }
        })
        .collect();
    Ok(Evidenced {
        pairs,
        geometric_checks: fitted as u64,
        frame_settled: (checks.len() - fitted) as u64,
    })
}

/// The pairs the geometric check measures: in mode similar, each photo's
/// nearest neighbours beyond the threshold
/// ([`decide::geometric_candidates`]); in modes edits and similar, every
/// pair within the threshold that needs its picture checked
/// (`needs_picture[k]` for `near[k]`: its coverage says whether the two are
/// the same picture). Sorted, each once.
fn geometric_checks(
    n: usize,
    near: &[ScoredPair],
    needs_picture: &[bool],
    rules: &Rules,
) -> Vec<(u32, u32)> {
    let mut checks = match rules.mode {
        Mode::Similar => decide::geometric_candidates(n, near, rules),
        _ => Vec::new(),
    };
    if rules.mode != Mode::Copies {
        let within = near.iter().zip(needs_picture);
        let picture = within.filter(|(p, &needs)| needs && p.distance <= rules.threshold);
        checks.extend(picture.map(|(p, _)| (p.a, p.b)));
        checks.sort_unstable();
        checks.dedup();
    }
    checks
}

/// The photos that appear in `pairs`, sorted, each once.
fn photos_in(pairs: impl Iterator<Item = (u32, u32)>) -> Vec<u32> {
    let mut v: Vec<u32> = pairs.flat_map(|(a, b)| [a, b]).collect();
    v.sort_unstable();
    v.dedup();
    v
}
