//! Print every photo's embedding as JSON lines `{"path": ..., "vector": [...]}`:
//! for research on grouping rules outside Rust.
//!
//!     cargo run --release --example dump_vectors -- DIR... > vectors.jsonl

use neardup::{model::ModelSource, pipeline, progress::NoProgress};
use std::io::Write;
use std::sync::atomic::AtomicBool;

fn main() -> anyhow::Result<()> {
    let roots: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    anyhow::ensure!(!roots.is_empty(), "usage: dump_vectors DIR...");
    let model = ModelSource::bundled()?;
    let opts = pipeline::ScanOptions::new(roots);
    let cache = neardup::cache::Cache::disabled();
    let e = pipeline::walk_and_embed(
        &opts,
        &neardup::embed::LazyEmbedder::new(&model),
        &cache,
        &NoProgress,
        &AtomicBool::new(false),
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, p) in e.photos.iter().enumerate() {
        let line = serde_json::json!({ "path": p.file.path.to_string_lossy(), "vector": e.vectors.row(i) });
        writeln!(out, "{line}")?;
    }
    Ok(())
}
