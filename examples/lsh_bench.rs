//! LSH at scale on synthetic vectors with planted near pairs.
//!
//!     cargo run --release --example lsh_bench -- [N...] [--dim 1280] [--threshold 0.21]
//!         [--plan-at D] [--no-origin]
//!
//! For each N (default 10000 100000 1000000) it runs itself in a child
//! process (so that peak RSS is per N) which:
//! - makes N unit vectors like the bundled model's (ReLU of Gaussians: all
//!   features non-negative, unrelated vectors at a cosine distance of about
//!   0.7), of which 1% are planted near copies of another vector at exact
//!   distances spread evenly over (0, threshold];
//! - plans the tables with the rule neardup uses (target recall 0.99 at the
//!   threshold, hyperplanes through a fixed centre, as with the bundled
//!   model's `lsh_centre`), hashes, buckets and verifies, timing each stage;
//!   with `--plan-at D` the 0.99 is planned for pairs at distance D instead
//!   (fewer tables; pairs between D and the threshold are found with the
//!   lower probability printed), still verified at the threshold;
//! - measures pair recall against brute force for a sample of photos (by
//!   distance band), candidates per photo and peak RSS;
//! - compares, at the same recall target, the candidates of hyperplanes
//!   through the fixed centre and through the origin (not with --no-origin,
//!   which halves the time at 1M).
//!
//! Prints one line per N. Numbers, not assertions.

mod support;
use support::{arg, peak_rss_mb, sample_centre};

use neardup::index::{self, Centre, Embeddings, LshRequest, SplitMix64};
use neardup::NoProgress;
use rayon::prelude::*;
use std::time::Instant;

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// Base vectors, then planted copies of the first ones (one per 100
/// vectors) at distances spread over (0, threshold].
fn make(n: usize, dim: usize, threshold: f32, seed: u64) -> (Embeddings, Vec<(u32, u32, f32)>) {
    let planted = n / 100;
    let base = n - planted;
    let mut data = vec![0f32; n * dim];
    data[..base * dim]
        .par_chunks_mut(dim)
        .enumerate()
        .for_each(|(i, row)| {
            let mut rng = SplitMix64::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            row.iter_mut()
                .for_each(|x| *x = rng.next_gaussian().max(0.0) as f32);
            normalise(row);
        });
    let (bases, copies) = data.split_at_mut(base * dim);
    let mut pairs = Vec::with_capacity(planted);
    copies
        .par_chunks_mut(dim)
        .enumerate()
        .map(|(p, row)| {
            let mut rng = SplitMix64::new(!seed ^ (p as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
            let src = (p * 97) % base;
            let v = &bases[src * dim..(src + 1) * dim];
            // A random direction orthogonal to v, then the step that gives
            // exactly the target distance: cos = 1 / sqrt(1 + s^2).
            let mut u: Vec<f32> = (0..dim).map(|_| rng.next_gaussian() as f32).collect();
            let uv: f32 = u.iter().zip(v).map(|(a, b)| a * b).sum();
            u.iter_mut().zip(v).for_each(|(a, b)| *a -= uv * b);
            normalise(&mut u);
            let target = threshold * ((p * 619 % 1000) as f32 + 0.5) / 1000.0;
            let cos = 1.0 - target;
            let s = (1.0 / (cos * cos) - 1.0).sqrt();
            for k in 0..dim {
                row[k] = v[k] + s * u[k];
            }
            normalise(row);
            (src as u32, (base + p) as u32, target)
        })
        .collect_into_vec(&mut pairs);
    (Embeddings { dim, data }, pairs)
}

fn one(n: usize, dim: usize, threshold: f32, plan_at: f32, with_origin: bool) {
    let t = Instant::now();
    let (e, _planted) = make(n, dim, threshold, 7);
    let make_s = t.elapsed().as_secs_f64();
    let centre = sample_centre(&e);
    let req = LshRequest {
        bits: None,
        tables: None,
        seed: 42,
        target_recall: 0.99,
        centre: Some(&centre),
    };
    let t = Instant::now();
    let mut plan = index::plan_among(&e, plan_at, req, &[Centre::Model]).unwrap();
    if plan_at != threshold {
        // The sketch screen must keep pairs up to the threshold: its bound
        // comes from a plan at the threshold; the recall there is what
        // these tables give a pair at the threshold.
        let at_t = index::plan_among(&e, threshold, req, &[Centre::Model]).unwrap();
        let q = at_t.bit_flip_at_threshold;
        plan.bit_flip_at_threshold = q;
        plan.pair_recall_at_threshold = index::recall_of(1.0 - q, plan.bits, plan.tables);
    }
    let plan_s = t.elapsed().as_secs_f64();
    eprintln!(
        "N {n}: vectors made in {make_s:.1}s; plan k {} L {} ({plan_s:.2}s)",
        plan.bits, plan.tables
    );
    let t = Instant::now();
    let codes = index::hash_all(&e, &plan, &NoProgress);
    let hash_s = t.elapsed().as_secs_f64();
    drop(codes);
    let t = Instant::now();
    let (found, stats) = index::search(&e, &plan, threshold, |_, _| true);
    let search_s = t.elapsed().as_secs_f64();
    let rss = peak_rss_mb();

    // Recall against brute force for a sample of photos: every planted copy
    // with index in the sample, plus random photos.
    let mut rng = SplitMix64::new(99);
    let queries: Vec<usize> = (0..200).map(|_| rng.below(n as u64) as usize).collect();
    let q_planted: Vec<usize> = (0..200)
        .map(|k| n - 1 - (k * 37) % (n / 100).max(1))
        .collect();
    let all_q: Vec<usize> = queries.into_iter().chain(q_planted).collect();
    let truth: Vec<(u32, u32, f32)> = all_q
        .par_iter()
        .flat_map_iter(|&q| {
            let e = &e;
            (0..n).filter_map(move |j| {
                if j == q {
                    return None;
                }
                let d = index::cosine_distance(e.row(q), e.row(j));
                (d <= threshold).then_some((q.min(j) as u32, q.max(j) as u32, d))
            })
        })
        .collect();
    let found_set: std::collections::HashSet<(u32, u32)> =
        found.iter().map(|p| (p.a, p.b)).collect();
    let mut bands = [(0usize, 0usize); 3];
    for &(a, b, d) in &truth {
        let band = ((d / threshold * 3.0) as usize).min(2);
        bands[band].1 += 1;
        if found_set.contains(&(a, b)) {
            bands[band].0 += 1;
        }
    }
    let hit: usize = bands.iter().map(|b| b.0).sum();
    let total: usize = bands.iter().map(|b| b.1).sum();

    // The same recall target through the origin: how many more candidates.
    let t = Instant::now();
    let origin = with_origin.then(|| {
        let mut origin = index::plan_among(&e, plan_at, req, &[Centre::Origin]).unwrap();
        if plan_at != threshold {
            let at_t = index::plan_among(&e, threshold, req, &[Centre::Origin]).unwrap();
            origin.bit_flip_at_threshold = at_t.bit_flip_at_threshold;
        }
        let (_, ostats) = index::search(&e, &origin, threshold, |_, _| true);
        format!(
            "Through the origin instead: k {} L {}, {:.1} collisions/photo, {:.2}s",
            origin.bits,
            origin.tables,
            ostats.collisions as f64 / n as f64,
            t.elapsed().as_secs_f64()
        )
    });
    println!(
        "N {n:>8}: plan {plan_s:.2}s, hash {hash_s:.2}s, hash+bucket+verify {search_s:.2}s \
         (k {} L {}, recall at threshold by the rule {:.3}); {:.1} collisions/photo \
         ({:.2} verified after the sketch screen), \
         {} pairs found; recall vs brute force {:.4} ({hit}/{total}; by band \
         (0,{:.2}] {}/{}, ({:.2},{:.2}] {}/{}, ({:.2},{:.2}] {}/{}); peak RSS {rss:.0} MB \
         (vectors {:.0} MB; made in {make_s:.1}s). {}",
        plan.bits,
        plan.tables,
        plan.pair_recall_at_threshold,
        stats.collisions as f64 / n as f64,
        stats.exact as f64 / n as f64,
        found.len(),
        hit as f64 / total.max(1) as f64,
        threshold / 3.0,
        bands[0].0,
        bands[0].1,
        threshold / 3.0,
        threshold * 2.0 / 3.0,
        bands[1].0,
        bands[1].1,
        threshold * 2.0 / 3.0,
        threshold,
        bands[2].0,
        bands[2].1,
        (n * dim * 4) as f64 / 1e6,
        origin.unwrap_or_default(),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dim = arg(&args, "--dim", 1280usize);
    let threshold = arg(&args, "--threshold", 0.21f32);
    let plan_at = arg(&args, "--plan-at", threshold);
    if let Some(n) = args
        .iter()
        .position(|a| a == "--one")
        .and_then(|i| args.get(i + 1))
    {
        one(
            n.parse().expect("N"),
            dim,
            threshold,
            arg(&args, "--plan-at", threshold),
            !args.iter().any(|a| a == "--no-origin"),
        );
        return;
    }
    let mut sizes: Vec<usize> = args[1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    println!(
        "LSH on {} threads, dim {dim}, threshold {threshold}, tables planned for 0.99 at {plan_at}",
        rayon::current_num_threads()
    );
    for n in sizes {
        let status = std::process::Command::new(&args[0])
            .args(["--one", &n.to_string(), "--dim", &dim.to_string()])
            .args(["--threshold", &threshold.to_string()])
            .args(["--plan-at", &plan_at.to_string()])
            .args(args.iter().filter(|a| *a == "--no-origin"))
            .status()
            .expect("run the bench");
        assert!(status.success());
    }
}
