//! The LSH index: random-hyperplane (SimHash) tables that propose candidate
//! pairs, and the rule that chooses their size.
//!
//! Every vector is hashed into `L` tables of `k` sign bits each; two photos
//! become a candidate pair when they share a bucket in at least one table.
//! The hyperplanes pass through a centre: the model's own (its sidecar's
//! `lsh_centre`, the mean of its vectors over reference photos), else the
//! mean of the scanned vectors, or the origin when that is cheaper. The
//! model's vectors sit in a cone (all features are non-negative), and planes
//! through the origin waste most bits on it. Exact distances are always
//! computed on the raw vectors afterwards.
//!
//! The projections of a block of vectors onto a batch of hyperplanes are one
//! matrix product; the sign bits are packed, one `u64` per vector and table.
//! Each table is then sorted and its buckets enumerated; a pair is verified
//! (exact distance) only in the first table where it collides, so candidate
//! pairs are never collected in one list.
//!
//! ## How `k` and `L` are chosen
//! For a pair at exactly the threshold distance `t` (cosine distance, so a
//! chord of `d = sqrt(2t)` between unit vectors), the angle between the two
//! centred vectors is at most `θ = 2·asin(d / (2·r))`, where `r` is the
//! smallest distance of any vector to the centre (`r = 1` for the origin).
//! One bit agrees with probability `p = 1 − θ/π`, a table of `k` bits with
//! `p^k`, and at least one of `L` tables with `1 − (1 − p^k)^L`. For each `k`
//! the rule takes the smallest `L` that makes this ≥ 99%, estimates the cost
//! (hashing `n·k·L` projections plus verifying the expected number of
//! chance collisions, measured on a seeded sample of random pairs) and keeps
//! the cheapest `k`. Pairs closer than the threshold collide more often, so
//! every pair a brute-force comparison would keep is found with probability
//! ≥ 99%.

use crate::error::{Error, Result};
use crate::progress::{NoProgress, Progress};
use rayon::prelude::*;

pub mod memo;
pub mod nearest;
pub mod synthetic;

pub use nearest::Nearest;

/// Vectors stored row by row in one buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Embeddings {
    pub fn new(dim: usize) -> Embeddings {
        Embeddings {
            dim,
            data: Vec::new(),
        }
    }
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    pub fn push(&mut self, v: &[f32]) {
        assert_eq!(
            v.len(),
            self.dim,
            "a vector of length {} among vectors of length {}",
            v.len(),
            self.dim
        );
        self.data.extend_from_slice(v);
    }
    /// [`Embeddings::push`] that returns an error, instead of panicking, on a
    /// vector of another length.
    pub fn try_push(&mut self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(Error::Inference(format!(
                "a vector of length {} among vectors of length {}",
                v.len(),
                self.dim
            )));
        }
        self.data.extend_from_slice(v);
        Ok(())
    }
}

/// Dot product with several accumulators so that it vectorises.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Cosine distance `1 − cos` between two unit vectors, in [0, 2].
#[inline]
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - dot(a, b)).clamp(0.0, 2.0)
}

/// Where the hyperplanes pass through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Centre {
    /// Planes through the origin.
    Origin,
    /// Planes through the mean of the scanned vectors.
    DataMean,
    /// Planes through the centre shipped with the model (the mean of its
    /// vectors over a reference set of photos): the same for every scan.
    Model,
}

/// The size of the LSH tables and how they were chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct LshPlan {
    pub bits: usize,
    pub tables: usize,
    pub seed: u64,
    pub centre: Centre,
    /// The point the hyperplanes pass through (empty for the origin).
    pub centre_vector: Vec<f32>,
    /// Probability that a pair exactly at the threshold shares a bucket in
    /// at least one table (a lower bound for closer pairs).
    pub pair_recall_at_threshold: f64,
    /// Probability that one sign bit differs for a pair exactly at the
    /// threshold (at most; closer pairs differ less).
    pub bit_flip_at_threshold: f64,
}

/// What the user fixed; `None` lets the rule choose.
#[derive(Debug, Clone, Copy)]
pub struct LshRequest<'a> {
    pub bits: Option<usize>,
    pub tables: Option<usize>,
    pub seed: u64,
    pub target_recall: f64,
    /// The model's own centre (its sidecar's `lsh_centre`), if it has one.
    pub centre: Option<&'a [f32]>,
}

/// The share of brute-force pairs LSH must find in a scan.
pub const TARGET_RECALL: f64 = 0.99;
pub const MAX_BITS: usize = 64;
pub const MAX_TABLES: usize = 4096;

/// The SplitMix64 generator: small, fast, and the same on every platform,
/// so that a seed gives the same hyperplanes forever.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    pub fn next_f64(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn next_gaussian(&mut self) -> f64 {
        let (u1, u2) = (self.next_f64(), self.next_f64());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The mean of all vectors (summed in f64, in order: deterministic).
pub fn mean_vector(e: &Embeddings) -> Vec<f32> {
    let mut acc = vec![0f64; e.dim];
    for i in 0..e.len() {
        for (a, x) in acc.iter_mut().zip(e.row(i)) {
            *a += *x as f64;
        }
    }
    let n = e.len().max(1) as f64;
    acc.into_iter().map(|a| (a / n) as f32).collect()
}

fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

fn sub(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Per-bit collision probability of a pair at the threshold, given the
/// smallest distance `r` of a vector to the centre.
fn bit_prob_at_threshold(threshold: f64, r: f64) -> f64 {
    let chord = (2.0 * threshold).sqrt();
    let s = chord / (2.0 * r);
    if s >= 1.0 {
        return 0.0;
    }
    1.0 - 2.0 * s.asin() / std::f64::consts::PI
}

fn tables_for(p: f64, bits: usize, target: f64) -> Option<usize> {
    let pk = p.powi(bits as i32);
    if pk >= 1.0 {
        return Some(1);
    }
    if pk <= 0.0 {
        return None;
    }
    let l = ((1.0 - target).ln() / (1.0 - pk).ln()).ceil();
    (l.is_finite() && l <= MAX_TABLES as f64).then_some(l.max(1.0) as usize)
}

/// Probability that a pair whose sign bits agree with probability `p` shares
/// a bucket in at least one of `tables` tables of `bits` bits.
pub fn recall_of(p: f64, bits: usize, tables: usize) -> f64 {
    1.0 - (1.0 - p.powi(bits as i32)).powi(tables as i32)
}

/// The vector the hyperplanes pass through.
fn centre_vector(e: &Embeddings, centre: Centre, model: Option<&[f32]>) -> Vec<f32> {
    match (centre, model) {
        (Centre::Origin, _) => vec![0f32; e.dim],
        (Centre::Model, Some(c)) => c.to_vec(),
        _ => mean_vector(e),
    }
}

/// Choose `k`, `L` and the centre for these vectors and this threshold.
pub fn plan(e: &Embeddings, threshold: f32, req: LshRequest) -> Result<LshPlan> {
    plan_among(
        e,
        threshold,
        req,
        &[Centre::Origin, Centre::DataMean, Centre::Model],
    )
}

/// [`plan`], with the centre chosen among `allowed` only (the model's centre
/// needs `req.centre`, the data mean is used only without it).
pub fn plan_among(
    e: &Embeddings,
    threshold: f32,
    req: LshRequest,
    allowed: &[Centre],
) -> Result<LshPlan> {
    if let Some(b) = req.bits {
        if b == 0 || b > MAX_BITS {
            return Err(Error::Param(format!("--bits must be in 1..={MAX_BITS}")));
        }
    }
    if let Some(t) = req.tables {
        if t == 0 || t > MAX_TABLES {
            return Err(Error::Param(format!(
                "--tables must be in 1..={MAX_TABLES}"
            )));
        }
    }
    if let Some(c) = req.centre {
        if c.len() != e.dim && !e.is_empty() {
            return Err(Error::Model(format!(
                "the model's LSH centre has {} numbers, its vectors {}",
                c.len(),
                e.dim
            )));
        }
    }
    let n = e.len();
    let t = threshold as f64;
    // The shifted centre: the model's own when it ships one, else the mean
    // of these vectors.
    let shifted = if req.centre.is_some() {
        Centre::Model
    } else {
        Centre::DataMean
    };
    let mean = centre_vector(e, shifted, req.centre);
    let r_min = (0..n)
        .into_par_iter()
        .map(|i| norm(&sub(e.row(i), &mean)) as f64)
        .reduce(|| f64::INFINITY, f64::min);
    // Angles of a seeded sample of random pairs, in both centrings.
    let mut rng = SplitMix64::new(req.seed ^ 0x5EED_5A3F_1E00_0001);
    let total_pairs = n * n.saturating_sub(1) / 2;
    let samples = total_pairs.min(4000);
    let mut angles_origin = Vec::with_capacity(samples);
    let mut angles_shifted = Vec::with_capacity(samples);
    while angles_origin.len() < samples {
        let i = rng.below(n as u64) as usize;
        let j = rng.below(n as u64) as usize;
        if i == j {
            continue;
        }
        let (a, b) = (e.row(i), e.row(j));
        angles_origin.push(angle(a, b));
        angles_shifted.push(angle(&sub(a, &mean), &sub(b, &mean)));
    }
    let d = e.dim.max(1) as f64;
    let mut best: Option<(f64, LshPlan)> = None;
    let candidates = [
        (Centre::Origin, 1.0, &angles_origin),
        (shifted, r_min, &angles_shifted),
    ];
    for (centre, r, angles) in candidates {
        if (n < 2 && centre == Centre::DataMean) || !allowed.contains(&centre) {
            continue;
        }
        let p1 = bit_prob_at_threshold(t, r);
        let bit_range: Vec<usize> = match req.bits {
            Some(b) => vec![b],
            None => (1..=MAX_BITS).collect(),
        };
        for k in bit_range {
            let tables = match req.tables {
                Some(l) => l,
                None => match tables_for(p1, k, req.target_recall) {
                    Some(l) => l,
                    None => continue,
                },
            };
            let recall = recall_of(p1, k, tables);
            if req.tables.is_some() && req.bits.is_none() && recall < req.target_recall && k > 1 {
                continue;
            }
            let chance = if angles.is_empty() {
                0.0
            } else {
                angles
                    .iter()
                    .map(|a| (1.0 - a / std::f64::consts::PI).powi(k as i32))
                    .sum::<f64>()
                    / angles.len() as f64
            };
            // Estimated work in multiply-adds: the projections (d per bit
            // per table per vector, in a matrix product), sorting each table
            // (taken as 64 per vector), and for every chance collision the
            // comparison with the earlier tables and the sketch screen: two
            // random reads of a photo's codes, measured by examples/lsh_bench
            // at about 4,000 multiply-adds of the matrix product.
            let (nf, lf, kf) = (n as f64, tables as f64, k as f64);
            let cost =
                nf * d * kf * lf + 64.0 * nf * lf + 4000.0 * lf * total_pairs as f64 * chance;
            let centre_vector = if centre == Centre::Origin {
                Vec::new()
            } else {
                mean.clone()
            };
            let plan = LshPlan {
                bits: k,
                tables,
                seed: req.seed,
                centre,
                centre_vector,
                pair_recall_at_threshold: recall,
                bit_flip_at_threshold: 1.0 - p1,
            };
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, plan));
            }
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| {
        Error::Param(format!(
            "no table size reaches {:.0}% recall at threshold {threshold}: give --bits and --tables",
            req.target_recall * 100.0
        ))
    })
}

fn angle(a: &[f32], b: &[f32]) -> f64 {
    (dot(a, b) / (norm(a) * norm(b)).max(1e-12))
        .clamp(-1.0, 1.0)
        .acos() as f64
}

/// The hyperplanes of one table: `bits` rows of `dim` Gaussian numbers, from
/// a stream that depends only on (seed, table), so that adding tables never
/// changes the earlier ones.
fn hyperplanes(seed: u64, table: usize, bits: usize, dim: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
            ^ (table as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    (0..bits * dim)
        .map(|_| rng.next_gaussian() as f32)
        .collect()
}

/// Statistics of the candidate stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateStats {
    /// Bucket collisions summed over tables (before deduplication).
    pub collisions: u64,
    /// Distinct candidate pairs that passed the sketch screen: each had its
    /// exact distance computed once.
    pub exact: u64,
}

/// Rows of vectors projected together: large enough for the matrix product
/// to reuse each hyperplane across rows, small enough to stay in cache.
const HASH_BLOCK: usize = 256;
/// Hyperplanes projected in one pass (bounds the planes kept in memory).
const PLANES_PER_PASS: usize = 1024;

/// Every vector's code in every table, packed: `codes[i * tables + t]` holds
/// the `bits` sign bits of vector `i` in table `t`. The projections of a
/// block of rows onto a batch of hyperplanes are one matrix product.
pub fn hash_all(e: &Embeddings, plan: &LshPlan, progress: &dyn Progress) -> Vec<u64> {
    let (n, dim, k, l) = (e.len(), e.dim, plan.bits, plan.tables);
    let mut codes = vec![0u64; n * l];
    if n == 0 {
        return codes;
    }
    let tables_per_pass = (PLANES_PER_PASS / k).max(1);
    progress.step("hashing", Some((n * l.div_ceil(tables_per_pass)) as u64));
    let mut first = 0;
    while first < l {
        let last = (first + tables_per_pass).min(l);
        let m = (last - first) * k;
        let planes: Vec<f32> = (first..last)
            .flat_map(|t| hyperplanes(plan.seed, t, k, dim))
            .collect();
        // sign(p · (v − c)) = sign(p · v − p · c): project the raw rows.
        let offsets: Vec<f32> = if plan.centre_vector.is_empty() {
            vec![0.0; m]
        } else {
            (0..m)
                .map(|r| dot(&planes[r * dim..(r + 1) * dim], &plan.centre_vector))
                .collect()
        };
        codes
            .par_chunks_mut(HASH_BLOCK * l)
            .enumerate()
            .for_each(|(block, out)| {
                let rows = out.len() / l;
                let start = block * HASH_BLOCK;
                let mut proj = vec![0f32; rows * m];
                // SAFETY: the three buffers hold rows x dim, m x dim (read
                // as its transpose, dim x m) and rows x m floats, with the
                // strides given.
                unsafe {
                    matrixmultiply::sgemm(
                        rows,
                        dim,
                        m,
                        1.0,
                        e.data[start * dim..].as_ptr(),
                        dim as isize,
                        1,
                        planes.as_ptr(),
                        1,
                        dim as isize,
                        0.0,
                        proj.as_mut_ptr(),
                        m as isize,
                        1,
                    );
                }
                for r in 0..rows {
                    let p = &proj[r * m..(r + 1) * m];
                    for (tt, t) in (first..last).enumerate() {
                        let mut code = 0u64;
                        for b in 0..k {
                            if p[tt * k + b] >= offsets[tt * k + b] {
                                code |= 1 << b;
                            }
                        }
                        out[r * l + t] = code;
                    }
                }
                progress.advance(rows as u64);
            });
        first = last;
    }
    codes
}

/// Bits of the sketch that screens candidates before their exact distance.
const SKETCH_BITS: usize = 512;

/// Every pair that shares a bucket in at least one table, passes `keep`, and
/// is within `radius` (exact distance), sorted by `(a, b)`.
///
/// Tables are bucketed in parallel, one sorted column of codes at a time.
/// A pair is verified only in the first table where it collides (its codes
/// in the earlier tables are compared), so no list of candidates is ever
/// built: memory is the packed codes plus one table's column.
///
/// Before that, every collision is screened by the Hamming
/// distance between the codes of the first tables (up to 512 bits, one
/// cache line per photo instead of the whole vector): a pair is dropped only
/// when more bits differ than a pair at the radius would show with
/// probability 1 in 30,000 (the binomial tail at 4 standard deviations).
pub fn search(
    e: &Embeddings,
    plan: &LshPlan,
    radius: f32,
    keep: impl Fn(u32, u32) -> bool + Sync,
) -> (Vec<ScoredPair>, CandidateStats) {
    let codes = hash_all(e, plan, &NoProgress);
    search_codes(e, plan, &codes, radius, keep, &NoProgress)
}

/// [`search`] with the codes [`hash_all`] gave for this plan.
pub fn search_codes(
    e: &Embeddings,
    plan: &LshPlan,
    codes: &[u64],
    radius: f32,
    keep: impl Fn(u32, u32) -> bool + Sync,
    progress: &dyn Progress,
) -> (Vec<ScoredPair>, CandidateStats) {
    let (n, l, k) = (e.len(), plan.tables, plan.bits);
    progress.step("pairs under the threshold", Some(l as u64));
    let sketch_words = l.min(SKETCH_BITS.div_ceil(k));
    let sketch_bits = (sketch_words * k) as f64;
    let q = plan.bit_flip_at_threshold.clamp(0.0, 1.0);
    let max_flips = if sketch_bits >= 64.0 && q < 0.5 {
        (sketch_bits * q + 4.0 * (sketch_bits * q * (1.0 - q)).sqrt()).ceil() as u32 + 1
    } else {
        u32::MAX
    };
    let per_table: Vec<(Vec<ScoredPair>, CandidateStats)> = (0..l)
        .into_par_iter()
        .map(|t| {
            let mut column: Vec<(u64, u32)> =
                (0..n).map(|i| (codes[i * l + t], i as u32)).collect();
            column.sort_unstable();
            let mut found = Vec::new();
            let mut st = CandidateStats::default();
            for bucket in column.chunk_by(|x, y| x.0 == y.0) {
                for (x, &(_, i)) in bucket.iter().enumerate() {
                    let ci = &codes[i as usize * l..(i as usize + 1) * l];
                    for &(_, j) in &bucket[x + 1..] {
                        st.collisions += 1;
                        if !keep(i, j) {
                            continue;
                        }
                        let cj = &codes[j as usize * l..(j as usize + 1) * l];
                        // The screen first: it reads one cache line.
                        let flips: u32 = ci[..sketch_words]
                            .iter()
                            .zip(&cj[..sketch_words])
                            .map(|(a, b)| (a ^ b).count_ones())
                            .sum();
                        if flips > max_flips {
                            continue;
                        }
                        if ci[..t].iter().zip(&cj[..t]).any(|(a, b)| a == b) {
                            continue; // verified in an earlier table
                        }
                        st.exact += 1;
                        let d = cosine_distance(e.row(i as usize), e.row(j as usize));
                        if d <= radius {
                            found.push(ScoredPair {
                                a: i,
                                b: j,
                                distance: d,
                            });
                        }
                    }
                }
            }
            progress.advance(1);
            (found, st)
        })
        .collect();
    let mut stats = CandidateStats::default();
    let mut found = Vec::new();
    for (f, st) in per_table {
        found.extend(f);
        stats.collisions += st.collisions;
        stats.exact += st.exact;
    }
    found.sort_unstable_by_key(|p| (p.a, p.b));
    (found, stats)
}

/// What the index stage must find.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wanted {
    /// Every pair at or under this distance (with the plan's recall).
    pub threshold: f32,
    /// And each photo's this many nearest neighbours within this distance
    /// (the geometric check's candidates in `similar` mode).
    pub neighbours: Option<(usize, f32)>,
}

/// The index stage's result: the plan, the pairs found with their exact
/// distances (sorted by `(a, b)`, each once), and what finding them cost.
#[derive(Debug, Clone)]
pub struct Indexed {
    pub plan: LshPlan,
    pub near: Vec<ScoredPair>,
    pub candidates: CandidateStats,
    /// How the nearest neighbours were found, when they were wanted.
    pub neighbours: Option<NeighbourStats>,
}

/// What the neighbour search did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeighbourStats {
    pub method: nearest::Method,
    pub neighbours: usize,
    pub radius: f32,
    /// Distances it computed (the exact search: every ordered pair, in
    /// matrix products; the descent: mostly between the vectors as bytes,
    /// then its final lists in f32).
    pub distances: u64,
    /// Pairs it found beyond the threshold.
    pub pairs: u64,
}

/// The index stage: plan the tables for the threshold ([`plan`]), hash
/// every vector into them, keep the colliding pairs within the threshold
/// (exact distance, [`search_codes`]) and, when wanted, each photo's nearest
/// neighbours ([`nearest::descent`], seeded by the same codes). Up to
/// [`nearest::EXACT_MAX`] photos, with neighbours wanted, every pair is
/// compared instead ([`nearest::exact`]): cheaper there, and exact. Nothing
/// of size `n²` is kept, whatever the radius.
///
/// `progress` hears of each step (hashing, the pairs under the threshold,
/// the neighbour search's rounds).
pub fn index(
    e: &Embeddings,
    wanted: Wanted,
    req: LshRequest,
    progress: &dyn Progress,
) -> Result<Indexed> {
    let plan = plan(e, wanted.threshold, req)?;
    let n = e.len();
    let Some((k, radius)) = wanted.neighbours else {
        let codes = hash_all(e, &plan, progress);
        let (near, candidates) =
            search_codes(e, &plan, &codes, wanted.threshold, |_, _| true, progress);
        return Ok(Indexed {
            plan,
            near,
            candidates,
            neighbours: None,
        });
    };
    let (near, candidates, found) = if n <= nearest::EXACT_MAX {
        // Small enough to compare every pair: both needs at once, exactly.
        let found = nearest::exact(e, k, radius, wanted.threshold, progress);
        let all = CandidateStats {
            collisions: 0,
            exact: (n * n.saturating_sub(1) / 2) as u64,
        };
        (Vec::new(), all, found)
    } else {
        let codes = hash_all(e, &plan, progress);
        let keep = |_, _| true;
        let (near, candidates) = search_codes(e, &plan, &codes, wanted.threshold, keep, progress);
        let found = nearest::descent(e, &codes, plan.tables, k, radius, progress);
        (near, candidates, found)
    };
    let near = merge(near, found.pairs);
    let beyond = near
        .iter()
        .filter(|p| p.distance > wanted.threshold)
        .count();
    let neighbours = Some(NeighbourStats {
        method: found.method,
        neighbours: k,
        radius,
        distances: found.distances,
        pairs: beyond as u64,
    });
    Ok(Indexed {
        plan,
        near,
        candidates,
        neighbours,
    })
}

/// Two lists of pairs sorted by `(a, b)`, merged, each pair once (the
/// distances of a pair in both are the same number).
pub(crate) fn merge(a: Vec<ScoredPair>, b: Vec<ScoredPair>) -> Vec<ScoredPair> {
    let mut all = a;
    all.extend(b);
    all.sort_unstable_by_key(|p| (p.a, p.b));
    all.dedup_by_key(|p| (p.a, p.b));
    all
}

/// A pair of photos (indices into the embeddings) and their exact distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub a: u32,
    pub b: u32,
    pub distance: f32,
}

/// Every pair under the threshold by brute force (for tests and benchmarks).
pub fn brute_force(e: &Embeddings, threshold: f32) -> Vec<ScoredPair> {
    let n = e.len();
    (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            (i + 1..n).filter_map(move |j| {
                let d = cosine_distance(e.row(i), e.row(j));
                (d <= threshold).then_some(ScoredPair {
                    a: i as u32,
                    b: j as u32,
                    distance: d,
                })
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::embed::l2_normalise;

    /// Unit vectors in the non-negative orthant (like the model's), with
    /// planted near pairs spread over (0, max_dist].
    pub(crate) fn planted(
        n_base: usize,
        n_pairs: usize,
        dim: usize,
        max_dist: f32,
        seed: u64,
    ) -> Embeddings {
        let mut rng = SplitMix64::new(seed);
        let mut e = Embeddings::new(dim);
        let mut bases = Vec::new();
        for _ in 0..n_base {
            // ReLU features, like the model's: random pairs sit at a cosine
            // distance of about 0.7, as unrelated photos do.
            let mut v: Vec<f32> = (0..dim)
                .map(|_| rng.next_gaussian().max(0.0) as f32)
                .collect();
            l2_normalise(&mut v);
            e.push(&v);
            bases.push(v);
        }
        for p in 0..n_pairs {
            let base = &bases[p % n_base];
            // Move along a random direction until the distance is the target.
            let target = max_dist * ((p % 97) as f32 + 1.0) / 97.0;
            let dir: Vec<f32> = (0..dim).map(|_| rng.next_gaussian() as f32).collect();
            let (mut lo, mut hi) = (0f32, 4f32);
            let mut v = base.clone();
            for _ in 0..40 {
                let mid = (lo + hi) / 2.0;
                v = base
                    .iter()
                    .zip(&dir)
                    .map(|(b, d)| (b + mid * d * 0.05).max(0.0))
                    .collect();
                l2_normalise(&mut v);
                if cosine_distance(&v, base) < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            e.push(&v);
        }
        e
    }

    /// The rule's own tables (seed 1, recall 0.99, the data's centre).
    pub(crate) fn request() -> LshRequest<'static> {
        LshRequest {
            bits: None,
            tables: None,
            seed: 1,
            target_recall: 0.99,
            centre: None,
        }
    }

    fn pair_set(p: &[ScoredPair]) -> std::collections::HashSet<(u32, u32)> {
        p.iter().map(|s| (s.a, s.b)).collect()
    }

    #[test]
    fn lsh_finds_99_percent_of_brute_force_pairs() {
        let threshold = 0.21;
        for seed in [1u64, 2, 3] {
            let e = planted(1500, 1500, 256, threshold, seed);
            let plan = plan(
                &e,
                threshold,
                LshRequest {
                    bits: None,
                    tables: None,
                    seed,
                    target_recall: 0.99,
                    centre: None,
                },
            )
            .unwrap();
            assert!(plan.pair_recall_at_threshold >= 0.99, "{plan:?}");
            let (near, stats) = search(&e, &plan, threshold, |_, _| true);
            let found = pair_set(&near);
            let truth = pair_set(&brute_force(&e, threshold));
            assert!(truth.len() >= 1000, "planted pairs: {}", truth.len());
            let hit = truth.iter().filter(|p| found.contains(p)).count();
            let recall = hit as f64 / truth.len() as f64;
            assert!(recall >= 0.99, "seed {seed}: recall {recall} with {plan:?}");
            // And LSH prunes: well under the number of all pairs.
            let all = (e.len() * (e.len() - 1) / 2) as u64;
            assert!(
                stats.exact < all / 3,
                "{} exact distances of {all} pairs with {plan:?}",
                stats.exact
            );
            // Nothing found is over the threshold.
            assert!(found.is_subset(&truth));
        }
    }

    #[test]
    fn a_fixed_centre_needs_fewer_candidates_than_the_origin_at_equal_recall() {
        let threshold = 0.21;
        let e = planted(2000, 500, 256, threshold, 5);
        // The centre as a model ships it: the mean of other vectors of the
        // same kind.
        let centre = mean_vector(&planted(500, 0, 256, threshold, 6));
        let req = LshRequest {
            bits: None,
            tables: None,
            seed: 3,
            target_recall: 0.99,
            centre: Some(&centre),
        };
        let shifted = plan_among(&e, threshold, req, &[Centre::Model]).unwrap();
        let origin = plan_among(&e, threshold, req, &[Centre::Origin]).unwrap();
        assert_eq!(shifted.centre, Centre::Model);
        assert!(shifted.pair_recall_at_threshold >= 0.99);
        assert!(origin.pair_recall_at_threshold >= 0.99);
        let (found_s, st_s) = search(&e, &shifted, threshold, |_, _| true);
        let (found_o, st_o) = search(&e, &origin, threshold, |_, _| true);
        assert!(
            st_s.collisions < st_o.collisions,
            "centre {st_s:?} ({shifted:?}) vs origin {st_o:?} ({origin:?})"
        );
        let truth = pair_set(&brute_force(&e, threshold));
        for found in [&found_s, &found_o] {
            let hit = pair_set(found).intersection(&truth).count();
            assert!(hit as f64 >= 0.99 * truth.len() as f64);
        }
    }

    #[test]
    fn fixed_bits_and_tables_are_respected_and_report_their_recall() {
        let e = planted(200, 100, 64, 0.2, 9);
        let p = plan(
            &e,
            0.2,
            LshRequest {
                bits: Some(12),
                tables: Some(5),
                ..request()
            },
        )
        .unwrap();
        assert_eq!((p.bits, p.tables), (12, 5));
        assert!(p.pair_recall_at_threshold < 0.99);
        let p = plan(
            &e,
            0.2,
            LshRequest {
                bits: Some(8),
                tables: None,
                ..request()
            },
        )
        .unwrap();
        assert!(p.pair_recall_at_threshold >= 0.99);
        assert!(plan(
            &e,
            0.2,
            LshRequest {
                bits: Some(65),
                tables: None,
                ..request()
            }
        )
        .is_err());
    }

    #[test]
    fn same_seed_same_candidates_other_seed_other_planes() {
        let e = planted(300, 200, 64, 0.2, 4);
        let req = LshRequest {
            bits: Some(10),
            tables: Some(8),
            seed: 42,
            target_recall: 0.99,
            centre: None,
        };
        let p = plan(&e, 0.2, req).unwrap();
        assert_eq!(hash_all(&e, &p, &NoProgress), hash_all(&e, &p, &NoProgress));
        assert_eq!(
            search(&e, &p, 0.5, |_, _| true),
            search(&e, &p, 0.5, |_, _| true)
        );
        assert_ne!(hyperplanes(42, 0, 4, 8), hyperplanes(43, 0, 4, 8));
        assert_ne!(hyperplanes(42, 0, 4, 8), hyperplanes(42, 1, 4, 8));
    }

    #[test]
    fn tiny_inputs_do_not_fail() {
        let mut e = Embeddings::new(4);
        let p = plan(&e, 0.2, request()).unwrap();
        assert!(search(&e, &p, 0.2, |_, _| true).0.is_empty());
        e.push(&[1.0, 0.0, 0.0, 0.0]);
        let p = plan(&e, 0.2, request()).unwrap();
        assert!(search(&e, &p, 0.2, |_, _| true).0.is_empty());
        e.push(&[1.0, 0.0, 0.0, 0.0]);
        let p = plan(&e, 0.2, request()).unwrap();
        assert_eq!(
            search(&e, &p, 0.2, |_, _| true).0,
            vec![ScoredPair {
                a: 0,
                b: 1,
                distance: 0.0
            }]
        );
    }
}
