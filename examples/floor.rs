//! The floor of a cold scan: the time to only decode a folder's photos at the
//! scale neardup uses, and the time of bare model inference, both on every
//! core. Prints one JSON object; `bench/throughput.py` reads it.
//!
//!     cargo run --release --example floor -- DIR [--inference-runs N]

use neardup::{decode, embed::Embedder, model::ModelSource};
use rayon::prelude::*;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: floor DIR [--inference-runs N]"))?;
    let runs: usize = match (args.next().as_deref(), args.next()) {
        (Some("--inference-runs"), Some(n)) => n.parse()?,
        _ => 0,
    };
    let mut files: Vec<_> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let model = ModelSource::bundled()?;
    let geo = model.sidecar.geometry();
    let limits = decode::Limits::default();

    // Decode only: read + decode at reduced scale + resize to the model input.
    let t = Instant::now();
    let decoded: usize = files
        .par_iter()
        .map(|p| {
            let bytes = std::fs::read(p).ok()?;
            decode::prepare(&bytes, geo, limits).ok().map(|_| 1)
        })
        .flatten()
        .sum();
    let decode_s = t.elapsed().as_secs_f64();

    // Bare inference: the same number of runs on a fixed image.
    let embedder = Embedder::load(&model)?;
    let runs = if runs == 0 { decoded.max(1) } else { runs };
    let rgb = vec![100u8; (geo.width * geo.height * 3) as usize];
    let t = Instant::now();
    (0..runs)
        .into_par_iter()
        .try_for_each(|_| embedder.embed(&rgb).map(|_| ()))?;
    let infer_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "files": files.len(),
            "decoded": decoded,
            "threads": rayon::current_num_threads(),
            "decode_seconds": decode_s,
            "inference_runs": runs,
            "inference_seconds": infer_s,
        })
    );
    Ok(())
}
