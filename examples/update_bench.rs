//! A rescan's index update at library scale, on synthetic vectors like the
//! bundled model's ([`neardup::index::synthetic`]), side by side with the
//! index from scratch.
//!
//!     cargo run --release --example update_bench -- [N...] [--added 100] [--queries 300]
//!
//! For each N (default 10000 100000) it runs itself in a child process and
//! makes a library of N + `--added` photos; the first N are indexed as a
//! first scan would, then the result is updated for all of them
//! ([`neardup::index::memo::update_result`], what a rescan after adding
//! the photos does) and, for comparison, the N + added photos are indexed
//! from scratch. It prints both times, the update's distances, and the
//! recall of each against brute force for `--queries` photos drawn at
//! random and for every added photo: of the pairs under the threshold, and
//! of each one's 5 nearest within 0.5. Numbers, not assertions.

mod support;
use support::{arg, peak_rss_mb, run_children, sample_centre, sizes, truth, Pairs};
use support::{NEIGHBOURS, RADIUS, THRESHOLD};

use neardup::index::synthetic::{library, Shape};
use neardup::index::{self, memo, Embeddings, Indexed, LshRequest, SplitMix64, Wanted};
use neardup::NoProgress;
use rayon::prelude::*;
use std::collections::HashSet;
use std::time::Instant;

/// Recall of `found` for the truths: under the threshold, and nearest.
fn recall(found: &Indexed, truths: &[(Pairs, Pairs)]) -> (f64, f64) {
    let hits: HashSet<(u32, u32)> = found.near.iter().map(|p| (p.a, p.b)).collect();
    let share = |pick: &dyn Fn(&(Pairs, Pairs)) -> &Pairs| {
        let all: usize = truths.iter().map(|t| pick(t).len()).sum();
        let hit: usize = truths
            .iter()
            .map(|t| pick(t).iter().filter(|p| hits.contains(p)).count())
            .sum();
        hit as f64 / all.max(1) as f64
    };
    (share(&|t| &t.0), share(&|t| &t.1))
}

fn one(n: usize, added: usize, queries: usize) {
    let (all, _) = library(Shape::library(n + added, 1280, 7));
    let centre = sample_centre(&all);
    let req = LshRequest {
        bits: None,
        tables: None,
        seed: 42,
        target_recall: index::TARGET_RECALL,
        centre: Some(&centre),
    };
    let wanted = Wanted {
        threshold: THRESHOLD,
        neighbours: Some((NEIGHBOURS, RADIUS)),
    };
    let mut old = Embeddings::new(all.dim);
    for i in 0..n {
        old.push(all.row(i));
    }
    let names: Vec<String> = (0..n + added).map(|i| format!("1:{i}")).collect();
    let contents: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Instant::now();
    let first = index::index(&old, wanted, req, &NoProgress).expect("index");
    let first_s = t.elapsed().as_secs_f64();
    drop(old);
    let t = Instant::now();
    let updated = memo::update_result(
        &first,
        &contents[..n],
        &contents,
        &all,
        wanted,
        req,
        &NoProgress,
    )
    .expect("update");
    let update_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scratch = index::index(&all, wanted, req, &NoProgress).expect("index");
    let scratch_s = t.elapsed().as_secs_f64();

    let mut rng = SplitMix64::new(99);
    let mut qs: Vec<usize> = (0..queries)
        .map(|_| rng.below((n + added) as u64) as usize)
        .collect();
    let new: Vec<usize> = (n..n + added).collect();
    qs.extend(&new);
    let truths: Vec<_> = qs.par_iter().map(|&q| truth(&all, q)).collect();
    let (random, of_new) = truths.split_at(queries);
    let s = recall(&scratch, random);
    let s_new = recall(&scratch, of_new);
    match updated {
        Some(u) => {
            let r = recall(&u, random);
            let r_new = recall(&u, of_new);
            let distances = u.neighbours.map_or(0, |s| s.distances);
            println!(
                "N {n:>8} + {added}: first index {first_s:.2}s; update {update_s:.3}s \
                 ({distances} distances, {:?}); from scratch {scratch_s:.2}s; recall \
                 (under {THRESHOLD} / {NEIGHBOURS} nearest) of random photos: update \
                 {:.4}/{:.4}, from scratch {:.4}/{:.4}; of the added: update {:.4}/{:.4}, \
                 from scratch {:.4}/{:.4}; peak RSS {:.0} MB",
                u.neighbours.map(|s| s.method),
                r.0,
                r.1,
                s.0,
                s.1,
                r_new.0,
                r_new.1,
                s_new.0,
                s_new.1,
                peak_rss_mb(),
            );
        }
        None => println!(
            "N {n:>8} + {added}: first index {first_s:.2}s; no update (past the budget: \
             from scratch) {update_s:.3}s; from scratch {scratch_s:.2}s; recall of random \
             photos {:.4}/{:.4}, of the added {:.4}/{:.4}",
            s.0, s.1, s_new.0, s_new.1
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let added = arg(&args, "--added", 100usize);
    let queries = arg(&args, "--queries", 300usize);
    if let Some(n) = args.iter().position(|a| a == "--child") {
        one(args[n + 1].parse().expect("N"), added, queries);
        return;
    }
    let sizes = sizes(&args, &[10_000, 100_000]);
    let flags = [
        "--added".to_string(),
        added.to_string(),
        "--queries".to_string(),
        queries.to_string(),
    ];
    run_children(&sizes, &flags);
}
