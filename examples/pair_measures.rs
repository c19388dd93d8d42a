//! Every measure of every pair a default scan looks at, one JSON object per
//! line on stdout: for choosing the same-picture rule's constants on the
//! development sets (the scan's report lists only the edges).
//!
//!     cargo run --release --example pair_measures -- FOLDER... [--cache DB]
//!         [--long-side PX] [--features N] > pairs.jsonl
//!
//! Each line: the two paths, the exact distance, same bytes / same pixels,
//! the geometric check's inliers, coverage (both ways) and regions when it
//! ran, the frame distance (the layouts compared corner to corner, no
//! keypoints) when the verify stage looked at the pair, and the label a scan gives the pair (null: not an edge).
//! Numbers, not assertions.

mod support;

use neardup::cache::Cache;
use neardup::index::{self, LshRequest};
use neardup::model::ModelSource;
use neardup::pipeline::{self, ScanOptions};
use neardup::progress::NoProgress;
use neardup::verify::{self, decide};
use neardup::Mode;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cache_path: String = support::arg(&args, "--cache", String::new());
    let mut roots = Vec::new();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a == "--cache" || a == "--long-side" || a == "--features" {
            skip = true;
        } else {
            roots.push(PathBuf::from(a));
        }
    }
    let model = ModelSource::bundled()?;
    let mut opts = ScanOptions::new(roots);
    opts.cache = (!cache_path.is_empty()).then(|| PathBuf::from(&cache_path));
    let mut rules = pipeline::rules(
        Mode::Similar,
        None,
        opts.min_inliers,
        opts.same_picture,
        &model,
    )?;
    rules.geo_long_side = support::arg(&args, "--long-side", rules.geo_long_side);
    rules.geo_features = support::arg(&args, "--features", rules.geo_features);
    let cache = match &opts.cache {
        Some(p) => Cache::open(p, &model, &NoProgress),
        None => Cache::disabled(),
    };
    let cancel = AtomicBool::new(false);
    let embedder = neardup::embed::LazyEmbedder::new(&model);
    let embedded = pipeline::walk_and_embed(&opts, &embedder, &cache, &NoProgress, &cancel)?;
    let (photos, vectors) = (&embedded.photos, &embedded.vectors);
    let wanted = index::Wanted {
        threshold: rules.threshold,
        neighbours: Some((rules.neighbours, rules.geo_radius)),
    };
    let req = LshRequest {
        bits: None,
        tables: None,
        seed: opts.seed,
        target_recall: pipeline::TARGET_RECALL,
        centre: model
            .sidecar
            .lsh_centre
            .as_ref()
            .map(|c| c.vector.as_slice()),
    };
    let indexed = index::index(vectors, wanted, req, &NoProgress)?;
    let cx = verify::Context {
        photos,
        vectors,
        rules: &rules,
        limits: opts.limits,
        cache: &cache,
        layouts: &embedded.layouts,
        keypoints: None,
        embedder: &embedder,
        geometry: model.sidecar.geometry(),
        progress: &NoProgress,
        cancel: &cancel,
    };
    let measured = verify::measure(&cx, indexed.near, None)?;
    for m in &measured.pairs {
        let (a, b) = (m.pair.a, m.pair.b);
        let (pa, pb) = (&photos[a as usize], &photos[b as usize]);
        let ev = m.evidence;
        let line = serde_json::json!({
            "a": pa.file.path,
            "b": pb.file.path,
            "distance": m.pair.distance,
            "same_bytes": ev.same_bytes,
            "same_pixels": ev.same_pixels,
            "inliers": ev.inliers,
            "coverage": ev.coverage.map(|c| [c.a, c.b]),
            "regions": ev.regions,
            "frame": ev.frame,
            "label": decide::judge(m.pair.distance, ev, &rules).map(|l| l.as_str()),
        });
        println!("{line}");
    }
    let _ = cache.close();
    Ok(())
}
