//! Same pixels: pairs of different files whose decoded pixels are equal
//! (JPEGs compared band by band, other formats by a hash of their pixels).

use super::decide::Rules;
use super::photos_in;
use crate::cache::Cache;
use crate::decode::{self, Limits};
use crate::embed::Photo;
use crate::index;
use crate::reread::Reread;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// Cache kind of the pixel hashes (see [`decode::pixel_hash`]).
const PIXELS_FACT: &str = "pixels/2";
/// Cache kind of the band-by-band comparisons of two JPEGs (see
/// [`decode::same_pixels`]).
pub(crate) const SAME_PIXELS_FACT: &str = "same-pixels/1";

/// Whether the pixels of `a` and `b` are compared: close enough to be the
/// same image, of the same displayed size and not byte-identical.
pub(crate) fn compared(a: &Photo, b: &Photo, distance: f32, rules: &Rules) -> bool {
    distance <= rules.same_pixels_radius
        && a.content != b.content
        && (a.width, a.height) == (b.width, b.height)
}

/// Pairs close enough to be the same image, of the same displayed size and
/// not byte-identical, whose fully decoded pixels are equal.
pub(crate) fn same_pixel_pairs(
    photos: &[Photo],
    near: &[index::ScoredPair],
    rules: &Rules,
    limits: Limits,
    cache: &Cache,
    reread: &Reread,
) -> HashSet<(u32, u32)> {
    let todo: Vec<index::ScoredPair> = near
        .iter()
        .filter(|p| {
            compared(
                &photos[p.a as usize],
                &photos[p.b as usize],
                p.distance,
                rules,
            )
        })
        .copied()
        .collect();
    // Two JPEGs are decoded side by side and compared band by band, which
    // stops at the first difference; the answer depends only on the two
    // contents, so it is cached for the pair (in content order). Within a
    // cluster of such pairs, a pair already joined by proven-same pairs is
    // not decoded again (same pixels is transitive), so that k copies with
    // the same pixels cost k - 1 comparisons, not k(k - 1)/2.
    let pair_key = |a: u32, b: u32| {
        let (x, y) = (&photos[a as usize].content, &photos[b as usize].content);
        if x <= y {
            format!("{x}|{y}")
        } else {
            format!("{y}|{x}")
        }
    };
    let compare = |a: u32, b: u32| -> Option<bool> {
        let key = pair_key(a, b);
        match cache.get_fact(SAME_PIXELS_FACT, &key).as_deref() {
            Some([0]) => return Some(false),
            Some([1]) => return Some(true),
            _ => {}
        }
        let read = |i: u32| reread.bytes(i).ok();
        let (Some(x), Some(y)) = (read(a), read(b)) else {
            return Some(false); // unreadable now: not shown to be the same
        };
        match decode::same_pixels(&x, &y, limits) {
            Ok(Some(same)) => {
                cache.put_fact(SAME_PIXELS_FACT, &key, vec![same as u8]);
                Some(same)
            }
            Ok(None) => None,
            Err(_) => Some(false),
        }
    };
    let clusters = crate::group::connected_components(photos.len(), &todo);
    let compared: Vec<((u32, u32), Option<bool>)> = clusters
        .par_iter()
        .flat_map_iter(|c| {
            let local = |i: u32| c.members.binary_search(&i).expect("a member") as u32;
            let mut proven = crate::group::UnionFind::new(c.members.len());
            c.pairs
                .iter()
                .map(|p| {
                    let (la, lb) = (local(p.a), local(p.b));
                    if proven.find(la) == proven.find(lb) {
                        return ((p.a, p.b), Some(true));
                    }
                    let answer = compare(p.a, p.b);
                    if answer == Some(true) {
                        proven.union(la, lb);
                    }
                    ((p.a, p.b), answer)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut same: HashSet<(u32, u32)> = compared
        .iter()
        .filter(|(_, v)| *v == Some(true))
        .map(|(p, _)| *p)
        .collect();
    // The rest (other formats, other orientations): a hash of each photo's
    // whole pixels, computed once per photo.
    let rest: Vec<(u32, u32)> = compared
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(p, _)| *p)
        .collect();
    let needed = photos_in(rest.iter().copied());
    let hashes: HashMap<u32, String> = needed
        .par_iter()
        .filter_map(|&i| {
            let p = &photos[i as usize];
            if let Some(h) = cache.get_fact(PIXELS_FACT, &p.content) {
                return String::from_utf8(h).ok().map(|h| (i, h));
            }
            let bytes = reread.bytes(i).ok()?;
            let h = decode::pixel_hash(&bytes, limits).ok()?;
            cache.put_fact(PIXELS_FACT, &p.content, h.clone().into_bytes());
            Some((i, h))
        })
        .collect();
    same.extend(
        rest.into_iter().filter(
            |(a, b)| matches!((hashes.get(a), hashes.get(b)), (Some(x), Some(y)) if x == y),
        ),
    );
    same
}
