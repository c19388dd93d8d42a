//! The geometric check: ORB features of a reduced gray decode of each photo
//! and RANSAC homography inliers of each checked pair.

use super::{photos_in, Context};
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
const GEOMETRY_VERSION: u32 = 6;

/// The cached value of a pair: inliers, then the two shares and the region
/// distance (NaN for none) when a homography was fitted.
fn to_bytes(m: &Match) -> Vec<u8> {
    let mut v = m.inliers.to_le_bytes().to_vec();
    if m.homography.is_some() || m.coverage.is_some() || m.regions.is_some() {
        let (a, b) = m.coverage.map_or((f32::NAN, f32::NAN), |c| (c.a, c.b));
        for x in [a, b, m.regions.unwrap_or(f32::NAN)] {
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v
}

fn from_bytes(v: &[u8]) -> Option<Match> {
    let word = |k: usize| -> Option<[u8; 4]> { v.get(k * 4..k * 4 + 4)?.try_into().ok() };
    let inliers = u32::from_le_bytes(word(0)?);
    let (coverage, regions) = match v.len() {
        4 => (None, None),
        16 => {
            let a = f32::from_le_bytes(word(1)?);
            let b = f32::from_le_bytes(word(2)?);
            let r = f32::from_le_bytes(word(3)?);
            let ok = |x: f32| (0.0..=1.0).contains(&x);
            let coverage = match (a.is_nan(), b.is_nan()) {
                (true, true) => None,
                (false, false) if ok(a) && ok(b) => Some(Coverage { a, b }),
                _ => return None,
            };
            let regions = match r {
                r if r.is_nan() => None,
                r if (0.0..=2.0).contains(&r) => Some(r),
                _ => return None,
            };
            (coverage, regions)
        }
        _ => return None,
    };
    Some(Match {
        inliers,
        coverage,
        regions,
        homography: None,
    })
}

/// Inliers and coverage of the geometric check of each pair in `checks`.
/// Features are computed once per photo involved, from a second, reduced
/// decode.
pub(crate) fn geometric_check(
    cx: &Context,
    checks: &[(u32, u32)],
    reread: &Reread,
) -> Result<HashMap<(u32, u32), Match>> {
    let Context {
        photos,
        rules,
        limits,
        cache,
        layouts,
        embedder,
        geometry: input,
        progress,
        cancel,
        ..
    } = *cx;
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
    // Looked up on every core (the cache has a connection per worker).
    let looked: Vec<Option<Match>> = checks
        .par_iter()
        .map(|&(a, b)| {
            cache
                .get_fact(&kind, &key(a, b))
                .and_then(|v| from_bytes(&v))
        })
        .collect();
    let mut known: HashMap<(u32, u32), Match> = HashMap::new();
    let mut todo: Vec<(u32, u32)> = Vec::new();
    for (&pair, found) in checks.iter().zip(looked) {
        match found {
            Some(found) => {
                known.insert(pair, found);
            }
            None => todo.push(pair),
        }
    }
    let checks = &todo[..];
    let needed = photos_in(checks.iter().copied());
    let params = geometry::OrbParams {
        n_features: rules.geo_features,
        ..Default::default()
    };
    let ticks = Ticks::step(progress, "features of photos", needed.len());
    let features: HashMap<u32, (geometry::Features, Option<Layout>)> = needed
        .par_iter()
        .enumerate()
        .filter_map(|(x, &i)| {
            ticks.tick(x);
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let bytes = reread.bytes(i).ok()?;
            let g = decode::prepare_gray(&bytes, rules.geo_long_side, limits).ok()?;
            let gray = geometry::Gray {
                width: g.width,
                height: g.height,
                pixels: &g.pixels,
            };
            let photo = &photos[i as usize];
            // A layout lost from the cache (a damaged row) is made again.
            let layout = layouts.get(i as usize, &photo.content, cache, || {
                if !embedder.gives_layout() {
                    return None;
                }
                let p = decode::prepare(&bytes, input, limits).ok()?;
                embedder.embed_with_layout(&p.rgb).ok()?.1
            });
            Some((i, (geometry::orb(&gray, &params), layout)))
        })
        .collect();
    check_cancel(cancel)?;
    let empty = (geometry::Features::default(), None);
    let ticks = Ticks::step(progress, "geometric checks", checks.len());
    let computed: Vec<((u32, u32), Match)> = checks
        .par_iter()
        .enumerate()
        .map(|(x, &(a, b))| {
            ticks.tick(x);
            let (fa, la) = features.get(&a).unwrap_or(&empty);
            let (fb, lb) = features.get(&b).unwrap_or(&empty);
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
            if let (Some(h), Some(la), Some(lb)) = (&m.homography, la, lb) {
                let frame = |f: &geometry::Features| (f64::from(f.width), f64::from(f.height));
                m.regions = layout::region_distance(la, frame(fa), lb, frame(fb), h);
            }
            // A photo that could not be read again is not remembered as 0.
            if features.contains_key(&a) && features.contains_key(&b) {
                cache.put_fact(&kind, &k, to_bytes(&m));
            }
            ((a, b), m)
        })
        .collect();
    known.extend(computed);
    Ok(known)
}
