//! The geometric check: ORB features of a reduced gray decode of each photo
//! and RANSAC homography inliers of each checked pair.

use super::decide::Rules;
use super::photos_in;
use crate::cache::Cache;
use crate::decode::{self, Limits};
use crate::embed::Photo;
use crate::error::Result;
use crate::geometry::{self, Coverage, Match};
use crate::progress::check_cancel;
use crate::reread::Reread;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bumped whenever the geometric check changes its counts.
/// 3: the gray image comes from a decode at 1/8, 1/4 or 1/2 only.
/// 4: ... whose longer side covers 15/16 of the target (then upscaled).
/// 5: the coverage of the fitted homography is kept beside the inliers.
const GEOMETRY_VERSION: u32 = 5;

/// The cached value of a pair: inliers, then the two shares when a
/// homography was fitted.
fn to_bytes(m: &Match) -> Vec<u8> {
    let mut v = m.inliers.to_le_bytes().to_vec();
    if let Some(c) = m.coverage {
        v.extend_from_slice(&c.a.to_le_bytes());
        v.extend_from_slice(&c.b.to_le_bytes());
    }
    v
}

fn from_bytes(v: &[u8]) -> Option<Match> {
    let word = |k: usize| -> Option<[u8; 4]> { v.get(k * 4..k * 4 + 4)?.try_into().ok() };
    let inliers = u32::from_le_bytes(word(0)?);
    let coverage = match v.len() {
        4 => None,
        12 => {
            let a = f32::from_le_bytes(word(1)?);
            let b = f32::from_le_bytes(word(2)?);
            let ok = |x: f32| (0.0..=1.0).contains(&x);
            if !(ok(a) && ok(b)) {
                return None;
            }
            Some(Coverage { a, b })
        }
        _ => return None,
    };
    Some(Match { inliers, coverage })
}

/// Inliers and coverage of the geometric check of each pair in `checks`.
/// Features are computed once per photo involved, from a second, reduced
/// decode.
pub(crate) fn geometric_check(
    photos: &[Photo],
    checks: &[(u32, u32)],
    rules: &Rules,
    limits: Limits,
    cache: &Cache,
    reread: &Reread,
    cancel: &AtomicBool,
) -> Result<HashMap<(u32, u32), Match>> {
    // Results depend only on the two files' contents and the constants, so
    // they are cached by content and seeded by content.
    let kind = format!(
        "inliers/{GEOMETRY_VERSION}/{}/{}/{}/{}/{}",
        rules.geo_features, rules.geo_long_side, rules.ratio, rules.reproj_px, rules.ransac_iters
    );
    let key = |a: u32, b: u32| {
        format!(
            "{}|{}",
            photos[a as usize].content, photos[b as usize].content
        )
    };
    let mut known: HashMap<(u32, u32), Match> = HashMap::new();
    let mut todo: Vec<(u32, u32)> = Vec::new();
    for &(a, b) in checks {
        match cache
            .get_fact(&kind, &key(a, b))
            .and_then(|v| from_bytes(&v))
        {
            Some(found) => {
                known.insert((a, b), found);
            }
            None => todo.push((a, b)),
        }
    }
    let checks = &todo[..];
    let needed = photos_in(checks.iter().copied());
    let params = geometry::OrbParams {
        n_features: rules.geo_features,
        ..Default::default()
    };
    let features: HashMap<u32, geometry::Features> = needed
        .par_iter()
        .filter_map(|&i| {
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
            Some((i, geometry::orb(&gray, &params)))
        })
        .collect();
    check_cancel(cancel)?;
    let empty = geometry::Features::default();
    let computed: Vec<((u32, u32), Match)> = checks
        .par_iter()
        .map(|&(a, b)| {
            let fa = features.get(&a).unwrap_or(&empty);
            let fb = features.get(&b).unwrap_or(&empty);
            // The photo whose path sorts first is matched against the other;
            // the RANSAC seed comes from the two contents, so the count does
            // not depend on what else was scanned.
            let k = key(a, b);
            let seed = geometry::pair_seed(&k);
            let m = geometry::homography_match(
                fa,
                fb,
                rules.ratio,
                rules.reproj_px,
                rules.ransac_iters,
                seed,
            );
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
