//! The geometric check. Cheap evidence first: the two photos' layouts
//! framed the same way ([`layout::frame_distance`], microseconds, no
//! decode); then, for the pairs that measure does not settle, ORB features
//! of a reduced gray decode of each photo and a RANSAC homography.

use super::{keypoints, photos_in, Context};
use crate::decode;
use crate::error::Result;
use crate::geometry::{self, Coverage, Match};
use crate::layout::{self, Layout};
use crate::progress::{check_cancel, Ticks};
use crate::reread::Reread;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Bumped whenever the geometric check changes its counts.
/// 3: the gray image comes from a decode at 1/8, 1/4 or 1/2 only.
/// 4: ... whose longer side covers 15/16 of the target (then upscaled).
/// 5: the coverage of the fitted homography is kept beside the inliers.
/// 6: ... and the region distance (which depends on the model: the kind
///    names its fingerprint).
/// 7: ... and the frame distance (a pair whose frame distance settles it
///    keeps no fit).
/// 8: the gray image is decoded at a scale that serves the model's input
///    too (the larger of the two), so that the embed stage's decode gives it.
const GEOMETRY_VERSION: u32 = 8;

/// What the verify stage measured of a pair its pictures are asked about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Checked {
    /// The two photos' layouts framed the same way
    /// ([`layout::frame_distance`]), when both have one.
    pub frame: Option<f32>,
    /// The geometric check's result; `None` when the frame distance alone
    /// shows the two are not the same picture (over
    /// [`crate::verify::Rules::max_frame_distance`]): no decode, no ORB.
    pub fit: Option<Match>,
}

/// `u32::MAX` in the inliers' place: no fit.
const NO_FIT: u32 = u32::MAX;

/// The cached value of a pair: inliers (or [`NO_FIT`]), then the two shares,
/// the region distance and the frame distance (NaN for none).
fn to_bytes(c: &Checked) -> Vec<u8> {
    let pair = |c: Option<Coverage>| c.map_or((f32::NAN, f32::NAN), |c| (c.a, c.b));
    let fit = c.fit.as_ref();
    let (a, b) = pair(fit.and_then(|m| m.coverage));
    let r = fit.and_then(|m| m.regions).unwrap_or(f32::NAN);
    let mut v = fit.map_or(NO_FIT, |m| m.inliers).to_le_bytes().to_vec();
    for x in [a, b, r, c.frame.unwrap_or(f32::NAN)] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Two shares in [0, 1] (both NaN: `Some(None)`); `None` for anything else.
fn shares(a: f32, b: f32) -> Option<Option<Coverage>> {
    let ok = |x: f32| (0.0..=1.0).contains(&x);
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Some(None),
        (false, false) if ok(a) && ok(b) => Some(Some(Coverage { a, b })),
        _ => None,
    }
}

/// A distance in [0, 2] (NaN: `Some(None)`); `None` for anything else.
fn distance(r: f32) -> Option<Option<f32>> {
    match r {
        r if r.is_nan() => Some(None),
        r if (0.0..=2.0).contains(&r) => Some(Some(r)),
        _ => None,
    }
}

/// The inverse of [`to_bytes`]; `None` for bytes that are not one.
fn from_bytes(v: &[u8]) -> Option<Checked> {
    if v.len() != 20 {
        return None;
    }
    let word = |k: usize| -> Option<[u8; 4]> { v.get(k * 4..k * 4 + 4)?.try_into().ok() };
    let f = |k: usize| word(k).map(f32::from_le_bytes);
    let inliers = u32::from_le_bytes(word(0)?);
    let coverage = shares(f(1)?, f(2)?)?;
    let regions = distance(f(3)?)?;
    let frame = distance(f(4)?)?;
    let fit = (inliers != NO_FIT).then_some(Match {
        inliers,
        coverage,
        regions,
        homography: None,
    });
    if fit.is_none() && (coverage.is_some() || regions.is_some()) {
        return None;
    }
    Some(Checked { frame, fit })
}

/// `each(i)` of every photo in `photos` (indices into the scan's photos),
/// on every core, as one step of the progress bar named `what`. Photos it
/// gives nothing for are left out; a cancel ends the step with an error.
fn per_photo<T: Send>(
    cx: &Context,
    what: &str,
    photos: &[u32],
    each: impl Fn(u32) -> Option<T> + Sync,
) -> Result<HashMap<u32, T>> {
    let ticks = Ticks::step(cx.progress, what, photos.len());
    let done = photos
        .par_iter()
        .enumerate()
        .filter_map(|(x, &i)| {
            ticks.tick(x);
            if cx.cancel.load(Ordering::Relaxed) {
                return None;
            }
            Some((i, each(i)?))
        })
        .collect();
    check_cancel(cx.cancel)?;
    Ok(done)
}

/// Whether the frame distance alone settles a pair: over the rule's bound,
/// the two are not the same picture whatever a homography would say.
fn settled(frame: Option<f32>, max_frame_distance: f32) -> bool {
    frame.is_some_and(|f| f > max_frame_distance)
}

/// What each pair in `checks` shows: its frame distance, then the geometric
/// check (inliers, coverage, regions) for the pairs the frame
/// distance does not settle. Features are computed once per photo involved,
/// from a second, reduced decode.
pub(crate) fn geometric_check(
    cx: &Context,
    checks: &[(u32, u32)],
    reread: &Reread,
) -> Result<HashMap<(u32, u32), Checked>> {
    let Context {
        photos,
        rules,
        limits,
        cache,
        layouts,
        keypoints,
        embedder,
        geometry: input,
        progress,
        ..
    } = *cx;
    let max_frame = rules.max_frame_distance;
    // Results depend only on the two files' contents and the constants, so
    // they are cached by content and seeded by content.
    let kind = format!(
        "inliers/{GEOMETRY_VERSION}/{}/{}/{}/{}/{}/{}",
        rules.geo_features,
        rules.geo_long_side,
        rules.ratio,
        rules.reproj_px,
        rules.ransac_iters,
        cache.fingerprint()
    );
    let key = |a: u32, b: u32| {
        format!(
            "{}|{}",
            photos[a as usize].content, photos[b as usize].content
        )
    };
    // Looked up on every core (the cache has a connection per worker). A
    // stored pair is used when it answers this run's rule: a fit, or a frame
    // distance that settles it (a fit is dropped then, so that the evidence
    // does not depend on what an earlier run with another bound stored).
    let looked: Vec<Option<Checked>> = checks
        .par_iter()
        .map(|&(a, b)| {
            let c = from_bytes(&cache.get_fact(&kind, &key(a, b))?)?;
            if settled(c.frame, max_frame) {
                Some(Checked {
                    frame: c.frame,
                    fit: None,
                })
            } else {
                c.fit.is_some().then_some(c)
            }
        })
        .collect();
    let mut known: HashMap<(u32, u32), Checked> = HashMap::new();
    let mut todo: Vec<(u32, u32)> = Vec::new();
    for (&pair, found) in checks.iter().zip(looked) {
        match found {
            Some(found) => {
                known.insert(pair, found);
            }
            None => todo.push(pair),
        }
    }

    // Cheap evidence first: the layouts, framed the same way.
    let involved = photos_in(todo.iter().copied());
    let laid: HashMap<u32, Layout> = per_photo(cx, "layouts of photos", &involved, |i| {
        let photo = &photos[i as usize];
        // A layout lost from the cache (a damaged row) is made again.
        layouts.get(i as usize, &photo.content, cache, || {
            if !embedder.gives_layout() {
                return None;
            }
            let bytes = reread.bytes(i).ok()?;
            let p = decode::prepare(&bytes, input, limits).ok()?;
            embedder.embed_with_layout(&p.rgb).ok()?.1
        })
    })?;
    let displayed = |i: u32| {
        let p = &photos[i as usize];
        (f64::from(p.width), f64::from(p.height))
    };
    let frame_of = |a: u32, b: u32| {
        let (la, lb) = (laid.get(&a)?, laid.get(&b)?);
        layout::frame_distance(la, displayed(a), lb, displayed(b))
    };
    // The pairs left for the keypoints, each with its frame distance.
    let mut fits: Vec<((u32, u32), Option<f32>)> = Vec::new();
    for &(a, b) in &todo {
        let frame = frame_of(a, b);
        if settled(frame, max_frame) {
            let c = Checked { frame, fit: None };
            cache.put_fact(&kind, &key(a, b), to_bytes(&c));
            known.insert((a, b), c);
        } else {
            fits.push(((a, b), frame));
        }
    }

    // Then the keypoints, for the pairs that the frames did not settle.
    let needed = photos_in(fits.iter().map(|&(pair, _)| pair));
    let features: HashMap<u32, geometry::Features> =
        per_photo(cx, "features of photos", &needed, |i| {
            let content = &photos[i as usize].content;
            if let Some(f) = keypoints.and_then(|k| k.take(content)) {
                return Some(f);
            }
            let bytes = reread.bytes(i).ok()?;
            keypoints::decode_features(&bytes, rules, input, limits).ok()
        })?;
    let empty = geometry::Features::default();
    let ticks = Ticks::step(progress, "geometric checks", fits.len());
    let computed: Vec<((u32, u32), Checked)> = fits
        .par_iter()
        .enumerate()
        .map(|(x, &((a, b), frame))| {
            ticks.tick(x);
            let fa = features.get(&a).unwrap_or(&empty);
            let fb = features.get(&b).unwrap_or(&empty);
            // The photo whose path sorts first is matched against the other;
            // the RANSAC seed comes from the two contents, so the count does
            // not depend on what else was scanned.
            let k = key(a, b);
            let seed = geometry::pair_seed(&k);
            let mut m = geometry::homography_match(
                fa,
                fb,
                rules.ratio,
                rules.reproj_px,
                rules.ransac_iters,
                seed,
            );
            if let (Some(h), Some(la), Some(lb)) = (&m.homography, laid.get(&a), laid.get(&b)) {
                let frame = |f: &geometry::Features| (f64::from(f.width), f64::from(f.height));
                m.regions = layout::region_distance(la, frame(fa), lb, frame(fb), h);
            }
            let c = Checked {
                frame,
                fit: Some(m),
            };
            // A photo that could not be read again is not remembered as 0.
            if features.contains_key(&a) && features.contains_key(&b) {
                cache.put_fact(&kind, &k, to_bytes(&c));
            }
            ((a, b), c)
        })
        .collect();
    known.extend(computed);
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_pair_round_trips_and_bad_bytes_are_refused() {
        let fit = Match {
            inliers: 42,
            coverage: Some(Coverage { a: 0.9, b: 0.8 }),
            regions: Some(0.3),
            homography: None,
        };
        let checked = Checked {
            frame: Some(0.4),
            fit: Some(fit),
        };
        assert_eq!(from_bytes(&to_bytes(&checked)), Some(checked));
        let bare = Checked {
            frame: None,
            fit: Some(Match {
                inliers: 3,
                coverage: None,
                regions: None,
                homography: None,
            }),
        };
        assert_eq!(from_bytes(&to_bytes(&bare)), Some(bare));
        // Settled by the frame alone: no fit, and none invented.
        let settled_pair = Checked {
            frame: Some(0.9),
            fit: None,
        };
        assert_eq!(from_bytes(&to_bytes(&settled_pair)), Some(settled_pair));
        let b = to_bytes(&checked);
        assert_eq!(from_bytes(&b[..16]), None);
        let mut bad = b.clone();
        bad[4..8].copy_from_slice(&1.5f32.to_le_bytes());
        assert_eq!(from_bytes(&bad), None);
        let mut orphan = to_bytes(&settled_pair);
        orphan[12..16].copy_from_slice(&0.3f32.to_le_bytes());
        assert_eq!(from_bytes(&orphan), None, "regions without a fit");
        assert!(settled(Some(0.9), 0.65));
        assert!(!settled(Some(0.65), 0.65));
        assert!(!settled(None, 0.65));
    }
}
