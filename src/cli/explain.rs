//! `neardup explain A B`: the decision on one pair, and every number behind it.

use super::args::ExplainArgs;
use super::exit::ExitCode;
use super::out::emit;
use neardup::{explain::ExplainOptions, model::ModelSource, report};

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    explain(args)?;
    Ok(ExitCode::Success)
}

fn explain(args: &ExplainArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(p) => ModelSource::from_path(p)?,
        None => ModelSource::bundled()?,
    };
    let opts = ExplainOptions {
        mode: args.decision.mode.into(),
        threshold: args.decision.threshold,
        min_inliers: args.decision.min_inliers,
        same_picture: args.decision.same_picture(),
        mirror: args.decision.mirror,
        seed: args.decision.seed,
        ..ExplainOptions::default()
    };
    let e = neardup::explain(&args.a, &args.b, &model, &opts)?;
    let rules = e.rules;
    if args.json {
        return emit(format!("{}\n", serde_json::to_string_pretty(&e)?).as_bytes());
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut o = String::new();
    for (name, p) in [("A", &e.a), ("B", &e.b)] {
        outln!(
            o,
            "{name}: {} ({}×{}, {}, {})",
            report::escape_name(&p.path),
            p.width,
            p.height,
            report::escape_name(&p.format),
            report::human_bytes(p.bytes)
        );
    }
    outln!(
        o,
        "cosine distance:  {:.4} (threshold {}){}",
        e.distance,
        rules.threshold,
        if e.mirrored { ", as mirror images" } else { "" }
    );
    outln!(o, "same bytes:       {}", yes_no(e.same_bytes));
    match e.same_pixels {
        Some(b) => outln!(o, "same pixels:      {}", yes_no(b)),
        None => outln!(
            o,
            "same pixels:      not checked (only for distance <= {} and equal sizes)",
            rules.same_pixels_radius
        ),
    }
    match e.inliers {
        Some(n) => outln!(
            o,
            "geometric check:  {n} inliers (needs {}; ORB {} features at {} px, ratio {}, RANSAC {} px)",
            rules.min_inliers,
            rules.geo_features,
            rules.geo_long_side,
            rules.ratio,
            rules.reproj_px
        ),
        None if e.frame.is_some() => outln!(
            o,
            "geometric check:  not run (the frame distance settles the pair)"
        ),
        None => outln!(
            o,
            "geometric check:  not run (only in mode similar, for distances over the threshold and under {})",
            rules.geo_radius
        ),
    }
    if let Some(f) = e.frame {
        outln!(
            o,
            "frame:            framed the same way, the worst quarter is at cosine distance {f:.3} from the same place in the other (at most {})",
            rules.max_frame_distance
        );
    }
    if let Some([a, b]) = e.coverage {
        outln!(
            o,
            "coverage:         B shows {:.0}% of A, A shows {:.0}% of B (each must show {:.0}%)",
            100.0 * a,
            100.0 * b,
            100.0 * rules.min_coverage
        );
    }
    if let Some(r) = e.regions {
        outln!(
            o,
            "regions:          the worst quarter is at cosine distance {r:.3} from what the model lines it up with (at most {})",
            rules.max_region_distance
        );
    }
    match e.label {
        Some(l) => outln!(
            o,
            "verdict:          near-duplicates, {}: {}",
            l.as_str(),
            report::escape_name(&e.why)
        ),
        None => outln!(
            o,
            "verdict:          not near-duplicates: {}",
            report::escape_name(&e.why)
        ),
    }
    outln!(
        o,
        "note: in a scan the geometric check runs for each photo's {} nearest neighbours closer than {}, \
         and groups form by average linkage (see the README).",
        rules.neighbours, rules.geo_radius
    );
    emit(o.as_bytes())
}
