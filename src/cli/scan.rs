//! `neardup scan`: run the scan, write the report, say the summary.

use super::args::{Format, ScanArgs};
use super::bars::{Bars, NON_PHOTO_WARNINGS};
use super::exit::ExitCode;
use super::report::write_output;
use anyhow::Context;
use neardup::progress::Progress;
use neardup::{model::ModelSource, pipeline, Error};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let cancel = super::cancel_flag();
    scan_inner(args, &cancel)?;
    Ok(ExitCode::Success)
}

fn scan_inner(args: &ScanArgs, cancel: &AtomicBool) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(Error::Param("--threads must be at least 1".into()).into());
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let model = match &args.model {
        Some(p) => ModelSource::from_path(p)?,
        None => ModelSource::bundled()?,
    };
    let format = args
        .format
        .or_else(|| Format::from_output(args.output.as_deref()))
        .unwrap_or(Format::Text);
    let mut opts = pipeline::ScanOptions::new(args.roots.clone());
    opts.threshold = args.decision.threshold;
    opts.bits = args.bits;
    opts.tables = args.tables;
    opts.seed = args.decision.seed;
    opts.hidden = args.hidden;
    opts.timings = args.timings;
    opts.mode = args.decision.mode.into();
    opts.min_inliers = args.decision.min_inliers;
    opts.same_picture = args.decision.same_picture();
    opts.mirror = args.decision.mirror;
    if let Some(list) = &args.keep {
        opts.keep = neardup::keep::parse_order(list)?;
    }
    opts.reference = args.reference.clone();
    opts.limits.plain = args.plain_decode;
    opts.thumbnails = format == Format::Html;
    opts.ignore_decisions = args.ignore_decisions;
    opts.cache = if args.no_cache || args.plain_decode {
        None
    } else {
        args.cache.clone().or_else(neardup::cache::default_path)
    };

    let bars = Bars::new(args.quiet);
    let (mut report, thumbnails) = pipeline::scan_with_thumbnails(&opts, &model, &bars, cancel)?;
    // Seal the roots, so that apply can trust them (src/apply.rs).
    match neardup::apply::seal_roots(&report.parameters) {
        Ok(seal) => report.parameters.roots_seal = Some(seal),
        Err(e) => bars.warn(&format!(
            "the roots are not sealed ({e}): apply will need --root"
        )),
    }
    for (path, t) in &thumbnails {
        if let Err(why) = t {
            bars.warn(&format!("{path}: no thumbnail: {why}"));
        }
    }
    write_output(&report, &thumbnails, format, args.output.as_deref())?;

    let hidden_non_photos = bars
        .non_photos
        .load(Ordering::Relaxed)
        .saturating_sub(NON_PHOTO_WARNINGS);
    if hidden_non_photos > 0 {
        eprintln!(
            "warning: {hidden_non_photos} more files are not photos (listed in the JSON report)"
        );
    }
    if !args.quiet {
        let s = &report.stats;
        if s.files_seen == 0 {
            eprintln!(
                "neardup: no files found under {}",
                report.parameters.roots.join(", ")
            );
        } else if s.photos_embedded == 0 {
            eprintln!("neardup: no photos found among {} files", s.files_seen);
        }
        let cached = bars.cached.load(Ordering::Relaxed);
        let mut from_cache = if cached > 0 {
            format!(" ({cached} from cache)")
        } else {
            String::new()
        };
        if bars.remembered.load(Ordering::Relaxed) {
            from_cache.push_str(", the index from cache");
        }
        eprintln!(
            "neardup: {} files, {} photos scanned{}, {} skipped, {} {} ({} photos) in {:.1} s",
            s.files_seen,
            s.photos_embedded,
            from_cache,
            s.files_skipped,
            s.groups,
            if s.groups == 1 { "group" } else { "groups" },
            s.photos_in_groups,
            started.elapsed().as_secs_f64()
        );
        if s.decided_pairs > 0 {
            eprintln!(
                "neardup: {} {} not grouped, as your decisions say (neardup decide list)",
                s.decided_pairs,
                if s.decided_pairs == 1 {
                    "pair"
                } else {
                    "pairs"
                }
            );
        }
    }
    Ok(())
}
