//! `neardup explain A B`: every number behind the decision for two photos,
//! measured by the scan's own stages: the same walk and embed, the same
//! exact distance, [`verify::measure`] (same pixels, mirror images, the
//! geometric check with its seed from the two contents) and the same rules.

use crate::cache::Cache;
use crate::decode::Limits;
use crate::embed::{self, Embed, EmbedOptions, LazyEmbedder, Photo};
use crate::error::{Error, Result};
use crate::index::{cosine_distance, ScoredPair};
use crate::model::ModelSource;
use crate::photo::SkipReason;
use crate::pipeline;
use crate::progress::NoProgress;
use crate::verify::decide::{NotSamePicture, SamePicture};
use crate::verify::{self, decide, Label, Mode, Rules};
use crate::walk::{self, WalkOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// One photo as the scan sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoFacts {
    pub path: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub format: String,
}

/// Everything measured about a pair, and the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub a: PhotoFacts,
    pub b: PhotoFacts,
    /// The exact cosine distance (with `--mirror`, the smaller of the direct
    /// and the mirrored one), as a scan reports it.
    pub distance: f64,
    /// The pair is closer (or only close) as mirror images (`--mirror`).
    pub mirrored: bool,
    pub same_bytes: bool,
    /// `None` when not checked (too far apart, of different sizes, or the
    /// same bytes).
    pub same_pixels: Option<bool>,
    /// Inliers of the geometric check; `None` when a scan would not run it
    /// for this pair (not `--mode similar`, under the threshold, or too far).
    pub inliers: Option<u32>,
    /// `[a, b]`: the share of A that B shows and of B that A shows, through
    /// the homography the geometric check fitted (`None` when it fitted none).
    pub coverage: Option<[f64; 2]>,
    /// The worst quarter's distance under that homography (`None` without
    /// one, or without layouts).
    pub regions: Option<f64>,
    /// The worst quarter's distance with the two framed the same way (`None`
    /// when a scan would not look at their pictures, or without layouts).
    pub frame: Option<f64>,
    /// A RAW file and the camera JPEG of the same shot (same name, same folder).
    pub raw_jpeg_pair: bool,
    pub rules: Rules,
    /// The label, or `None` when the pair is not a near-duplicate in this mode.
    pub label: Option<Label>,
    /// The reason in words.
    pub why: String,
}

/// The flags of a scan that decide a pair.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    pub mode: Mode,
    /// Cosine distance; `None` takes the model's default.
    pub threshold: Option<f32>,
    pub min_inliers: u32,
    /// The same-picture rule's flags.
    pub same_picture: SamePicture,
    /// Mirror images count (`--mirror`).
    pub mirror: bool,
    /// Seed of the random hyperplanes (the mirror search uses them).
    pub seed: u64,
    pub limits: Limits,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        let scan = pipeline::ScanOptions::new(Vec::new());
        ExplainOptions {
            mode: scan.mode,
            threshold: scan.threshold,
            min_inliers: scan.min_inliers,
            same_picture: scan.same_picture,
            mirror: scan.mirror,
            seed: scan.seed,
            limits: scan.limits,
        }
    }
}

/// Measure two photos as a scan would and say whether (and why) they are
/// near-duplicates.
pub fn explain(
    a: &Path,
    b: &Path,
    model: &ModelSource,
    opts: &ExplainOptions,
) -> Result<Explanation> {
    explain_with(a, b, model, &LazyEmbedder::new(model), opts)
}

/// [`explain`] with the vectors from `embedder`.
pub fn explain_with(
    a: &Path,
    b: &Path,
    model: &ModelSource,
    embedder: &dyn Embed,
    opts: &ExplainOptions,
) -> Result<Explanation> {
    let rules = pipeline::rules(
        opts.mode,
        opts.threshold,
        opts.min_inliers,
        opts.same_picture,
        model,
    )?;
    for p in [a, b] {
        if std::fs::metadata(p).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Param(format!(
                "{}: a folder; explain compares two photos (scan compares folders)",
                p.display()
            )));
        }
    }
    // The scan's stages on the two files: walk (paths in the scan's order),
    // embed, the exact distance, then the verify stage's measures.
    let cancel = AtomicBool::new(false);
    let roots = [a.to_path_buf(), b.to_path_buf()];
    let walked = walk::walk(&roots, WalkOptions { hidden: true }, &NoProgress, &cancel)?;
    refuse_skipped(&walked.skipped)?;
    if walked.files.len() != 2 {
        return Err(Error::Param(format!(
            "{} and {} are the same file",
            a.display(),
            b.display()
        )));
    }
    let geometry = model.sidecar.geometry();
    let eopts = EmbedOptions {
        geometry,
        limits: opts.limits,
        thumbnails: false,
    };
    let cache = Cache::disabled();
    let embedded = embed::embed(walked, eopts, embedder, &cache, None, &NoProgress, &cancel)?;
    refuse_skipped(&embedded.skipped)?;
    let (photos, vectors) = (&embedded.photos, &embedded.vectors);
    let direct = ScoredPair {
        a: 0,
        b: 1,
        distance: cosine_distance(vectors.row(0), vectors.row(1)),
    };
    let cx = verify::Context {
        photos,
        vectors,
        rules: &rules,
        limits: opts.limits,
        cache: &cache,
        layouts: &embedded.layouts,
        keypoints: None,
        embedder,
        geometry,
        progress: &NoProgress,
        cancel: &cancel,
    };
    let mirror = opts.mirror.then_some(verify::Mirror {
        embedder,
        geometry,
        threshold: rules.threshold,
        seed: opts.seed,
        centre: pipeline::lsh_centre(model),
    });
    let measured = verify::measure(&cx, vec![direct], mirror)?.pairs[0];
    let (ev, distance) = (measured.evidence, measured.pair.distance);
    let label = decide::judge(distance, ev, &rules);
    let same_pixels = verify::pixels::compared(&photos[0], &photos[1], distance, &rules)
        .then_some(ev.same_pixels);
    let facts = |p: &Photo| PhotoFacts {
        path: p.file.path.to_string_lossy().into_owned(),
        bytes: p.file.bytes,
        width: p.width,
        height: p.height,
        format: p.format.to_string(),
    };
    // Shown in the order the user gave them.
    let given_order = photos[0].file.path == a;
    let (fa, fb) = if given_order {
        (facts(&photos[0]), facts(&photos[1]))
    } else {
        (facts(&photos[1]), facts(&photos[0]))
    };
    let coverage = ev.coverage.map(|c| {
        let [x, y] = crate::report::coverage_pair(c);
        if given_order {
            [x, y]
        } else {
            [y, x]
        }
    });
    let why = why(distance, ev, label, &rules);
    Ok(Explanation {
        a: fa,
        b: fb,
        distance: crate::report::round6(distance as f64),
        mirrored: measured.mirrored,
        same_bytes: ev.same_bytes,
        same_pixels,
        inliers: ev.inliers,
        coverage,
        regions: ev.regions.map(crate::report::round3),
        frame: ev.frame.map(crate::report::round3),
        raw_jpeg_pair: ev.raw_jpeg,
        rules,
        label,
        why,
    })
}

/// A photo the walk or the embed stage skipped fails the explanation, with
/// the stage's reason.
fn refuse_skipped(skipped: &[(PathBuf, SkipReason)]) -> Result<()> {
    match skipped.first() {
        Some((path, reason)) => Err(Error::Param(format!(
            "{}: {}",
            path.display(),
            reason.message
        ))),
        None => Ok(()),
    }
}

/// The decision in words.
fn why(distance: f32, ev: decide::Evidence, label: Option<Label>, rules: &Rules) -> String {
    let t = rules.threshold;
    let would = decide::tier(distance, ev, rules);
    let failed = would.and_then(|w| Some((w, decide::not_same_picture(w, ev, rules)?)));
    if let (None, Some((would, failed))) = (label, failed) {
        let because = match failed {
            NotSamePicture::Coverage(c) => format!(
                "through the geometric check's model one photo shows only {:.0}% of the other \
                 (each must show {:.0}%): panorama neighbours, a wide shot and its detail, or a \
                 shared region",
                100.0 * c,
                100.0 * rules.min_coverage
            ),
            NotSamePicture::Containment(c) => format!(
                "through the geometric check's model neither photo shows more than {:.0}% of the \
                 other (one must show {:.0}%): two frames shifted apart, as a panorama's \
                 neighbours are",
                100.0 * c,
                100.0 * rules.min_containment
            ),
            NotSamePicture::Regions(r) => format!(
                "what the geometric check's model lines up differs in part of the frame (a \
                 quarter at cosine distance {r:.3}; at most {} allowed): the two share a region, \
                 an object or a tile",
                rules.max_region_distance
            ),
            NotSamePicture::Frame(f) => format!(
                "framed the same way, the two differ in part of the frame (a quarter at cosine \
                 distance {f:.3} from the same place in the other; at most {} allowed): panorama \
                 neighbours, or photos that share a region, an object or a tile",
                rules.max_frame_distance
            ),
        };
        let inliers = if ev.inliers.is_some_and(|k| k >= rules.min_inliers) {
            " and inliers"
        } else {
            ""
        };
        return format!(
            "{} by its distance {distance:.4}{inliers}, but not the same picture: {because}",
            would.as_str()
        );
    }
    let shows = match ev.coverage {
        Some(c) if ev.inliers.is_some_and(|k| k >= rules.min_inliers) => format!(
            "; each shows at least {:.0}% of the other (needs {:.0}%)",
            100.0 * c.min(),
            100.0 * rules.min_coverage
        ),
        _ => String::new(),
    };
    let why = match label {
        Some(Label::Identical) => "the two files have the same bytes".to_string(),
        Some(Label::SamePixels) => "the two files decode to the same pixels".to_string(),
        Some(Label::RawJpeg) => format!(
            "a RAW file and the camera JPEG of the same shot (same name, same folder; distance {distance:.4})"
        ),
        Some(Label::Edited) => format!("the distance {distance:.4} is at or under the threshold {t}"),
        Some(Label::Similar) => format!(
            "the distance {distance:.4} is over the threshold {t}, but the geometric check found {} inliers (>= {})",
            ev.inliers.unwrap_or(0),
            rules.min_inliers
        ),
        None if distance <= t => format!(
            "the distance {distance:.4} is under the threshold, but mode {:?} only groups copies",
            rules.mode
        ),
        None if rules.mode != Mode::Similar => {
            format!("the distance {distance:.4} is over the threshold {t} (mode {:?} runs no geometric check)", rules.mode)
        }
        None if distance >= rules.geo_radius => format!(
            "the distance {distance:.4} is over the threshold {t} and too far ({} or more) for the geometric check",
            rules.geo_radius
        ),
        None => format!(
            "the distance {distance:.4} is over the threshold {t} and the geometric check found only {} inliers (< {})",
            ev.inliers.unwrap_or(0),
            rules.min_inliers
        ),
    };
    match label {
        Some(Label::Edited | Label::Similar) => why + &shows,
        _ => why,
    }
}
