//! Each photo's nearest neighbours, without comparing every pair.
//!
//! The `similar` mode checks each photo's few nearest neighbours
//! geometrically, out to a cosine distance (0.5) where random hyperplanes
//! barely tell a neighbour from a stranger: a pair at 0.5 differs in about
//! 42% of its sign bits, an unrelated pair in 50%, so tables that find such
//! pairs put everyone in one bucket. Asking for every pair within 0.5 is
//! quadratic; asking for each photo's `k` nearest is not.
//!
//! Below [`EXACT_MAX`] photos the neighbours are exact: blocks of rows
//! against all others in one matrix product each, keeping the `k` best per
//! row (it costs `n²` multiply-adds of a tuned kernel, cheaper there than
//! anything cleverer). Above it, a neighbour graph is grown from the LSH
//! tables and refined by neighbours of neighbours, as NN-descent does:
//! 1. **Seeds from the tables.** Each table's codes are sorted; the photos
//!    within [`WINDOW`] places of a photo in that order share the longest
//!    prefixes of its code, so they are the table's best guesses. Every
//!    photo starts from its [`KEEP`] nearest among them ([`SEED_TABLES`]
//!    tables).
//! 2. **Neighbours of neighbours.** A photo's neighbour's neighbours (and
//!    the photos that list it, at most [`KEEP`] of them) are probably its
//!    neighbours too. Each round computes, for every photo, the distances
//!    to the candidates that involve a list entry new since the round
//!    before, and keeps the best [`KEEP`]. It stops when fewer than 1 in
//!    1,000 entries change, or after [`MAX_ROUNDS`].
//!
//! Each round reads the lists of the round before only, so the result does
//! not depend on the number of threads. Work per photo is bounded (the
//! tables' windows, then at most `(2·KEEP)·KEEP` candidates a round), so
//! the cost grows as `n` times the rounds. The rounds rank by distances
//! between the vectors stored as bytes (a quarter of the memory to read);
//! the final lists are measured again exactly ([`cosine_distance`]), so the
//! distances reported are exact. The lists are approximate, and
//! `examples/scale_bench.rs` measures their recall against brute force.

use super::{cosine_distance, Embeddings, ScoredPair};
use crate::progress::{Progress, Ticks};
use rayon::prelude::*;

/// Photos up to which the neighbours are exact: at 6,000 model-like
/// vectors the exact search and the descent cost the same (0.95 s and
/// 0.91 s, `examples/scale_bench.rs`).
pub const EXACT_MAX: usize = 6000;
/// Places on each side of a photo, in one table's sorted codes, whose
/// photos are seeds.
pub const WINDOW: usize = 3;
/// Length of each photo's neighbour list while it grows.
pub const KEEP: usize = 16;
/// Tables whose sorted codes give seeds (the first ones). On the scale
/// benchmark's 100,000 photos (before the byte vectors, same lists), 8
/// tables × 3 places on each side with lists of 12 reached 0.70 of the
/// brute-force neighbours, 48 tables 0.94, 64 tables with lists of 16 0.98
/// for 925 distances per photo.
pub const SEED_TABLES: usize = 64;
/// Rounds of neighbours of neighbours at most.
pub const MAX_ROUNDS: usize = 20;

/// How the neighbours were found, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Every pair compared.
    Exact,
    /// Seeds from the LSH tables, refined by neighbours of neighbours.
    Descent { rounds: usize },
    /// A rescan's: the stored result, with `searched` photos (new,
    /// changed, or that lost a neighbour) searched exactly against all
    /// ([`super::memo`]).
    Update { searched: usize },
}

/// Each photo's nearest neighbours within a radius, as pairs.
#[derive(Debug, Clone)]
pub struct Nearest {
    /// The pairs `(a < b)` where one is among the other's `k` nearest and
    /// their distance is within the radius (exactly: also every pair within
    /// the threshold); sorted by `(a, b)`, each once.
    pub pairs: Vec<ScoredPair>,
    pub method: Method,
    /// Exact distances computed on the way.
    pub distances: u64,
}

/// The vectors as signed bytes, one scale per row: a quarter of the bytes
/// to read per distance, which is what the descent's random reads cost.
/// Its distances are within ~2e-3 of the exact ones; the lists it ranks are
/// measured again exactly at the end.
struct Bytes {
    dim: usize,
    data: Vec<i8>,
    scale: Vec<f32>,
}

impl Bytes {
    fn new(e: &Embeddings) -> Bytes {
        let dim = e.dim;
        let mut data = vec![0i8; e.len() * dim];
        let scale: Vec<f32> = data
            .par_chunks_mut(dim.max(1))
            .enumerate()
            .map(|(i, out)| {
                let row = e.row(i);
                let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
                let s = if max > 0.0 { max / 127.0 } else { 1.0 };
                for (o, x) in out.iter_mut().zip(row) {
                    *o = (x / s).round().clamp(-127.0, 127.0) as i8;
                }
                s
            })
            .collect();
        Bytes { dim, data, scale }
    }

    fn distance(&self, i: usize, j: usize) -> f32 {
        let (a, b) = (self.row(i), self.row(j));
        let dot = dot_i8(a, b) as f32 * self.scale[i] * self.scale[j];
        (1.0 - dot).clamp(0.0, 2.0)
    }

    fn row(&self, i: usize) -> &[i8] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// The dot product of two rows of bytes, with AVX2 where the processor has
/// it (the same integer sum either way).
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, checked just above.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_plain(a, b)
}

/// 16 bytes at a time widened to 16-bit lanes, multiplied and summed in
/// pairs into 32-bit lanes (`vpmaddwd`): the integer sum of
/// [`dot_i8_plain`], exactly (|products| ≤ 127², no overflow below 2^16
/// dimensions).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n bytes are in both slices; unaligned loads.
        let x = _mm_loadu_si128(a.as_ptr().add(i) as *const __m128i);
        let y = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
        let p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(x), _mm256_cvtepi8_epi16(y));
        acc = _mm256_add_epi32(acc, p);
        i += 16;
    }
    let mut lanes = [0i32; 8];
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc);
    let mut s: i32 = lanes.iter().sum();
    for k in i..n {
        s += a[k] as i32 * b[k] as i32;
    }
    s
}

/// Written so that the compiler vectorises it: 16-bit products summed
/// into independent 32-bit lanes.
#[inline(always)]
fn dot_i8_plain(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] as i16 as i32 * y[k] as i16 as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += *x as i32 * *y as i32;
    }
    s
}

/// One entry of a neighbour list: distance, photo, and whether it arrived
/// in the last round.
#[derive(Debug, Clone, Copy)]
struct Entry {
    d: f32,
    j: u32,
    new: bool,
}

fn by_distance(x: &Entry, y: &Entry) -> std::cmp::Ordering {
    x.d.total_cmp(&y.d).then(x.j.cmp(&y.j))
}

/// Rows compared with all others in one block.
const ROW_BLOCK: usize = 128;
/// Columns per matrix product (bounds the block of dot products).
const COL_BLOCK: usize = 4096;

/// Exact `k` nearest within `radius`, and every pair within `threshold`,
/// by blocks of matrix products, every row against every other; the kept
/// pairs' distances are computed again with [`cosine_distance`] so that
/// they are the same numbers as everywhere else.
pub fn exact(
    e: &Embeddings,
    k: usize,
    radius: f32,
    threshold: f32,
    progress: &dyn Progress,
) -> Nearest {
    let n = e.len();
    progress.step("every pair", Some(n as u64));
    let all: Vec<u32> = (0..n as u32).collect();
    let found = rows_against_all(e, &all, k, radius, threshold, None, progress);
    let distances = (n * n.saturating_sub(1)) as u64;
    let lists = found.lists.into_iter().map(|l| (l.i, l.list)).collect();
    Nearest {
        pairs: super::merge(pairs_of_rows(lists, radius), found.under),
        method: Method::Exact,
        distances,
    }
}

/// A query row's exact nearest neighbours.
pub(crate) struct RowList {
    pub i: u32,
    /// At most `k`, within the radius, by `(distance, photo)`.
    list: Vec<Entry>,
}

impl RowList {
    /// The list as `(photo, distance)`, nearest first.
    pub fn entries(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.list.iter().map(|x| (x.j, x.d))
    }
}

/// What [`rows_against_all`] found.
pub(crate) struct RowsFound {
    /// Each query's list, in the order of the queries.
    pub lists: Vec<RowList>,
    /// Every pair of a query within the threshold, `(a < b)`, each once,
    /// sorted, with its exact distance.
    pub under: Vec<ScoredPair>,
    /// With `bound`: the pairs of a query and a photo `j` that is not one,
    /// within the radius and at most `bound[j]` (so that they may enter
    /// `j`'s own list), exact distances.
    pub offers: Vec<ScoredPair>,
}

/// The exact neighbours of the rows `queries` (sorted, each once) among all
/// rows, by blocks of matrix products (the query rows gathered, every row
/// as columns), with the margins and the exact remeasure of [`exact`].
/// `progress` advances by the queries done.
pub(crate) fn rows_against_all(
    e: &Embeddings,
    queries: &[u32],
    k: usize,
    radius: f32,
    threshold: f32,
    bound: Option<&[f32]>,
    progress: &dyn Progress,
) -> RowsFound {
    let (n, dim) = (e.len(), e.dim);
    let mut is_query = vec![false; n];
    for &q in queries {
        is_query[q as usize] = true;
    }
    let is_query = &is_query;
    type Block = (Vec<Vec<Entry>>, Vec<ScoredPair>, Vec<ScoredPair>);
    let blocks: Vec<Block> = queries
        .par_chunks(ROW_BLOCK)
        .map(|rows| {
            let m = rows.len();
            let mut best: Vec<Vec<Entry>> = vec![Vec::with_capacity(k + 1); m];
            let (mut under, mut offers) = (Vec::new(), Vec::new());
            let mut gathered = Vec::with_capacity(m * dim);
            for &i in rows {
                gathered.extend_from_slice(e.row(i as usize));
            }
            let mut dots = vec![0f32; m * COL_BLOCK];
            let mut c0 = 0;
            while c0 < n {
                let cols = (n - c0).min(COL_BLOCK);
                // SAFETY: m x dim (gathered) and cols x dim (read transposed,
                // dim x cols) floats in, m x cols out, with the strides given.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        dim,
                        cols,
                        1.0,
                        gathered.as_ptr(),
                        dim as isize,
                        1,
                        e.data[c0 * dim..].as_ptr(),
                        1,
                        dim as isize,
                        0.0,
                        dots.as_mut_ptr(),
                        cols as isize,
                        1,
                    );
                }
                for (r, list) in best.iter_mut().enumerate() {
                    let i = rows[r] as usize;
                    for c in 0..cols {
                        let j = c0 + c;
                        // A margin for the product's rounding: the kept
                        // pairs are measured again below.
                        let d = 1.0 - dots[r * cols + c];
                        if j == i || d > radius.max(threshold) + 1e-4 {
                            continue;
                        }
                        let (a, b) = (i.min(j) as u32, i.max(j) as u32);
                        // A pair of two queries is taken by the smaller.
                        let first = !is_query[j] || j > i;
                        if first && d <= threshold + 1e-4 {
                            let distance = cosine_distance(e.row(i), e.row(j));
                            if distance <= threshold {
                                under.push(ScoredPair { a, b, distance });
                            }
                        }
                        if d > radius + 1e-4 {
                            continue;
                        }
                        if let Some(bound) = bound.filter(|_| !is_query[j]) {
                            if d <= bound[j] + 1e-4 {
                                let distance = cosine_distance(e.row(i), e.row(j));
                                if distance <= radius && distance <= bound[j] {
                                    offers.push(ScoredPair { a, b, distance });
                                }
                            }
                        }
                        let entry = Entry {
                            d,
                            j: j as u32,
                            new: false,
                        };
                        if list.len() == k + 1 && by_distance(&entry, &list[k]).is_ge() {
                            continue;
                        }
                        let at = list.partition_point(|x| by_distance(x, &entry).is_lt());
                        list.insert(at, entry);
                        list.truncate(k + 1);
                    }
                }
                c0 += cols;
            }
            progress.advance(m as u64);
            (best, under, offers)
        })
        .collect();
    let mut lists = Vec::with_capacity(queries.len());
    let (mut under, mut offers) = (Vec::new(), Vec::new());
    for (l, u, o) in blocks {
        lists.extend(l);
        under.extend(u);
        offers.extend(o);
    }
    // Measured again, the k + 1 kept candidates settle the order of pairs
    // the product's rounding may have swapped.
    let lists = lists
        .into_par_iter()
        .zip(queries)
        .map(|(list, &i)| RowList {
            i,
            list: remeasure(e, i as usize, list, k)
                .into_iter()
                .filter(|x| x.d <= radius)
                .collect(),
        })
        .collect();
    under.sort_unstable_by_key(|p| (p.a, p.b));
    offers.sort_unstable_by_key(|p| (p.a, p.b));
    RowsFound {
        lists,
        under,
        offers,
    }
}

/// Every list measured again exactly, sorted, cut to `k`.
fn remeasure_all(e: &Embeddings, lists: Vec<Vec<Entry>>, k: usize) -> Vec<Vec<Entry>> {
    lists
        .into_par_iter()
        .enumerate()
        .map(|(i, list)| remeasure(e, i, list, k))
        .collect()
}

fn remeasure(e: &Embeddings, i: usize, list: Vec<Entry>, k: usize) -> Vec<Entry> {
    let mut list: Vec<Entry> = list
        .into_iter()
        .map(|x| Entry {
            d: cosine_distance(e.row(i), e.row(x.j as usize)),
            ..x
        })
        .collect();
    list.sort_by(by_distance);
    list.truncate(k);
    list
}

/// Every list's entries within `radius` as pairs `(a < b)`, sorted, each once.
fn pairs_of(lists: Vec<Vec<Entry>>, radius: f32) -> Vec<ScoredPair> {
    pairs_of_rows(
        lists
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u32, l))
            .collect(),
        radius,
    )
}

/// [`pairs_of`] for the lists of rows `i`.
fn pairs_of_rows(lists: Vec<(u32, Vec<Entry>)>, radius: f32) -> Vec<ScoredPair> {
    let mut pairs: Vec<ScoredPair> = lists
        .iter()
        .flat_map(|(i, list)| {
            list.iter()
                .filter(|x| x.d <= radius)
                .map(move |x| ScoredPair {
                    a: (*i).min(x.j),
                    b: (*i).max(x.j),
                    distance: x.d,
                })
        })
        .collect();
    pairs.sort_unstable_by_key(|p| (p.a, p.b));
    pairs.dedup_by_key(|p| (p.a, p.b));
    pairs
}

/// Insert `entry` into `list` (sorted, at most `keep` long) unless it is
/// there already or too far; true if it went in.
fn offer(list: &mut Vec<Entry>, entry: Entry, keep: usize) -> bool {
    if list.iter().any(|x| x.j == entry.j) {
        return false;
    }
    if list.len() == keep && by_distance(&entry, &list[keep - 1]).is_ge() {
        return false;
    }
    let at = list.partition_point(|x| by_distance(x, &entry).is_lt());
    list.insert(at, entry);
    list.truncate(keep);
    true
}

/// Seeds from the tables' sorted codes, then rounds of neighbours of
/// neighbours.
///
/// `progress` hears of the seeds (one step per table) and of each round.
pub fn descent(
    e: &Embeddings,
    codes: &[u64],
    tables: usize,
    k: usize,
    radius: f32,
    progress: &dyn Progress,
) -> Nearest {
    let n = e.len();
    let keep = KEEP.max(k);
    let bytes = Bytes::new(e);
    let mut distances = 0u64;
    let mut lists: Vec<Vec<Entry>> = vec![Vec::with_capacity(keep); n];
    // 1. Seeds: each table's sorted order, WINDOW places on each side.
    let seed_tables = tables.min(SEED_TABLES);
    progress.step("neighbour seeds", Some(seed_tables as u64));
    for t in 0..seed_tables {
        let mut column: Vec<(u64, u32)> =
            (0..n).map(|i| (codes[i * tables + t], i as u32)).collect();
        column.par_sort_unstable();
        let mut place = vec![0u32; n];
        for (p, &(_, i)) in column.iter().enumerate() {
            place[i as usize] = p as u32;
        }
        // Each pair of places at most WINDOW apart, measured once, walking
        // the sorted order: a photo's window mates are the next photo's
        // too, so their rows are still in the cache.
        let ahead: Vec<[f32; WINDOW]> = (0..n)
            .into_par_iter()
            .map(|p| {
                let i = column[p].1 as usize;
                let mut d = [f32::NAN; WINDOW];
                for (w, slot) in d.iter_mut().enumerate() {
                    if let Some(&(_, j)) = column.get(p + w + 1) {
                        *slot = bytes.distance(i, j as usize);
                    }
                }
                d
            })
            .collect();
        lists.par_iter_mut().enumerate().for_each(|(i, list)| {
            let p = place[i] as usize;
            for w in 0..WINDOW {
                if p + w + 1 < n {
                    let j = column[p + w + 1].1;
                    offer(
                        list,
                        Entry {
                            d: ahead[p][w],
                            j,
                            new: true,
                        },
                        keep,
                    );
                }
                if p > w {
                    let j = column[p - w - 1].1;
                    offer(
                        list,
                        Entry {
                            d: ahead[p - w - 1][w],
                            j,
                            new: true,
                        },
                        keep,
                    );
                }
            }
        });
        let counted = (n.saturating_sub(1) * WINDOW) as u64;
        distances += counted;
        progress.advance(1);
    }
    // 2. Neighbours of neighbours, from the lists of the round before.
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        let ticks = Ticks::step(progress, &format!("neighbours, round {rounds}"), n);
        let reverse = reverse_lists(&lists, n, keep);
        let grown: Vec<(Vec<Entry>, u64, u64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                ticks.tick(i);
                grow(&bytes, i, &lists, &reverse, keep)
            })
            .collect();
        distances += grown.iter().map(|g| g.1).sum::<u64>();
        let changed: u64 = grown.iter().map(|g| g.2).sum();
        lists = grown.into_iter().map(|g| g.0).collect();
        if (changed as f64) < 0.001 * (n * keep) as f64 {
            break;
        }
    }
    // The lists measured again exactly: the order of the `k` kept, and the
    // distances reported, are the exact ones.
    distances += (n * keep) as u64;
    let lists = remeasure_all(e, lists, k);
    Nearest {
        pairs: pairs_of(lists, radius),
        method: Method::Descent { rounds },
        distances,
    }
}

/// For each photo, the photos that list it (the nearest `keep` of them).
fn reverse_lists(lists: &[Vec<Entry>], n: usize, keep: usize) -> Vec<Vec<Entry>> {
    let mut reverse: Vec<Vec<Entry>> = vec![Vec::new(); n];
    for (i, list) in lists.iter().enumerate() {
        for x in list {
            reverse[x.j as usize].push(Entry {
                d: x.d,
                j: i as u32,
                new: x.new,
            });
        }
    }
    reverse.par_iter_mut().for_each(|r| {
        r.sort_by(by_distance);
        r.truncate(keep);
    });
    reverse
}

/// Photo `i`'s list after one round: its own list, the photos that list it,
/// and their lists, where the path involves an entry new last round.
/// Returns the list (all entries marked old except those that arrived),
/// the distances computed and the entries that changed.
fn grow(
    bytes: &Bytes,
    i: usize,
    lists: &[Vec<Entry>],
    reverse: &[Vec<Entry>],
    keep: usize,
) -> (Vec<Entry>, u64, u64) {
    let mut list: Vec<Entry> = lists[i]
        .iter()
        .map(|x| Entry { new: false, ..*x })
        .collect();
    let mut seen: Vec<u32> = lists[i].iter().map(|x| x.j).collect();
    seen.push(i as u32);
    let mut candidates: Vec<u32> = Vec::new();
    let via = lists[i].iter().chain(&reverse[i]);
    for hop in via {
        // The photos that list `i` are candidates themselves.
        candidates.push(hop.j);
        for x in &lists[hop.j as usize] {
            if hop.new || x.new {
                candidates.push(x.j);
            }
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let mut counted = 0;
    let mut changed = 0;
    for j in candidates {
        if seen.contains(&j) {
            continue;
        }
        counted += 1;
        let d = bytes.distance(i, j as usize);
        if offer(&mut list, Entry { d, j, new: true }, keep) {
            changed += 1;
        }
    }
    (list, counted, changed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::index::synthetic::{library, Shape};
    use crate::index::tests::planted;
    use crate::index::tests::request;
    use crate::index::{brute_force, hash_all, plan};
    use crate::progress::NoProgress;

    /// Brute-force k nearest within the radius, as pairs.
    pub(crate) fn truth(e: &Embeddings, k: usize, radius: f32) -> Vec<(u32, u32)> {
        let all = brute_force(e, radius);
        let mut lists: Vec<Vec<Entry>> = vec![Vec::new(); e.len()];
        for p in &all {
            lists[p.a as usize].push(Entry {
                d: p.distance,
                j: p.b,
                new: false,
            });
            lists[p.b as usize].push(Entry {
                d: p.distance,
                j: p.a,
                new: false,
            });
        }
        for l in &mut lists {
            l.sort_by(by_distance);
            l.truncate(k);
        }
        pairs_of(lists, radius).iter().map(|p| (p.a, p.b)).collect()
    }

    #[test]
    fn the_byte_dot_product_is_the_same_on_every_path() {
        let mut rng = crate::index::SplitMix64::new(3);
        for len in [0usize, 1, 15, 16, 17, 100, 1280] {
            let a: Vec<i8> = (0..len)
                .map(|_| (rng.below(255) as i32 - 127) as i8)
                .collect();
            let b: Vec<i8> = (0..len)
                .map(|_| (rng.below(255) as i32 - 127) as i8)
                .collect();
            let want: i32 = a.iter().zip(&b).map(|(x, y)| *x as i32 * *y as i32).sum();
            assert_eq!(dot_i8(&a, &b), want, "length {len}");
            assert_eq!(dot_i8_plain(&a, &b), want, "length {len}");
        }
    }

    #[test]
    fn byte_distances_are_within_two_thousandths() {
        let (e, _) = library(Shape::library(200, 1280, 2));
        let bytes = Bytes::new(&e);
        for i in 0..199 {
            let exact = cosine_distance(e.row(i), e.row(i + 1));
            let err = (bytes.distance(i, i + 1) - exact).abs();
            assert!(err < 2e-3, "{i}: {err}");
        }
    }

    #[test]
    fn exact_gives_the_brute_force_neighbours() {
        let e = planted(300, 300, 64, 0.5, 5);
        let got: Vec<(u32, u32)> = exact(&e, 5, 0.5, 0.0, &NoProgress)
            .pairs
            .iter()
            .map(|p| (p.a, p.b))
            .collect();
        assert_eq!(got, truth(&e, 5, 0.5));
        assert!(!got.is_empty());
    }

    #[test]
    fn the_index_stage_below_the_exact_limit_finds_both_needs_exactly() {
        let (e, _) = library(Shape::library(1500, 64, 4));
        let req = request();
        let wanted = crate::index::Wanted {
            threshold: 0.21,
            neighbours: Some((5, 0.5)),
        };
        let got = crate::index::index(&e, wanted, req, &NoProgress).unwrap();
        assert_eq!(got.neighbours.unwrap().method, Method::Exact);
        let pairs: Vec<(u32, u32)> = got.near.iter().map(|p| (p.a, p.b)).collect();
        let mut want = truth(&e, 5, 0.5);
        want.extend(brute_force(&e, 0.21).iter().map(|p| (p.a, p.b)));
        want.sort_unstable();
        want.dedup();
        assert_eq!(pairs, want);
        assert!(got.near.iter().any(|p| p.distance <= 0.21));
        assert!(got.near.iter().any(|p| p.distance > 0.21));
        // The distances are the exact ones.
        for p in &got.near {
            let d = cosine_distance(e.row(p.a as usize), e.row(p.b as usize));
            assert_eq!(p.distance, d);
        }
    }

    /// Every step the index stage tells, with its total and the advances
    /// that followed it.
    #[derive(Default)]
    struct Steps(std::sync::Mutex<Vec<(String, Option<u64>, u64)>>);

    impl Progress for Steps {
        fn step(&self, what: &str, total: Option<u64>) {
            self.0.lock().unwrap().push((what.to_string(), total, 0));
        }
        fn advance(&self, n: u64) {
            let mut steps = self.0.lock().unwrap();
            steps.last_mut().expect("an advance after a step").2 += n;
        }
    }

    #[test]
    fn the_index_stage_tells_each_step_and_its_advances_add_up_to_its_total() {
        let wanted = crate::index::Wanted {
            threshold: 0.21,
            neighbours: Some((5, 0.5)),
        };
        for n in [1500, EXACT_MAX + 500] {
            let (e, _) = library(Shape::library(n, 64, 4));
            let steps = Steps::default();
            crate::index::index(&e, wanted, request(), &steps).unwrap();
            let steps = steps.0.into_inner().unwrap();
            for (what, total, done) in &steps {
                assert_eq!(Some(*done), *total, "{n} photos, {what}");
            }
            let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
            if n <= EXACT_MAX {
                assert_eq!(names, ["every pair"]);
                assert_eq!(steps[0].1, Some(n as u64));
            } else {
                let first = ["hashing", "pairs under the threshold", "neighbour seeds"];
                assert_eq!(names[..3], first);
                assert_eq!(names[3], "neighbours, round 1");
                assert!(names[3..]
                    .iter()
                    .all(|s| s.starts_with("neighbours, round")));
            }
        }
    }

    #[test]
    fn descent_finds_most_neighbours_and_is_deterministic() {
        let (e, _) = library(Shape::library(12_000, 64, 9));
        let req = request();
        let p = plan(&e, 0.21, req).unwrap();
        let codes = hash_all(&e, &p, &NoProgress);
        let a = descent(&e, &codes, p.tables, 5, 0.5, &NoProgress);
        let b = descent(&e, &codes, p.tables, 5, 0.5, &NoProgress);
        let pa: Vec<(u32, u32)> = a.pairs.iter().map(|p| (p.a, p.b)).collect();
        let pb: Vec<(u32, u32)> = b.pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(pa, pb);
        let want = truth(&e, 5, 0.5);
        let got: std::collections::HashSet<_> = pa.into_iter().collect();
        let hit = want.iter().filter(|p| got.contains(p)).count();
        let recall = hit as f64 / want.len() as f64;
        // 64 dimensions are noisier than the model's 1280, where
        // examples/scale_bench.rs measures 0.98 at 100,000 photos.
        assert!(recall >= 0.9, "recall {recall} ({hit}/{})", want.len());
        // Sub-quadratic: far fewer distances than every pair.
        let all = (e.len() * (e.len() - 1) / 2) as u64;
        assert!(a.distances < all / 6, "{} of {all}", a.distances);
    }
}
