//! The scan, stage by stage: walk → embed → index → verify → group → keep
//! → report. Each stage is one call that returns one value; the timings and
//! the progress of each stage are recorded here, not by the stages.

use crate::cache::Cache;
use crate::decisions::Decisions;
use crate::decode::Limits;
use crate::embed::{self, Embed, EmbedOptions, LazyEmbedder};
use crate::error::{Error, Result};
use crate::group;
use crate::index::{self, LshRequest};
use crate::keep;
use crate::model::ModelSource;
use crate::progress::{check_cancel, Progress, Stage};
use crate::report::build::{self as report_build, Scanned, Settings};
use crate::report::thumbs::Thumbnails;
use crate::report::{self, Report};
use crate::verify::decide::SamePicture;
use crate::verify::{self, Mode, Rules};
use crate::walk::{self, WalkOptions, WalkOutput};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub use crate::embed::{Embedded, Photo};
pub use crate::index::TARGET_RECALL;

/// The cosine distance used when neither the user nor the model's sidecar
/// gives one.
pub const DEFAULT_THRESHOLD: f32 = 0.21;
pub const DEFAULT_SEED: u64 = 0x006e_6561_7264_7570; // "neardup" in ASCII

/// Everything that shapes a scan's result.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub roots: Vec<PathBuf>,
    /// Cosine distance; `None` takes the model's default.
    pub threshold: Option<f32>,
    pub bits: Option<usize>,
    pub tables: Option<usize>,
    pub seed: u64,
    pub hidden: bool,
    pub limits: Limits,
    /// Put wall-clock seconds per stage into the report.
    pub timings: bool,
    /// The embedding cache to use; `None` for no cache.
    pub cache: Option<PathBuf>,
    /// How far the grouping reaches.
    pub mode: Mode,
    /// Inliers the geometric check needs.
    pub min_inliers: u32,
    /// The same-picture rule's flags (see [`Rules::min_coverage`],
    /// [`Rules::min_containment`], [`Rules::max_region_distance`],
    /// [`Rules::max_frame_distance`]).
    pub same_picture: SamePicture,
    /// Mirrored copies (horizontal flip) count as near-duplicates.
    pub mirror: bool,
    /// The keeper criteria, in order (see [`keep::complete`]).
    pub keep: Vec<keep::Criterion>,
    /// Reference folders: scanned like roots; their files are always kept.
    pub reference: Vec<PathBuf>,
    /// Make thumbnails of the photos in groups (for the HTML report).
    pub thumbnails: bool,
    /// Group as if the cache held no decisions (`neardup decide`).
    pub ignore_decisions: bool,
}

impl ScanOptions {
    pub fn new(roots: Vec<PathBuf>) -> ScanOptions {
        ScanOptions {
            roots,
            threshold: None,
            bits: None,
            tables: None,
            seed: DEFAULT_SEED,
            hidden: false,
            limits: Limits::default(),
            timings: false,
            cache: None,
            mode: Mode::Similar,
            min_inliers: Rules::new(Mode::Similar, DEFAULT_THRESHOLD).min_inliers,
            same_picture: SamePicture::default(),
            mirror: false,
            keep: keep::complete(&[]),
            reference: Vec::new(),
            thumbnails: false,
            ignore_decisions: false,
        }
    }
}

/// Run a whole scan.
pub fn scan(
    opts: &ScanOptions,
    model: &ModelSource,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Report> {
    scan_with_thumbnails(opts, model, progress, cancel).map(|(r, _)| r)
}

/// Run a whole scan; with `opts.thumbnails`, also the thumbnails of the
/// photos in groups (see [`crate::report::thumbs`]), else an empty map.
pub fn scan_with_thumbnails(
    opts: &ScanOptions,
    model: &ModelSource,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(Report, Thumbnails)> {
    // The model is loaded on first need: a rescan served by the cache never
    // loads it.
    scan_with(opts, model, &LazyEmbedder::new(model), progress, cancel)
}

/// [`scan_with_thumbnails`] with the vectors from `embedder` (tests pass a
/// fake one). `model` still names the model in the report and gives the
/// input geometry and defaults.
pub fn scan_with(
    opts: &ScanOptions,
    model: &ModelSource,
    embedder: &dyn Embed,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(Report, Thumbnails)> {
    let started = Instant::now();
    let rules = rules(
        opts.mode,
        opts.threshold,
        opts.min_inliers,
        opts.same_picture,
        model,
    )?;
    let cache = match &opts.cache {
        Some(path) => Cache::open(path, model, progress),
        None => Cache::disabled(),
    };
    let geometry = model.sidecar.geometry();
    let centre = lsh_centre(model);
    let stage = |s: Stage, len: Option<u64>| Timed::start(progress, s, len);

    // 1. Walk the roots and the reference folders.
    let t = stage(Stage::Walk, None);
    let (roots, walked) = walk_roots(opts, progress, cancel)?;
    let walk_s = t.finish();

    // 2. Decode and embed every photo, cache first.
    let t = stage(Stage::Embed, Some(walked.files.len() as u64));
    // In mode similar nearly every photo is checked geometrically: its
    // keypoints are made from this decode instead of a second one.
    let eopts = embed_options(opts, model);
    let keypoints = (rules.mode == Mode::Similar)
        .then(|| verify::Keypoints::new(&rules, verify::KEYPOINT_BUDGET));
    let grays = keypoints.as_ref().map(|k| k as &dyn embed::GraySink);
    let embedded = embed::embed(walked, eopts, embedder, &cache, grays, progress, cancel)?;
    let embed_s = t.finish();
    let (photos, vectors) = (&embedded.photos, &embedded.vectors);
    // The user's decisions ("not duplicates", "keep all") stored with the
    // cache, honoured in the group stage.
    let decisions = if opts.ignore_decisions {
        Decisions::none()
    } else {
        Decisions::new(&cache.decisions(progress))
    };

    // 3. Index: every vector hashed into the LSH tables planned for the
    // threshold; candidates verified by their exact distance as found; in
    // mode similar, each photo's nearest neighbours too. A rescan of the
    // same photos takes the result the cache remembers.
    let t = stage(Stage::Index, None);
    let wanted = index::Wanted {
        threshold: rules.threshold,
        neighbours: (rules.mode == Mode::Similar).then_some((rules.neighbours, rules.geo_radius)),
    };
    let req = LshRequest {
        bits: opts.bits,
        tables: opts.tables,
        seed: opts.seed,
        target_recall: TARGET_RECALL,
        centre,
    };
    let memo = index::memo::Memo {
        cache: &cache,
        roots: &roots,
    };
    let contents: Vec<&str> = photos.iter().map(|p| p.content.as_str()).collect();
    let (indexed, _) = index::memo::index(&memo, vectors, &contents, wanted, req, progress)?;
    let index_s = t.finish();
    check_cancel(cancel)?;

    // 4. Verify: same bytes, same pixels, mirror images, the geometric check.
    let t = stage(Stage::Verify, None);
    let cx = verify::Context {
        photos,
        vectors,
        rules: &rules,
        limits: opts.limits,
        cache: &cache,
        layouts: &embedded.layouts,
        keypoints: keypoints.as_ref(),
        embedder,
        geometry,
        progress,
        cancel,
    };
    let mirror = opts.mirror.then_some(verify::Mirror {
        embedder,
        geometry,
        threshold: rules.threshold,
        seed: opts.seed,
        centre,
    });
    let verified = verify::verify(&cx, indexed.near, mirror)?;
    // The keypoints of photos no check needed go now, not after the report.
    drop(keypoints);
    let verify_s = t.finish();

    // 5. Group: average linkage over the edges the user's decisions leave.
    let t = Instant::now();
    // Two photos a decision holds are no edge, and never in one group.
    let decided = decisions.apply(photos, verified.edges());
    let apart = decisions.apart(photos);
    let clusters = group::group(
        &decided.edges,
        &apart,
        vectors,
        rules.link_fraction,
        rules.geo_radius,
    );
    let group_s = t.elapsed();

    let thumbnails = match &embedded.thumbs {
        Some(spool) => report_build::thumbnails(
            photos,
            &clusters,
            spool,
            &cache,
            geometry.shorter_side,
            opts.limits,
        ),
        None => Thumbnails::new(),
    };
    for warning in cache.close() {
        progress.warn(&warning);
    }

    // 6-7. Keep (per group, by `opts.keep`) and the report.
    let timings = opts.timings.then(|| report::Timings {
        walk: seconds(walk_s),
        model_load: seconds(embedder.load_time()),
        decode_embed: seconds(embed_s),
        decode_thread: report::round6(embedded.decode_thread_s),
        embed_thread: report::round6(embedded.embed_thread_s),
        keypoints_thread: report::round6(embedded.keypoints_thread_s),
        index: seconds(index_s),
        verify: seconds(verify_s),
        group: seconds(group_s),
        total: seconds(started.elapsed()),
    });
    let report = report_build::build(Scanned {
        model,
        opts: settings(opts, &roots, rules),
        embedded,
        plan: &indexed.plan,
        candidates: indexed.candidates,
        neighbours: indexed.neighbours,
        verified: &verified,
        decided: &decided,
        clusters: &clusters,
        timings,
    });
    Ok((report, thumbnails))
}

/// A stage's progress bar and wall-clock time, both kept by the spine.
struct Timed<'a> {
    progress: &'a dyn Progress,
    stage: Stage,
    started: Instant,
}

impl<'a> Timed<'a> {
    fn start(progress: &'a dyn Progress, stage: Stage, len: Option<u64>) -> Timed<'a> {
        progress.start(stage, len);
        Timed {
            progress,
            stage,
            started: Instant::now(),
        }
    }

    /// The stage is over: its bar closed, its time taken.
    fn finish(self) -> Duration {
        self.progress.finish(self.stage);
        self.started.elapsed()
    }
}

fn seconds(d: Duration) -> f64 {
    report::round6(d.as_secs_f64())
}

/// The parameters of a scan as its report records them.
fn settings<'a>(opts: &'a ScanOptions, roots: &'a [PathBuf], rules: Rules) -> Settings<'a> {
    Settings {
        roots,
        reference: &opts.reference,
        keep: &opts.keep,
        hidden: opts.hidden,
        mirror: opts.mirror,
        threshold: rules.threshold,
        radius: rules.search_radius(),
        rules,
        bits_from_user: opts.bits.is_some(),
        tables_from_user: opts.tables.is_some(),
    }
}

/// Walk the roots and the reference folders (scanned like roots); returns
/// the roots actually walked (nested duplicates dropped) and what was found.
fn walk_roots(
    opts: &ScanOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(Vec<PathBuf>, WalkOutput)> {
    let mut wanted = opts.roots.clone();
    wanted.extend(opts.reference.iter().cloned());
    let roots = walk::check_roots(&wanted)?;
    let walked = walk::walk(
        &roots,
        WalkOptions {
            hidden: opts.hidden,
        },
        progress,
        cancel,
    )?;
    Ok((roots, walked))
}

fn embed_options(opts: &ScanOptions, model: &ModelSource) -> EmbedOptions {
    EmbedOptions {
        geometry: model.sidecar.geometry(),
        limits: opts.limits,
        thumbnails: opts.thumbnails,
    }
}

/// Walk the roots, then decode and embed every photo (stages 1 and 2, for
/// tools that want the vectors).
pub fn walk_and_embed(
    opts: &ScanOptions,
    embedder: &LazyEmbedder,
    cache: &Cache,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Embedded> {
    progress.start(Stage::Walk, None);
    let (_, walked) = walk_roots(opts, progress, cancel)?;
    progress.finish(Stage::Walk);
    progress.start(Stage::Embed, Some(walked.files.len() as u64));
    let eopts = embed_options(opts, embedder.model());
    let embedded = embed::embed(walked, eopts, embedder, cache, None, progress, cancel)?;
    progress.finish(Stage::Embed);
    Ok(embedded)
}

/// The rules of a scan (and of `explain`): the threshold given, or the
/// model's, or [`DEFAULT_THRESHOLD`].
pub fn rules(
    mode: Mode,
    threshold: Option<f32>,
    min_inliers: u32,
    same: SamePicture,
    model: &ModelSource,
) -> Result<Rules> {
    let SamePicture {
        min_coverage,
        min_containment,
        max_region_distance,
        max_frame_distance,
    } = same;
    let threshold = threshold
        .or(model.sidecar.default_threshold)
        .unwrap_or(DEFAULT_THRESHOLD);
    if !(threshold > 0.0 && threshold < 2.0) {
        return Err(Error::Param(format!(
            "--threshold must be in (0, 2), got {threshold}"
        )));
    }
    if !(0.0..=1.0).contains(&min_coverage) {
        return Err(Error::Param(format!(
            "--min-coverage must be in [0, 1], got {min_coverage}"
        )));
    }
    let mut rules = Rules::new(mode, threshold);
    rules.min_inliers = min_inliers;
    if !(0.0..=1.0).contains(&min_containment) {
        return Err(Error::Param(format!(
            "--min-containment must be in [0, 1], got {min_containment}"
        )));
    }
    if !(0.0..=2.0).contains(&max_region_distance) {
        return Err(Error::Param(format!(
            "--max-region-distance must be in [0, 2], got {max_region_distance}"
        )));
    }
    rules.min_coverage = min_coverage;
    if !(0.0..=2.0).contains(&max_frame_distance) {
        return Err(Error::Param(format!(
            "--max-frame-distance must be in [0, 2], got {max_frame_distance}"
        )));
    }
    rules.max_region_distance = max_region_distance;
    rules.max_frame_distance = max_frame_distance;
    rules.min_containment = min_containment;
    Ok(rules)
}

/// The model's LSH centre, when its sidecar has one.
pub(crate) fn lsh_centre(model: &ModelSource) -> Option<&[f32]> {
    model
        .sidecar
        .lsh_centre
        .as_ref()
        .map(|c| c.vector.as_slice())
}

#[cfg(test)]
mod tests {
    //! The stages after embed, run on a fake embedder: milliseconds, no model.
    use super::*;
    use crate::verify::Label;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake model: 16 numbers taken from a hash of the prepared pixels, so
    /// equal pixels give equal vectors and different photos far-apart ones.
    struct Fake;

    impl Embed for Fake {
        fn ready(&self) -> std::result::Result<(), String> {
            Ok(())
        }
        fn embed(&self, rgb: &[u8]) -> Result<Vec<f32>> {
            // As many numbers as the bundled model gives (its LSH centre
            // has that length), from the pixels' hash.
            let mut bytes = vec![0u8; FAKE_DIM];
            blake3::Hasher::new()
                .update(rgb)
                .finalize_xof()
                .fill(&mut bytes);
            let mut v: Vec<f32> = bytes.iter().map(|&b| b as f32 - 127.5).collect();
            embed::l2_normalise(&mut v);
            Ok(v)
        }
        fn dim(&self) -> std::result::Result<usize, String> {
            Ok(FAKE_DIM)
        }
    }

    const FAKE_DIM: usize = 1280;

    const A: &str = "samples/album/day1/DSC_0045.JPG";
    const B: &str = "samples/album/day1/DSC_0049.JPG";

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
    }

    fn run(opts: &ScanOptions, progress: &dyn Progress) -> Report {
        let model = ModelSource::bundled().unwrap();
        let cancel = AtomicBool::new(false);
        scan_with(opts, &model, &Fake, progress, &cancel).unwrap().0
    }

    #[test]
    fn two_copies_are_one_identical_group_and_another_photo_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), sample(A)).unwrap();
        std::fs::write(dir.path().join("copy.jpg"), sample(A)).unwrap();
        std::fs::write(dir.path().join("b.jpg"), sample(B)).unwrap();
        let r = run(&ScanOptions::new(vec![dir.path().into()]), &NoWarnings);
        assert_eq!(r.stats.photos_embedded, 3);
        assert_eq!(r.groups.len(), 1, "{:?}", r.groups);
        let g = &r.groups[0];
        assert_eq!(g.label, Label::Identical);
        let names: Vec<_> = g.files.iter().map(|f| Path::new(f).file_name()).collect();
        assert_eq!(names, [Some("a.jpg".as_ref()), Some("copy.jpg".as_ref())]);
        assert!(!g.pairs[0].mirrored);
    }

    #[test]
    fn distinct_photos_make_no_group() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), sample(A)).unwrap();
        std::fs::write(dir.path().join("b.jpg"), sample(B)).unwrap();
        let r = run(&ScanOptions::new(vec![dir.path().into()]), &NoWarnings);
        assert_eq!(r.stats.photos_embedded, 2);
        assert!(r.groups.is_empty());
        assert_eq!(r.stats.verified_pairs, 0);
    }

    struct NoWarnings;
    impl Progress for NoWarnings {}

    /// Counts warnings, and changes `file` once the embed stage is over
    /// (before verify reads it again).
    struct Rewrite<'a> {
        file: &'a Path,
        warnings: AtomicUsize,
    }
    impl Progress for Rewrite<'_> {
        fn finish(&self, stage: Stage) {
            if stage == Stage::Embed {
                let mut bytes = sample(A);
                bytes.extend_from_slice(b"changed after the embed stage");
                std::fs::write(self.file, bytes).unwrap();
            }
        }
        fn warn(&self, _message: &str) {
            self.warnings.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Two JPEGs with the same pixels and different bytes (one has bytes
    /// after its end marker), with a cache.
    fn same_pixels_pair(dir: &Path) -> ScanOptions {
        let photos = dir.join("photos");
        std::fs::create_dir(&photos).unwrap();
        std::fs::write(photos.join("a.jpg"), sample(A)).unwrap();
        let mut padded = sample(A);
        padded.extend_from_slice(b"trailing bytes");
        std::fs::write(photos.join("padded.jpg"), padded).unwrap();
        let mut opts = ScanOptions::new(vec![photos]);
        opts.cache = Some(dir.join("cache.db"));
        opts
    }

    fn same_pixels_facts(opts: &ScanOptions) -> usize {
        let model = ModelSource::bundled().unwrap();
        let cache = Cache::open(opts.cache.as_ref().unwrap(), &model, &NoWarnings);
        let a = crate::cache::content_key(&sample(A));
        let mut padded = sample(A);
        padded.extend_from_slice(b"trailing bytes");
        let b = crate::cache::content_key(&padded);
        let key = if a <= b {
            format!("{a}|{b}")
        } else {
            format!("{b}|{a}")
        };
        let n = cache
            .get_fact(crate::verify::pixels::SAME_PIXELS_FACT, &key)
            .map_or(0, |_| 1);
        drop(cache.close());
        n
    }

    #[test]
    fn same_pixels_are_found_and_cached_when_the_files_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let opts = same_pixels_pair(dir.path());
        let r = run(&opts, &NoWarnings);
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].label, Label::SamePixels);
        assert_eq!(same_pixels_facts(&opts), 1);
    }

    #[test]
    fn a_file_changed_after_embed_gives_no_evidence_and_nothing_cached() {
        let dir = tempfile::tempdir().unwrap();
        let opts = same_pixels_pair(dir.path());
        let progress = Rewrite {
            file: &dir.path().join("photos/padded.jpg"),
            warnings: AtomicUsize::new(0),
        };
        let r = run(&opts, &progress);
        // Still an edge by its distance, but not shown to have the same pixels.
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].label, Label::Edited);
        assert_eq!(progress.warnings.load(Ordering::Relaxed), 1);
        assert_eq!(same_pixels_facts(&opts), 0);
    }
}
