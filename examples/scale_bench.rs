//! The default mode's index stage at library scale, on synthetic vectors
//! like the bundled model's ([`neardup::index::synthetic`]: topics, scenes,
//! copies, 1280 dimensions).
//!
//!     cargo run --release --example scale_bench -- [N...] [--queries 300] [--dim 1280]
//!         [--bits K --tables L]
//!
//! For each N (default 10000 100000 1000000) it runs itself in a child
//! process, so that peak RSS is per N, and prints one line:
//! - the plan (k bits × L tables for the threshold 0.21, hyperplanes through
//!   a fixed centre as with the model's `lsh_centre`) and the neighbour
//!   method (exact up to `EXACT_MAX` photos, else LSH seeds + descent);
//! - seconds for planning, hashing, searching the threshold pairs and for
//!   the neighbour search: the pieces `index::index` runs in a scan;
//! - recall against brute force for `--queries` photos drawn at random
//!   (seeded) and as many copies: of the pairs under the threshold, and of
//!   each query's 5 nearest neighbours within 0.5 (the geometric check's
//!   candidates);
//! - distances computed per photo, pairs kept per photo, peak RSS.
//!
//! Up to `EXACT_MAX` photos it also times what the descent would cost
//! there, the reason for the limit.
//!
//! `--bits` and `--tables` fix the tables as the scan's flags do (the rule
//! plans 17 × 890 for the threshold at 1,000,000 photos: 7 GB of codes).
//!
//! Numbers, not assertions.

mod support;
use support::{arg, peak_rss_mb, run_children, sample_centre, sizes, truth};
use support::{NEIGHBOURS, RADIUS, THRESHOLD};

use neardup::index::synthetic::{library, Shape};
use neardup::index::{self, nearest, LshRequest, SplitMix64};
use neardup::NoProgress;
use rayon::prelude::*;
use std::collections::HashSet;
use std::time::Instant;

fn one(n: usize, dim: usize, queries: usize, fixed: (Option<usize>, Option<usize>)) {
    let t = Instant::now();
    let (e, origins) = library(Shape::library(n, dim, 7));
    let make_s = t.elapsed().as_secs_f64();
    let centre = sample_centre(&e);
    let req = LshRequest {
        bits: fixed.0,
        tables: fixed.1,
        seed: 42,
        target_recall: index::TARGET_RECALL,
        centre: Some(&centre),
    };
    // The pieces `index::index` runs, timed one by one.
    let t = Instant::now();
    let plan = index::plan(&e, THRESHOLD, req).expect("plan");
    let plan_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (under, found, method, hash_s, search_s) = if n <= nearest::EXACT_MAX {
        let found = nearest::exact(&e, NEIGHBOURS, RADIUS, THRESHOLD, &NoProgress);
        (Vec::new(), found, "exact", 0.0, 0.0)
    } else {
        let codes = index::hash_all(&e, &plan, &NoProgress);
        let hash_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (under, _) =
            index::search_codes(&e, &plan, &codes, THRESHOLD, |_, _| true, &NoProgress);
        let search_s = t.elapsed().as_secs_f64();
        let found = nearest::descent(&e, &codes, plan.tables, NEIGHBOURS, RADIUS, &NoProgress);
        (under, found, "descent", hash_s, search_s)
    };
    let neighbours_s = t.elapsed().as_secs_f64() - hash_s - search_s;
    if n <= nearest::EXACT_MAX {
        // What the other method would have cost here (the limit's reason).
        let t = Instant::now();
        let codes = index::hash_all(&e, &plan, &NoProgress);
        let (_, _) = index::search_codes(&e, &plan, &codes, THRESHOLD, |_, _| true, &NoProgress);
        let d = nearest::descent(&e, &codes, plan.tables, NEIGHBOURS, RADIUS, &NoProgress);
        println!(
            "N {n:>8}: (hash + threshold search + descent instead of exact: {:.2}s, {:?})",
            t.elapsed().as_secs_f64(),
            d.method
        );
    }
    let rss = peak_rss_mb();
    let threshold_per_photo = under.len() as f64 / n as f64;
    let mut near: Vec<(u32, u32)> = under.iter().map(|p| (p.a, p.b)).collect();
    near.extend(found.pairs.iter().map(|p| (p.a, p.b)));
    near.sort_unstable();
    near.dedup();

    let mut rng = SplitMix64::new(99);
    let mut qs: Vec<usize> = (0..queries).map(|_| rng.below(n as u64) as usize).collect();
    // And as many copies (whose pairs under the threshold are the ones to
    // find), spread over the library.
    let copies: Vec<usize> = (0..n).filter(|&i| origins[i].copy_of.is_some()).collect();
    let step = (copies.len() / queries.max(1)).max(1);
    qs.extend(copies.iter().step_by(step).take(queries));
    let t = Instant::now();
    let truths: Vec<_> = qs.par_iter().map(|&q| truth(&e, q)).collect();
    let brute_s = t.elapsed().as_secs_f64() * n as f64 / qs.len().max(1) as f64;
    let kept = near.len();
    let hits: HashSet<(u32, u32)> = near.into_iter().collect();
    let (mut under_hit, mut under_all, mut nn_hit, mut nn_all) = (0, 0, 0, 0);
    for (under, nearest) in &truths {
        under_all += under.len();
        under_hit += under.iter().filter(|p| hits.contains(p)).count();
        nn_all += nearest.len();
        nn_hit += nearest.iter().filter(|p| hits.contains(p)).count();
    }
    let ratio = |h: usize, a: usize| {
        if a == 0 {
            f64::NAN
        } else {
            h as f64 / a as f64
        }
    };
    println!(
        "N {n:>8}: plan {plan_s:.2}s (k {} L {}), hash {hash_s:.2}s, threshold search \
         {search_s:.2}s, neighbour search {neighbours_s:.2}s ({method}, {:?}); total \
         {:.2}s; recall under {THRESHOLD}: {:.4} ({under_hit}/{under_all}), \
         {NEIGHBOURS} nearest within {RADIUS}: {:.4} ({nn_hit}/{nn_all}); neighbour \
         distances/photo {:.0}; pairs kept/photo {:.2} ({threshold_per_photo:.2} under the \
         threshold); peak RSS {rss:.0} MB (vectors {:.0} MB); brute force would take \
         ~{brute_s:.0}s; vectors made in {make_s:.1}s",
        plan.bits,
        plan.tables,
        found.method,
        plan_s + hash_s + search_s + neighbours_s,
        ratio(under_hit, under_all),
        ratio(nn_hit, nn_all),
        found.distances as f64 / n as f64,
        kept as f64 / n as f64,
        (n * dim * 4) as f64 / 1e6,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dim = arg(&args, "--dim", 1280usize);
    let queries = arg(&args, "--queries", 300usize);
    let bits = arg(&args, "--bits", 0usize);
    let tables = arg(&args, "--tables", 0usize);
    let fixed = ((bits > 0).then_some(bits), (tables > 0).then_some(tables));
    if let Some(n) = args.iter().position(|a| a == "--child") {
        one(args[n + 1].parse().expect("N"), dim, queries, fixed);
        return;
    }
    let sizes = sizes(&args, &[10_000, 100_000, 1_000_000]);
    let flags = [
        "--dim".to_string(),
        dim.to_string(),
        "--queries".to_string(),
        queries.to_string(),
        "--bits".to_string(),
        bits.to_string(),
        "--tables".to_string(),
        tables.to_string(),
    ];
    run_children(&sizes, &flags);
}
