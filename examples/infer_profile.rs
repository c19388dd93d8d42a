//! Where the model's time goes: every node of the bundled CNN's plan timed
//! over N runs on one thread, summed by operator, for neardup's depthwise
//! operator and tract's own side by side (alternating rounds, so a noisy
//! machine slows both alike). Prints a table per variant, most expensive
//! first, and the ratio of the totals.
//!
//!     cargo run --release --example infer_profile -- [--runs N] [--rounds R] [--nodes]
//!
//! With `--compare DIR...` it instead embeds every photo under the folders
//! with both and prints how many vectors differ and the largest difference.
//!
//!     cargo run --release --example infer_profile -- --compare ../shared/bench/*/images

use neardup::embed::{Depthwise, Embedder};
use neardup::model::ModelSource;
use std::collections::BTreeMap;
use std::time::Duration;

/// Time per operator (summed over rounds) and its node count.
type ByOp = BTreeMap<String, (Duration, usize)>;

fn main() -> anyhow::Result<()> {
    let (mut runs, mut rounds, mut per_node) = (20usize, 3usize, false);
    let mut compare: Vec<std::path::PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().unwrap_or_default().parse()?,
            "--rounds" => rounds = args.next().unwrap_or_default().parse()?,
            "--nodes" => per_node = true,
            "--compare" => compare.extend(args.by_ref().map(Into::into)),
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let model = ModelSource::bundled()?;
    let variants = [
        (
            "neardup depthwise",
            Embedder::load_with(&model, Depthwise::Neardup)?,
        ),
        (
            "tract depthwise",
            Embedder::load_with(&model, Depthwise::Tract)?,
        ),
    ];
    if !compare.is_empty() {
        return compare_on(&compare, &model, &variants[0].1, &variants[1].1);
    }
    let mut sums: Vec<(ByOp, Duration)> = variants.iter().map(|_| Default::default()).collect();
    for _ in 0..rounds {
        for ((_, e), (rows, total)) in variants.iter().zip(&mut sums) {
            let (r, t) = e.profile(runs, per_node)?;
            for row in r {
                let s = rows.entry(row.op).or_default();
                s.0 += row.per_run;
                s.1 = row.nodes;
            }
            *total += t;
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64;
    for ((name, e), (rows, total)) in variants.iter().zip(&sums) {
        println!(
            "== {name} ({} depthwise convolutions in neardup's operator)",
            e.own_depthwise_ops()
        );
        println!("{:>9} {:>6}  op", "ms/run", "nodes");
        let mut rows: Vec<_> = rows.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
        for (op, (d, n)) in rows {
            println!("{:>9.3} {:>6}  {op}", ms(*d), n);
        }
        println!("{:>9.3} ms per run in all\n", ms(*total));
    }
    println!(
        "tract depthwise / neardup depthwise: {:.2}x",
        sums[1].1.as_secs_f64() / sums[0].1.as_secs_f64()
    );
    Ok(())
}

/// Embed every decodable photo under `roots` with both embedders: the count of
/// photos, of vectors that differ in any bit, and the largest difference.
fn compare_on(
    roots: &[std::path::PathBuf],
    model: &ModelSource,
    a: &Embedder,
    b: &Embedder,
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let mut files: Vec<_> = roots
        .iter()
        .flat_map(|r| walkdir::WalkDir::new(r).into_iter().filter_map(|e| e.ok()))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let geo = model.sidecar.geometry();
    let limits = neardup::decode::Limits::default();
    let rows: Vec<(bool, f32)> = files
        .par_iter()
        .filter_map(|p| {
            let prepared = neardup::decode::prepare(&std::fs::read(p).ok()?, geo, limits).ok()?;
            let (va, la) = a.embed_with_layout(&prepared.rgb).ok()?;
            let (vb, lb) = b.embed_with_layout(&prepared.rgb).ok()?;
            let same = va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()) && la == lb;
            let diff = va
                .iter()
                .zip(&vb)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            Some((same, diff))
        })
        .collect();
    println!(
        "{} photos: {} with any bit different, largest difference {:e}",
        rows.len(),
        rows.iter().filter(|r| !r.0).count(),
        rows.iter().map(|r| r.1).fold(0f32, f32::max)
    );
    Ok(())
}
