//! `neardup cache stats|prune`.

use super::args::{CacheArgs, CacheCommand};
use super::exit::{usage, ExitCode};
use super::out::emit;
use neardup::{model::ModelSource, report};

/// Every failure of `cache` but a closed or full standard output is a usage
/// error (2): the cache named or found cannot be opened or used.
pub fn run(cmd: &CacheCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CacheCommand::Stats(args) => cache_stats(args)?,
        CacheCommand::Prune(args) => cache_prune(args)?,
    }
    Ok(ExitCode::Success)
}

fn cache_path(args: &CacheArgs) -> anyhow::Result<std::path::PathBuf> {
    args.cache
        .clone()
        .or_else(neardup::cache::default_path)
        .ok_or_else(|| usage("no cache folder on this platform: give --cache PATH"))
}

fn cache_stats(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let s = neardup::cache::stats(&path).map_err(usage)?;
    if args.json {
        return emit(format!("{}\n", serde_json::to_string_pretty(&s)?).as_bytes());
    }
    let mut o = String::new();
    outln!(o, "cache:   {}", report::escape_name(&s.path));
    outln!(o, "size:    {}", report::human_bytes(s.bytes_on_disk));
    outln!(o, "files:   {} paths remembered", s.files);
    outln!(o, "vectors: {}", s.vectors);
    for m in &s.models {
        outln!(
            o,
            "model:   {} (sha256 {}…): {} vectors",
            report::escape_name(&m.name),
            report::escape_name(m.sha256.get(..12).unwrap_or(&m.sha256)),
            m.vectors
        );
    }
    emit(o.as_bytes())
}

fn cache_prune(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let bundled = ModelSource::bundled()?;
    let keep = vec![neardup::cache::model_fingerprint(&bundled)];
    let p = neardup::cache::prune(&path, &keep).map_err(usage)?;
    if args.json {
        return emit(format!("{}\n", serde_json::to_string_pretty(&p)?).as_bytes());
    }
    let mut o = String::new();
    outln!(
        o,
        "pruned {} file entries, {} vectors, {} models; {} -> {}",
        p.files,
        p.vectors,
        p.models,
        report::human_bytes(p.bytes_before),
        report::human_bytes(p.bytes_after)
    );
    emit(o.as_bytes())
}
