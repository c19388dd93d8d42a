//! Mirrored copies: the vector of every photo's mirror image, and the pairs
//! found only through a mirror.

use crate::cache::{self, Cache};
use crate::decode::{self, Geometry, Limits};
use crate::embed::{Embed, Photo};
use crate::error::{Error, Result};
use crate::index::{self, Embeddings, LshRequest, TARGET_RECALL};
use crate::progress::check_cancel;
use crate::reread::Reread;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// The vector of every photo's mirror image (flipped left to right), from
/// the cache or embedded now.
pub(crate) fn embed_mirrored(
    photos: &[Photo],
    embedder: &dyn Embed,
    geo: Geometry,
    limits: Limits,
    cache: &Cache,
    reread: &Reread,
    cancel: &AtomicBool,
) -> Result<Embeddings> {
    let vectors: std::result::Result<Vec<Vec<f32>>, String> = photos
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            if cancel.load(Ordering::Relaxed) {
                return Err("interrupted".to_string());
            }
            let key = format!("{}#mirror", p.content);
            if let Some(e) = cache.get(&key) {
                return Ok(e.vector);
            }
            let bytes = reread
                .bytes(i as u32)
                .map_err(|e| format!("{}: {e}", p.file.path.display()))?;
            let mut prepared = decode::prepare(&bytes, geo, limits).map_err(|r| r.message)?;
            decode::mirror_rgb(&mut prepared.rgb, geo.width);
            embedder.ready()?;
            let v = embedder.embed(&prepared.rgb).map_err(|e| e.to_string())?;
            cache.put(
                &key,
                cache::Entry {
                    width: p.width,
                    height: p.height,
                    format: p.format,
                    vector: v.clone(),
                },
            );
            Ok(v)
        })
        .collect();
    check_cancel(cancel)?;
    // A file that changed or vanished since it was embedded fails the run
    // rather than giving a half-mirrored result.
    let vectors = vectors.map_err(|e| Error::Inference(format!("mirror image: {e}")))?;
    let mut out = Embeddings::new(vectors.first().map_or(0, Vec::len));
    for v in &vectors {
        out.try_push(v)?;
    }
    Ok(out)
}

/// Add to `near` the pairs whose mirror images are within the threshold
/// (photo i against the flipped photo j), keeping the smaller distance;
/// returns the pairs found only through a mirror.
pub(crate) fn mirror_pairs(
    vectors: &Embeddings,
    flipped: &Embeddings,
    near: &mut Vec<index::ScoredPair>,
    threshold: f32,
    seed: u64,
    centre: Option<&[f32]>,
) -> Result<HashSet<(u32, u32)>> {
    let n = vectors.len();
    let mut both = vectors.clone();
    both.data.extend_from_slice(&flipped.data);
    let req = LshRequest {
        bits: None,
        tables: None,
        seed,
        target_recall: TARGET_RECALL,
        centre,
    };
    let plan = index::plan(&both, threshold, req)?;
    // Photo i against the flipped photo j (never itself).
    let n32 = n as u32;
    let (found, _) = index::search(&both, &plan, threshold, |a, b| {
        a < n32 && b >= n32 && a != b - n32
    });
    let mut best: HashMap<(u32, u32), f32> = HashMap::new();
    for p in found {
        let (i, j) = (p.a, p.b - n as u32);
        let key = (i.min(j), i.max(j));
        let d = best.entry(key).or_insert(p.distance);
        *d = d.min(p.distance);
    }
    let mut only_mirror = HashSet::new();
    let mut index_of: HashMap<(u32, u32), usize> = near
        .iter()
        .enumerate()
        .map(|(k, p)| ((p.a, p.b), k))
        .collect();
    let mut keys: Vec<_> = best.into_iter().collect();
    keys.sort_by_key(|(k, _)| *k);
    for ((a, b), d) in keys {
        match index_of.get(&(a, b)) {
            Some(&k) if near[k].distance <= d => {}
            Some(&k) => {
                near[k].distance = d;
                only_mirror.insert((a, b));
            }
            None => {
                index_of.insert((a, b), near.len());
                near.push(index::ScoredPair { a, b, distance: d });
                only_mirror.insert((a, b));
            }
        }
    }
    near.sort_by_key(|p| (p.a, p.b));
    Ok(only_mirror)
}
