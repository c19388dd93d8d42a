//! The index stage remembered, so that a rescan searches only what
//! changed.
//!
//! One result is kept per *scope*: the model, the roots scanned, what the
//! index must find ([`Wanted`]) and how ([`LshRequest`]), and this build's
//! index version. Each scan of a scope replaces its row, so the cache holds
//! one result per folder set scanned, not one per state of a library. The
//! row holds the result (its pairs, plan and statistics) and the identity
//! of each photo's content, in order.
//!
//! - **The same photos** (the same contents in the same order): the stored
//!   result is the scan's result, statistics included, so the report is the
//!   same bytes as the first scan's.
//! - **Some photos added, removed or changed**, in a library above
//!   [`nearest::EXACT_MAX`] photos whose neighbours are wanted: the stored
//!   pairs of the photos still there are kept ([`update`]); the new and
//!   changed photos, and those that lost a pair to a removed one, are
//!   searched exactly against every photo, and every list takes the new
//!   photos that come closer than its last entry. The work is the searched
//!   photos times the library, at most the larger of [`UPDATE_BUDGET`] and
//!   [`UPDATE_PER_PHOTO`] per photo, with at most a quarter of the library
//!   searched; past that, or below `EXACT_MAX` (where the whole search is
//!   exact and takes about a second), the index runs again from scratch.
//!
//! A row that does not decode into a result consistent with the photos
//! (lengths, sorted pairs, distances) is ignored, as a damaged row is.

use super::nearest::{self, Method};
use super::{CandidateStats, Centre, Indexed, LshPlan, LshRequest, NeighbourStats, ScoredPair};
use super::{Embeddings, Wanted};
use crate::cache::Cache;
use crate::error::Result;
use crate::progress::Progress;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

/// The facts kind the results are stored under.
const KIND: &str = "index/2";
/// Bumped whenever the index stage would return another result for the
/// same vectors and parameters (a change to the planner, the search, the
/// descent).
pub const INDEX_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"NDIX";

/// Where a scan's index result is remembered.
pub struct Memo<'a> {
    /// The cache; its model fingerprint is part of the scope.
    pub cache: &'a Cache,
    /// The roots walked, as the report records them.
    pub roots: &'a [PathBuf],
}

/// Distances an update may compute (searched photos × photos) at least:
/// about a second of matrix products on 2 cores at the model's 1,280
/// dimensions (`examples/update_bench.rs`: 10 M in 0.43 s at 100,000
/// photos).
pub const UPDATE_BUDGET: u64 = 20_000_000;
/// ... and per photo of the library: what a descent from scratch computes
/// per photo (500 to 1,100 distances between bytes at random places,
/// 23 s at 100,000 photos), each far dearer than one in a block of matrix
/// products. So up to 1,000 photos are searched in an update at any size
/// (at 100,000 photos about 4 s, against 23 s from scratch); past that, or
/// past a quarter of the library, the index runs from scratch.
pub const UPDATE_PER_PHOTO: u64 = 1_000;

/// How the index stage's result was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Computed by this scan (and remembered, when the cache is on).
    Computed,
    /// Taken from the cache: the same photos as the scan that stored it.
    Remembered,
    /// The stored result updated for the photos that changed ([`update`]).
    Updated,
}

/// [`super::index`], through the memo: the remembered result when the
/// photos (their `contents`, in order) and the parameters are the same as
/// when it was stored, an [`update`] of it when few photos changed, else a
/// new one; the result is then stored.
pub fn index(
    memo: &Memo,
    e: &Embeddings,
    contents: &[&str],
    wanted: Wanted,
    req: LshRequest,
    progress: &dyn Progress,
) -> Result<(Indexed, Source)> {
    debug_assert_eq!(contents.len(), e.len());
    let key = scope(memo, wanted, &req);
    let ids = content_ids(contents);
    let stored = memo
        .cache
        .is_enabled()
        .then(|| memo.cache.get_fact(KIND, &key))
        .flatten()
        .and_then(|bytes| decode(&bytes));
    let mut found = None;
    if let Some(old) = stored {
        if old.ids == ids {
            progress.remembered();
            return Ok((old.indexed, Source::Remembered));
        }
        if let Some(updated) = update(&old.ids, &old.indexed, &ids, e, wanted, req, progress)? {
            found = Some((updated, Source::Updated));
        }
    }
    let (indexed, source) = match found {
        Some(found) => found,
        None => (super::index(e, wanted, req, progress)?, Source::Computed),
    };
    if memo.cache.is_enabled() {
        memo.cache.put_fact(KIND, &key, encode(&ids, &indexed));
    }
    Ok((indexed, source))
}

/// The identity of a photo's content in a stored row: the first 16 bytes of
/// a BLAKE3 hash of its content key.
type Id = [u8; 16];

fn content_ids(contents: &[&str]) -> Vec<Id> {
    contents
        .iter()
        .map(|c| {
            let h = blake3::Hasher::new_derive_key("neardup index memo content")
                .update(c.as_bytes())
                .finalize();
            let mut id = [0u8; 16];
            id.copy_from_slice(&h.as_bytes()[..16]);
            id
        })
        .collect()
}

/// A stored row: the photos' content ids in scan order and the result.
struct Stored {
    ids: Vec<Id>,
    indexed: Indexed,
}

/// [`update`] for a caller that holds the earlier result itself (the
/// benchmarks): `old` was indexed for photos of `old_contents`, and
/// `contents` are the photos of `e` now; `None` when it would run from
/// scratch.
pub fn update_result(
    old: &Indexed,
    old_contents: &[&str],
    contents: &[&str],
    e: &Embeddings,
    wanted: Wanted,
    req: LshRequest,
    progress: &dyn Progress,
) -> Result<Option<Indexed>> {
    let (old_ids, ids) = (content_ids(old_contents), content_ids(contents));
    update(&old_ids, old, &ids, e, wanted, req, progress)
}

/// The stored result brought up to date for photos `ids` (vectors `e`),
/// when neighbours are wanted, both libraries are above
/// [`nearest::EXACT_MAX`] and the photos to search fit [`UPDATE_BUDGET`];
/// `None` to run the index from scratch instead.
///
/// Photos are matched by content (the t-th copy of a content to the t-th
/// stored one). The pairs between matched photos are kept. The photos
/// searched again (new or changed, or matched but with a stored pair to a
/// photo that is gone) get their exact `k` nearest within the radius and
/// every pair within the threshold, against all photos. Every other
/// photo's list is the `k` nearest of its kept pairs and of the searched
/// photos that come closer than its `k`-th (all of them when it has fewer).
/// The pairs under the threshold between kept photos are the stored ones:
/// LSH found them with the plan's recall when they were first indexed.
fn update(
    old_ids: &[Id],
    old: &Indexed,
    ids: &[Id],
    e: &Embeddings,
    wanted: Wanted,
    req: LshRequest,
    progress: &dyn Progress,
) -> Result<Option<Indexed>> {
    let n = e.len();
    let Some((k, radius)) = wanted.neighbours else {
        return Ok(None);
    };
    if n <= nearest::EXACT_MAX || old_ids.len() <= nearest::EXACT_MAX {
        return Ok(None);
    }
    // The t-th copy of a content here is the t-th stored one.
    let mut stored: HashMap<&Id, VecDeque<u32>> = HashMap::new();
    for (j, id) in old_ids.iter().enumerate() {
        stored.entry(id).or_default().push_back(j as u32);
    }
    let mut now = vec![u32::MAX; old_ids.len()];
    let mut searched = vec![true; n];
    for (i, id) in ids.iter().enumerate() {
        if let Some(j) = stored.get_mut(id).and_then(VecDeque::pop_front) {
            now[j as usize] = i as u32;
            searched[i] = false;
        }
    }
    // The stored pairs between photos still here; a photo with a pair to
    // one that is gone is searched again.
    let mut kept = Vec::with_capacity(old.near.len());
    for p in &old.near {
        match (now[p.a as usize], now[p.b as usize]) {
            (u32::MAX, u32::MAX) => {}
            (u32::MAX, b) => searched[b as usize] = true,
            (a, u32::MAX) => searched[a as usize] = true,
            (a, b) => kept.push(ScoredPair {
                a: a.min(b),
                b: a.max(b),
                distance: p.distance,
            }),
        }
    }
    let queries: Vec<u32> = (0..n as u32).filter(|&i| searched[i as usize]).collect();
    let work = queries.len() as u64 * n as u64;
    let budget = UPDATE_BUDGET.max(UPDATE_PER_PHOTO * n as u64);
    if work > budget || queries.len() > n / 4 {
        return Ok(None);
    }
    let plan = super::plan(e, wanted.threshold, req)?;
    // Each photo's candidates: its kept pairs within the radius.
    let mut lists: Vec<Vec<(f32, u32)>> = vec![Vec::new(); n];
    for p in kept.iter().filter(|p| p.distance <= radius) {
        lists[p.a as usize].push((p.distance, p.b));
        lists[p.b as usize].push((p.distance, p.a));
    }
    let nearest_first = |x: &(f32, u32), y: &(f32, u32)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
    for list in &mut lists {
        list.sort_by(nearest_first);
        list.truncate(k);
    }
    // A searched photo enters another's list when closer than its k-th.
    let bound: Vec<f32> = lists
        .iter()
        .map(|l| if l.len() < k { radius } else { l[k - 1].0 })
        .collect();
    progress.step("new and changed photos", Some(queries.len() as u64));
    let found = nearest::rows_against_all(
        e,
        &queries,
        k,
        radius,
        wanted.threshold,
        Some(&bound),
        progress,
    );
    for p in &found.offers {
        let (q, j) = if searched[p.a as usize] {
            (p.a, p.b)
        } else {
            (p.b, p.a)
        };
        lists[j as usize].push((p.distance, q));
    }
    for row in &found.lists {
        lists[row.i as usize] = row.entries().map(|(j, d)| (d, j)).collect();
    }
    let mut near: Vec<ScoredPair> = kept
        .iter()
        .filter(|p| p.distance <= wanted.threshold)
        .copied()
        .collect();
    near.extend(found.under);
    for (i, list) in lists.iter_mut().enumerate() {
        list.sort_by(nearest_first);
        list.dedup_by_key(|x| x.1);
        list.truncate(k);
        near.extend(list.iter().map(|&(distance, j)| ScoredPair {
            a: (i as u32).min(j),
            b: (i as u32).max(j),
            distance,
        }));
    }
    let near = super::merge(near, Vec::new());
    let beyond = near
        .iter()
        .filter(|p| p.distance > wanted.threshold)
        .count();
    Ok(Some(Indexed {
        plan,
        near,
        candidates: CandidateStats {
            collisions: 0,
            exact: work,
        },
        neighbours: Some(NeighbourStats {
            method: Method::Update {
                searched: queries.len(),
            },
            neighbours: k,
            radius,
            distances: work,
            pairs: beyond as u64,
        }),
    }))
}

/// The key of a scope: a digest of everything but the vectors that the
/// result depends on, and of the roots (resolved, so that the same folders
/// named another way are the same scope).
fn scope(memo: &Memo, wanted: Wanted, req: &LshRequest) -> String {
    let mut h = blake3::Hasher::new_derive_key("neardup index memo scope");
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(&INDEX_VERSION.to_le_bytes());
    field(memo.cache.fingerprint().as_bytes());
    field(&(memo.roots.len() as u64).to_le_bytes());
    for root in memo.roots {
        // `scan .` and `scan ~/Pictures` from elsewhere are one scope.
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        field(root.as_os_str().as_encoded_bytes());
    }
    field(&wanted.threshold.to_bits().to_le_bytes());
    match wanted.neighbours {
        Some((k, radius)) => {
            field(&(k as u64).to_le_bytes());
            field(&radius.to_bits().to_le_bytes());
        }
        None => field(b"no neighbours"),
    }
    let option = |o: Option<usize>| o.map_or(u64::MAX, |v| v as u64).to_le_bytes();
    field(&option(req.bits));
    field(&option(req.tables));
    field(&req.seed.to_le_bytes());
    field(&req.target_recall.to_bits().to_le_bytes());
    match req.centre {
        Some(c) => field(&floats(c)),
        None => field(b"no centre"),
    }
    h.finalize().to_hex().to_string()
}

fn floats(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The stored form: magic, the content ids, the plan, the statistics,
/// then the pairs (little-endian throughout).
fn encode(ids: &[Id], ix: &Indexed) -> Vec<u8> {
    let p = &ix.plan;
    let size = 128 + 16 * ids.len() + 4 * p.centre_vector.len() + 12 * ix.near.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    for id in ids {
        out.extend_from_slice(id);
    }
    out.extend_from_slice(&(p.bits as u64).to_le_bytes());
    out.extend_from_slice(&(p.tables as u64).to_le_bytes());
    out.extend_from_slice(&p.seed.to_le_bytes());
    out.push(match p.centre {
        Centre::Origin => 0,
        Centre::DataMean => 1,
        Centre::Model => 2,
    });
    out.extend_from_slice(&(p.centre_vector.len() as u64).to_le_bytes());
    out.extend_from_slice(&floats(&p.centre_vector));
    out.extend_from_slice(&p.pair_recall_at_threshold.to_le_bytes());
    out.extend_from_slice(&p.bit_flip_at_threshold.to_le_bytes());
    out.extend_from_slice(&ix.candidates.collisions.to_le_bytes());
    out.extend_from_slice(&ix.candidates.exact.to_le_bytes());
    match ix.neighbours {
        None => out.push(0),
        Some(n) => {
            match n.method {
                Method::Exact => {
                    out.push(1);
                    out.extend_from_slice(&0u64.to_le_bytes());
                }
                Method::Descent { rounds } => {
                    out.push(2);
                    out.extend_from_slice(&(rounds as u64).to_le_bytes());
                }
                Method::Update { searched } => {
                    out.push(3);
                    out.extend_from_slice(&(searched as u64).to_le_bytes());
                }
            }
            out.extend_from_slice(&(n.neighbours as u64).to_le_bytes());
            out.extend_from_slice(&n.radius.to_le_bytes());
            out.extend_from_slice(&n.distances.to_le_bytes());
            out.extend_from_slice(&n.pairs.to_le_bytes());
        }
    }
    out.extend_from_slice(&(ix.near.len() as u64).to_le_bytes());
    for pair in &ix.near {
        out.extend_from_slice(&pair.a.to_le_bytes());
        out.extend_from_slice(&pair.b.to_le_bytes());
        out.extend_from_slice(&pair.distance.to_le_bytes());
    }
    out
}

/// Reads the fields of [`encode`] back, front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }
    fn usize(&mut self) -> Option<usize> {
        self.u64().and_then(|v| usize::try_from(v).ok())
    }
    fn f32(&mut self) -> Option<f32> {
        self.u32().map(f32::from_bits)
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
}

/// The row stored in `bytes`, if it is one and consistent (pairs sorted,
/// each once, between its photos, distances in range); `None` otherwise.
fn decode(bytes: &[u8]) -> Option<Stored> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return None;
    }
    let n = r.usize()?;
    let ids: Vec<Id> = r
        .take(n.checked_mul(16)?)?
        .chunks_exact(16)
        .map(|c| c.try_into().unwrap())
        .collect();
    let bits = r.usize()?;
    let tables = r.usize()?;
    let seed = r.u64()?;
    let centre = match r.u8()? {
        0 => Centre::Origin,
        1 => Centre::DataMean,
        2 => Centre::Model,
        _ => return None,
    };
    let dim = r.usize()?;
    let centre_vector = r
        .take(dim.checked_mul(4)?)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let plan = LshPlan {
        bits,
        tables,
        seed,
        centre,
        centre_vector,
        pair_recall_at_threshold: r.f64()?,
        bit_flip_at_threshold: r.f64()?,
    };
    let candidates = CandidateStats {
        collisions: r.u64()?,
        exact: r.u64()?,
    };
    let neighbours = match r.u8()? {
        0 => None,
        tag @ 1..=3 => {
            let count = r.usize()?;
            let method = match tag {
                1 => Method::Exact,
                2 => Method::Descent { rounds: count },
                _ => Method::Update { searched: count },
            };
            Some(NeighbourStats {
                method,
                neighbours: r.usize()?,
                radius: r.f32()?,
                distances: r.u64()?,
                pairs: r.u64()?,
            })
        }
        _ => return None,
    };
    let len = r.usize()?;
    if r.0.len() != len.checked_mul(12)? {
        return None;
    }
    let mut near = Vec::with_capacity(len);
    for _ in 0..len {
        let pair = ScoredPair {
            a: r.u32()?,
            b: r.u32()?,
            distance: r.f32()?,
        };
        let sorted = near
            .last()
            .is_none_or(|q: &ScoredPair| (q.a, q.b) < (pair.a, pair.b));
        let fits = pair.a < pair.b && (pair.b as usize) < n;
        if !(sorted && fits && (0.0..=2.0).contains(&pair.distance)) {
            return None;
        }
        near.push(pair);
    }
    Some(Stored {
        ids,
        indexed: Indexed {
            plan,
            near,
            candidates,
            neighbours,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::planted;
    use super::*;
    use crate::index::cosine_distance;
    use crate::progress::NoProgress;

    fn request(seed: u64) -> LshRequest<'static> {
        LshRequest {
            seed,
            ..super::super::tests::request()
        }
    }

    const WANTED: Wanted = Wanted {
        threshold: 0.2,
        neighbours: Some((5, 0.5)),
    };

    #[test]
    fn a_row_reads_back_as_it_was_stored_and_a_damaged_one_not_at_all() {
        let e = planted(300, 40, 64, 0.3, 7);
        let ix = super::super::index(&e, WANTED, request(3), &NoProgress).unwrap();
        assert!(!ix.near.is_empty());
        let names: Vec<String> = (0..e.len()).map(|i| format!("1:{i:04}")).collect();
        let ids = content_ids(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let bytes = encode(&ids, &ix);
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.ids, ids);
        assert_eq!(back.indexed.plan, ix.plan);
        assert_eq!(back.indexed.near, ix.near);
        assert_eq!(back.indexed.candidates, ix.candidates);
        assert_eq!(back.indexed.neighbours, ix.neighbours);
        // Pairs beyond its photos, a cut, an unsorted pair: not used.
        let last = ix.near.last().unwrap().b as usize;
        assert!(decode(&encode(&ids[..last], &ix)).is_none());
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        let mut swapped = bytes.clone();
        let at = swapped.len() - 12;
        swapped[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&swapped).is_none());
    }

    /// Rows `keep` of `e`, in order.
    fn rows(e: &Embeddings, keep: impl Iterator<Item = usize>) -> Embeddings {
        let mut out = Embeddings::new(e.dim);
        for i in keep {
            out.push(e.row(i));
        }
        out
    }

    #[test]
    fn an_update_searches_the_new_photos_exactly_and_keeps_the_rest() {
        use crate::index::nearest::tests::truth;
        use crate::index::synthetic::{library, Shape};
        use std::collections::HashSet;
        let (all, _) = library(Shape::library(7_000, 64, 21));
        // 100 photos added among the others, 23 removed.
        let added = |i: usize| i % 70 == 5;
        let removed = |i: usize| i % 300 == 7;
        let old_rows: Vec<usize> = (0..all.len()).filter(|&i| !added(i)).collect();
        let new_rows: Vec<usize> = (0..all.len()).filter(|&i| !removed(i)).collect();
        let names = |rows: &[usize]| -> Vec<Id> {
            let keys: Vec<String> = rows.iter().map(|i| format!("1:{i}")).collect();
            content_ids(&keys.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let (old_e, new_e) = (
            rows(&all, old_rows.iter().copied()),
            rows(&all, new_rows.iter().copied()),
        );
        let req = request(5);
        let old = Stored {
            ids: names(&old_rows),
            indexed: super::super::index(&old_e, WANTED, req, &NoProgress).unwrap(),
        };
        let updated = update(
            &old.ids,
            &old.indexed,
            &names(&new_rows),
            &new_e,
            WANTED,
            req,
            &NoProgress,
        )
        .unwrap()
        .expect("an update within the budget");
        let Some(NeighbourStats {
            method: Method::Update { searched },
            ..
        }) = updated.neighbours
        else {
            panic!("{:?}", updated.neighbours)
        };
        assert!((100..400).contains(&searched), "{searched}");
        let got: HashSet<(u32, u32)> = updated.near.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(got.len(), updated.near.len());
        assert!(updated
            .near
            .windows(2)
            .all(|w| (w[0].a, w[0].b) < (w[1].a, w[1].b)));
        // The new photos' neighbours and pairs under the threshold: exact.
        let is_new: Vec<bool> = new_rows.iter().map(|&i| added(i)).collect();
        let touches_new = |p: &&(u32, u32)| is_new[p.0 as usize] || is_new[p.1 as usize];
        let want = truth(&new_e, 5, 0.5);
        let under: Vec<(u32, u32)> = crate::index::brute_force(&new_e, WANTED.threshold)
            .iter()
            .map(|p| (p.a, p.b))
            .collect();
        for p in under.iter().filter(|p| touches_new(p)) {
            assert!(got.contains(p), "{p:?} under the threshold");
        }
        for (q, _) in is_new.iter().enumerate().filter(|(_, &new)| new) {
            let mut list: Vec<(f32, u32)> = (0..new_e.len())
                .filter(|&j| j != q)
                .map(|j| (cosine_distance(new_e.row(q), new_e.row(j)), j as u32))
                .filter(|x| x.0 <= 0.5)
                .collect();
            list.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            for &(_, j) in list.iter().take(5) {
                let q = q as u32;
                assert!(got.contains(&(q.min(j), q.max(j))), "{q}'s neighbour {j}");
            }
        }
        // And the whole: as good as a scan from scratch.
        let cold = super::super::index(&new_e, WANTED, req, &NoProgress).unwrap();
        let cold: HashSet<(u32, u32)> = cold.near.iter().map(|p| (p.a, p.b)).collect();
        let recall = |found: &HashSet<(u32, u32)>, of: &[(u32, u32)]| {
            of.iter().filter(|p| found.contains(p)).count() as f64 / of.len() as f64
        };
        let (u, c) = (recall(&got, &want), recall(&cold, &want));
        assert!(u >= c - 0.005, "update {u}, from scratch {c}");
        assert!(recall(&got, &under) >= 0.99, "{}", recall(&got, &under));
        // Too many changes (a tenth removed): from scratch.
        let most: Vec<usize> = (0..all.len()).filter(|&i| i % 10 != 3).collect();
        let most_e = rows(&all, most.iter().copied());
        assert!(update(
            &old.ids,
            &old.indexed,
            &names(&most),
            &most_e,
            WANTED,
            req,
            &NoProgress
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn the_memo_serves_the_same_photos_and_recomputes_for_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let model = crate::model::ModelSource::bundled().unwrap();
        let roots = [PathBuf::from("/photos")];
        let e = planted(200, 30, 64, 0.3, 11);
        let names: Vec<String> = (0..e.len()).map(|i| format!("1:{i:04}")).collect();
        let contents: Vec<&str> = names.iter().map(String::as_str).collect();
        let run = |contents: &[&str], seed: u64| {
            let cache = Cache::open(&path, &model, &NoProgress);
            let memo = Memo {
                cache: &cache,
                roots: &roots,
            };
            let found = index(&memo, &e, contents, WANTED, request(seed), &NoProgress).unwrap();
            assert!(cache.close().is_empty());
            found
        };
        let (first, how) = run(&contents, 5);
        assert_eq!(how, Source::Computed);
        let (again, how) = run(&contents, 5);
        assert_eq!(how, Source::Remembered);
        assert_eq!(
            (again.plan, again.near),
            (first.plan.clone(), first.near.clone())
        );
        assert_eq!(again.neighbours, first.neighbours);
        // Another seed is another scope; other contents miss the digest.
        assert_eq!(run(&contents, 6).1, Source::Computed);
        let mut moved = contents.clone();
        moved.swap(0, 1);
        assert_eq!(run(&moved, 5).1, Source::Computed);
        // The moved order replaced the stored result: the first order is
        // computed again.
        assert_eq!(run(&contents, 5).1, Source::Computed);
        assert_eq!(run(&contents, 5).1, Source::Remembered);
    }
}
