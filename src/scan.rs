//! The scan pipeline, stage by stage: walk, decode + embed, index, verify,
//! group, report.

use crate::cache::{self, Cache};
use crate::decide::{self, Evidence, Judged, Label, Mode, Rules};
use crate::decode::{self, Limits, SkipKind, SkipReason};
use crate::embed::LazyEmbedder;
use crate::error::{Error, Result};
use crate::geometry;
use crate::group;
use crate::index::{self, Embeddings, LshRequest};
use crate::keep;
use crate::meta::{self, Meta};
use crate::model::ModelSource;
use crate::open;
use crate::progress::{Progress, Stage};
use crate::report::{self, Report};
use crate::thumbs::{self, Spool, Thumbnails};
use crate::walk::{self, FileEntry, WalkOptions};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The cosine distance used when neither the user nor the model's sidecar
/// gives one.
pub const DEFAULT_THRESHOLD: f32 = 0.21;
/// The share of brute-force pairs LSH must find (see [`crate::index`]).
pub const TARGET_RECALL: f64 = 0.99;
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
    /// Mirrored copies (horizontal flip) count as near-duplicates.
    pub mirror: bool,
    /// The keeper criteria, in order (see [`keep::complete`]).
    pub keep: Vec<keep::Criterion>,
    /// Reference folders: scanned like roots; their files are always kept.
    pub reference: Vec<PathBuf>,
    /// Make thumbnails of the photos in groups (for the HTML report).
    pub thumbnails: bool,
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
            mirror: false,
            keep: keep::complete(&[]),
            reference: Vec::new(),
            thumbnails: false,
        }
    }
}

/// A photo that was embedded.
#[derive(Debug, Clone)]
pub struct Photo {
    pub file: FileEntry,
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
    /// Size and BLAKE3 hash of the file's bytes (see [`cache::content_key`]).
    pub content: String,
    /// What its EXIF says.
    pub meta: Meta,
}

enum Outcome {
    Photo(Photo, Vec<f32>),
    Skip(PathBuf, SkipReason),
    /// The model could not be loaded: the whole run fails.
    Fatal(String),
}

/// Cache kind of the pixel hashes (see [`decode::pixel_hash`]).
const PIXELS_FACT: &str = "pixels/2";
/// Cache kind of the band-by-band comparisons of two JPEGs (see
/// [`decode::same_pixels`]).
const SAME_PIXELS_FACT: &str = "same-pixels/1";
/// Bumped whenever the geometric check changes its counts.
/// 3: the gray image comes from a decode at 1/8, 1/4 or 1/2 only.
/// 4: ... whose longer side covers 15/16 of the target (then upscaled).
const GEOMETRY_VERSION: u32 = 4;

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
/// photos in groups (see [`crate::thumbs`]), else an empty map.
pub fn scan_with_thumbnails(
    opts: &ScanOptions,
    model: &ModelSource,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(Report, Thumbnails)> {
    let t_total = Instant::now();
    let threshold = opts
        .threshold
        .or(model.sidecar.default_threshold)
        .unwrap_or(DEFAULT_THRESHOLD);
    if !(threshold > 0.0 && threshold < 2.0) {
        return Err(Error::Param(format!(
            "--threshold must be in (0, 2), got {threshold}"
        )));
    }

    // 1-2. Walk, decode and embed (the cache and the lazily loaded model
    // serve the later stages too).
    let embedder = LazyEmbedder::new(model);
    let cache = match &opts.cache {
        Some(path) => Cache::open(path, model, progress),
        None => Cache::disabled(),
    };
    let Embedded {
        roots,
        photos,
        vectors,
        skipped,
        files_seen,
        walk_s,
        model_load_s,
        decode_embed_s,
        decode_thread_s,
        embed_thread_s,
        thumbs: spool,
    } = walk_and_embed(opts, &embedder, &cache, progress, cancel)?;

    // 3. Index: hash every vector into the LSH tables, for the radius the
    // mode needs (the threshold, or the geometric check's neighbourhood).
    let mut rules = Rules::new(opts.mode, threshold);
    rules.min_inliers = opts.min_inliers;
    let radius = rules.search_radius();
    let t = Instant::now();
    progress.start(Stage::Index, None);
    let centre = lsh_centre(model);
    let req = LshRequest {
        bits: opts.bits,
        tables: opts.tables,
        seed: opts.seed,
        target_recall: TARGET_RECALL,
        centre,
    };
    let plan = index::plan(&vectors, radius, req)?;
    // Candidates from shared buckets, each verified by its exact distance
    // as it is found (no list of candidates is built).
    let (mut near, cstats) = index::search(&vectors, &plan, radius, |_, _| true);
    progress.finish(Stage::Index);
    let index_s = t.elapsed();
    check_cancel(cancel)?;

    // 4. Verify: what else a pair needs: same bytes, same pixels, the
    // geometric check.
    let t = Instant::now();
    progress.start(Stage::Verify, Some(near.len() as u64));
    let mirrored: HashSet<(u32, u32)> = if opts.mirror {
        let flipped = embed_mirrored(&photos, &embedder, opts, &cache, cancel)?;
        mirror_pairs(&vectors, &flipped, &mut near, threshold, opts.seed, centre)?
    } else {
        HashSet::new()
    };
    let same_pixels = same_pixel_pairs(&photos, &near, &rules, opts.limits, &cache);
    check_cancel(cancel)?;
    let checks = match rules.mode {
        Mode::Similar => decide::geometric_candidates(photos.len(), &near, &rules),
        _ => Vec::new(),
    };
    let inliers = geometric_check(&photos, &checks, &rules, opts.limits, &cache, cancel)?;
    let judged: Vec<Judged> = near
        .iter()
        .filter_map(|p| {
            let (a, b) = (&photos[p.a as usize], &photos[p.b as usize]);
            let ev = Evidence {
                same_bytes: a.content == b.content,
                same_pixels: same_pixels.contains(&(p.a, p.b)),
                inliers: inliers.get(&(p.a, p.b)).copied(),
                raw_jpeg: decide::is_raw_jpeg_pair(&a.file.path, a.format, &b.file.path, b.format),
            };
            decide::judge(p.distance, ev, &rules).map(|label| Judged {
                pair: *p,
                label,
                inliers: ev.inliers,
            })
        })
        .collect();
    progress.finish(Stage::Verify);
    let verify_s = t.elapsed();

    // 5. Group: average linkage over the edges.
    let t = Instant::now();
    let edges: Vec<index::ScoredPair> = judged.iter().map(|j| j.pair).collect();
    let dist =
        |a: u32, b: u32| index::cosine_distance(vectors.row(a as usize), vectors.row(b as usize));
    let clusters = group::average_linkage(
        photos.len(),
        &edges,
        rules.link_fraction,
        &dist,
        rules.geo_radius,
    );
    let by_pair: HashMap<(u32, u32), &Judged> =
        judged.iter().map(|j| ((j.pair.a, j.pair.b), j)).collect();
    let group_s = t.elapsed();

    let thumbnails = match &spool {
        Some(spool) => {
            let grouped = clusters.iter().flat_map(|c| c.members.iter().copied());
            grouped_thumbnails(&photos, grouped, spool, &cache, model, opts.limits)
        }
        None => Thumbnails::new(),
    };
    for warning in cache.close() {
        progress.warn(&warning);
    }

    // 6. Report.
    let references: Vec<PathBuf> = opts
        .reference
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    let path_str = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let groups: Vec<report::Group> = clusters
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let members: Vec<report::Member> = c
                .members
                .iter()
                .map(|&i| {
                    let p = &photos[i as usize];
                    report::Member {
                        path: path_str(&p.file.path),
                        bytes: p.file.bytes,
                        width: p.width,
                        height: p.height,
                        format: p.format.to_string(),
                        mtime_ns: Some(p.file.mtime_ns),
                        modified: Some(report::utc_timestamp(p.file.mtime_ns)),
                        content: Some(p.content.clone()),
                        captured: p.meta.captured.clone(),
                        camera: p.meta.camera.clone(),
                        gps: p.meta.gps,
                        exif_fields: p.meta.exif_fields,
                        reference: in_reference(&p.file.path, &references),
                        // A link is never the keeper while a real file is there.
                        symlink: std::fs::symlink_metadata(&p.file.path)
                            .is_ok_and(|m| m.file_type().is_symlink()),
                    }
                })
                .collect();
            let pairs: Vec<report::Pair> = c
                .pairs
                .iter()
                .map(|sp| {
                    let j = by_pair[&(sp.a, sp.b)];
                    report::Pair {
                        a: path_str(&photos[sp.a as usize].file.path),
                        b: path_str(&photos[sp.b as usize].file.path),
                        distance: report::round6(sp.distance as f64),
                        label: j.label,
                        inliers: j.inliers,
                        mirrored: mirrored.contains(&(sp.a, sp.b)),
                        raw_jpeg_pair: j.label == Label::RawJpeg,
                    }
                })
                .collect();
            let (keeper, keeper_reason) = match report::choose_keeper(&members, &opts.keep) {
                Some((i, why)) => (Some(members[i].path.clone()), Some(why)),
                None => (None, None),
            };
            report::Group {
                id: k as u64 + 1,
                label: pairs.iter().map(|p| p.label).max().unwrap_or(Label::Edited),
                raw_jpeg_pair: pairs.iter().any(|p| p.raw_jpeg_pair),
                files: members.iter().map(|m| m.path.clone()).collect(),
                members,
                pairs,
                keeper,
                keeper_reason,
            }
        })
        .collect();
    let secs = |d: Duration| report::round6(d.as_secs_f64());
    let timings = opts.timings.then(|| report::Timings {
        walk: secs(walk_s),
        model_load: secs(model_load_s),
        decode_embed: secs(decode_embed_s),
        decode_thread: report::round6(decode_thread_s),
        embed_thread: report::round6(embed_thread_s),
        index: secs(index_s),
        verify: secs(verify_s),
        group: secs(group_s),
        total: secs(t_total.elapsed()),
    });
    let sc = &model.sidecar;
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: report::Tool {
            name: "neardup".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        model: report::ModelInfo {
            name: sc.name.clone(),
            sha256: model.sha256.clone(),
            source: if model.path.is_some() {
                "file"
            } else {
                "bundled"
            }
            .into(),
            path: model.path.as_deref().map(path_str),
            dimension: vectors.dim,
            input: sc.input.clone(),
            resize: sc.resize.clone(),
            output: sc.output.clone(),
        },
        parameters: report::Parameters {
            metric: "cosine_distance".into(),
            threshold: report::round6(threshold as f64),
            bits: plan.bits,
            tables: plan.tables,
            seed: plan.seed,
            centre: plan.centre,
            bits_from: if opts.bits.is_some() { "user" } else { "auto" }.into(),
            tables_from: if opts.tables.is_some() {
                "user"
            } else {
                "auto"
            }
            .into(),
            target_recall: TARGET_RECALL,
            pair_recall_at_threshold: report::round6(plan.pair_recall_at_threshold),
            search_radius: report::round6(radius as f64),
            mode: rules.mode,
            rules,
            hidden: opts.hidden,
            mirror: opts.mirror,
            roots: roots.iter().map(|r| path_str(r)).collect(),
            reference: opts.reference.iter().map(|r| path_str(r)).collect(),
            keep: opts.keep.clone(),
            roots_seal: None,
        },
        stats: report::Stats {
            files_seen,
            photos_embedded: photos.len() as u64,
            files_skipped: skipped.len() as u64,
            candidate_pairs: cstats.exact,
            bucket_collisions: cstats.collisions,
            verified_pairs: judged.len() as u64,
            geometric_checks: checks.len() as u64,
            groups: groups.len() as u64,
            photos_in_groups: groups.iter().map(|g| g.members.len() as u64).sum(),
            skipped: skipped
                .into_iter()
                .map(|(p, r)| report::Skipped {
                    path: path_str(&p),
                    kind: r.kind,
                    reason: r.message,
                })
                .collect(),
            seconds: timings,
        },
        groups,
    };
    Ok((report, thumbnails))
}

/// The thumbnails of the photos `members`: from this scan's spool, else the
/// cache, else the file decoded again at reduced scale (a photo served from
/// a cache filled without thumbnails).
fn grouped_thumbnails(
    photos: &[Photo],
    members: impl Iterator<Item = u32>,
    spool: &Spool,
    cache: &Cache,
    model: &ModelSource,
    limits: Limits,
) -> Thumbnails {
    let shorter_side = model.sidecar.geometry().shorter_side;
    let mut wanted: Vec<u32> = members.collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
        .par_iter()
        .map(|&i| {
            let p = &photos[i as usize];
            let path = p.file.path.to_string_lossy().into_owned();
            if let Some(t) = spool.get(&p.content).or_else(|| {
                cache
                    .get_fact(thumbs::FACT_KIND, &p.content)
                    .and_then(|b| decode::Thumbnail::from_bytes(&b))
            }) {
                return (path, Ok(t));
            }
            let made = reread(&p.file.path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|bytes| {
                    if cache::content_key(&bytes) != p.content {
                        return Err("the file changed during the scan".to_string());
                    }
                    decode::thumbnail(&bytes, shorter_side, limits, decode::THUMB_LONG_SIDE)
                        .map_err(|r| r.message)
                });
            if let Ok(t) = &made {
                cache.put_fact(thumbs::FACT_KIND, &p.content, t.to_bytes());
            }
            (path, made)
        })
        .collect()
}

/// The photos found under the roots and their vectors (stages 1 and 2).
#[derive(Debug)]
pub struct Embedded {
    /// The roots actually walked (nested duplicates dropped).
    pub roots: Vec<PathBuf>,
    /// Photos in path order; `vectors.row(i)` belongs to `photos[i]`.
    pub photos: Vec<Photo>,
    pub vectors: Embeddings,
    /// Files not used, sorted by path.
    pub skipped: Vec<(PathBuf, SkipReason)>,
    pub files_seen: u64,
    pub walk_s: Duration,
    pub model_load_s: Duration,
    pub decode_embed_s: Duration,
    pub decode_thread_s: f64,
    pub embed_thread_s: f64,
    /// The thumbnails made while decoding, with `opts.thumbnails`.
    pub thumbs: Option<Spool>,
}

/// Walk the roots, then decode and embed every photo.
pub fn walk_and_embed(
    opts: &ScanOptions,
    embedder: &LazyEmbedder,
    cache: &Cache,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Embedded> {
    // Walk (reference folders are scanned like roots).
    let t = Instant::now();
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
    let walk_s = t.elapsed();

    // Decode and embed, one photo per task on every core. The model is
    // loaded on first need: a rescan served by the cache never loads it.
    let model = embedder.model();
    let geo = model.sidecar.geometry();
    let t = Instant::now();
    progress.start(Stage::Embed, Some(walked.files.len() as u64));
    let decode_ns = AtomicU64::new(0);
    let embed_ns = AtomicU64::new(0);
    let spool = if opts.thumbnails { Spool::new() } else { None };
    let outcomes: Vec<Outcome> = walked
        .files
        .par_iter()
        .map(|file| {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            // The EXIF metadata, from the cache or the bytes (read again
            // when a warm scan did not read them and the cache lacks it).
            let meta_of = |content: &str, bytes: Option<&[u8]>| -> Meta {
                if let Some(m) = cache
                    .get_fact(meta::FACT_KIND, content)
                    .and_then(|b| Meta::from_bytes(&b))
                {
                    return m;
                }
                let read;
                let bytes = match bytes {
                    Some(b) => b,
                    None => match reread(&file.path) {
                        Ok(b) if cache::content_key(&b) == content => {
                            read = b;
                            &read[..]
                        }
                        _ => return Meta::default(),
                    },
                };
                let m = meta::read(bytes);
                cache.put_fact(meta::FACT_KIND, content, m.to_bytes());
                m
            };
            let photo = |e: &cache::Entry, content: String, meta: Meta| Photo {
                file: file.clone(),
                width: e.width,
                height: e.height,
                format: decode::format_static(&e.format),
                content,
                meta,
            };
            // Fast path: same path, size and mtime as last time.
            if let Some(content) = cache.content_at(&file.path, file.bytes, file.mtime_ns) {
                if let Some(e) = cache.get(&content) {
                    let m = meta_of(&content, None);
                    progress.cached();
                    progress.advance(1);
                    return Some(Outcome::Photo(photo(&e, content.clone(), m), e.vector));
                }
            }
            let t0 = Instant::now();
            let bytes = match read_photo(file) {
                Ok(b) => b,
                Err(reason) => {
                    progress.skipped(&file.path, &reason);
                    progress.advance(1);
                    return Some(Outcome::Skip(file.path.clone(), reason));
                }
            };
            let content = cache::content_key(&bytes);
            // Same content seen elsewhere (moved, renamed, copied).
            let m = meta_of(&content, Some(&bytes));
            if let Some(e) = cache.get(&content) {
                cache.put_file(&file.path, file.bytes, file.mtime_ns, &content);
                progress.cached();
                progress.advance(1);
                return Some(Outcome::Photo(photo(&e, content.clone(), m), e.vector));
            }
            // With thumbnails wanted, they come from the same decoded pixels.
            let prepared = match &spool {
                Some(spool) => decode::prepare_with_thumbnail(
                    &bytes,
                    geo,
                    opts.limits,
                    decode::THUMB_LONG_SIDE,
                )
                .map(|(p, t)| {
                    spool.put(&content, &t);
                    cache.put_fact(thumbs::FACT_KIND, &content, t.to_bytes());
                    p
                }),
                None => decode::prepare(&bytes, geo, opts.limits),
            };
            drop(bytes);
            let t1 = Instant::now();
            decode_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
            let outcome = match prepared {
                Err(reason) => Outcome::Skip(file.path.clone(), reason),
                Ok(p) => match embedder.get() {
                    Err(e) => Outcome::Fatal(e),
                    Ok(embedder) => match embedder.embed(&p.rgb) {
                        Ok(v) => {
                            let entry = cache::Entry {
                                width: p.width,
                                height: p.height,
                                format: p.format.to_string(),
                                vector: v,
                            };
                            cache.put(&content, entry.clone());
                            cache.put_file(&file.path, file.bytes, file.mtime_ns, &content);
                            Outcome::Photo(photo(&entry, content, m), entry.vector)
                        }
                        Err(e) => Outcome::Skip(
                            file.path.clone(),
                            SkipReason::new(SkipKind::Corrupt, e.to_string()),
                        ),
                    },
                },
            };
            embed_ns.fetch_add(t1.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if let Outcome::Skip(path, reason) = &outcome {
                progress.skipped(path, reason);
            }
            progress.advance(1);
            Some(outcome)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(Error::Cancelled)?;
    progress.finish(Stage::Embed);
    let decode_embed_s = t.elapsed();
    if let Some(fatal) = outcomes.iter().find_map(|o| match o {
        Outcome::Fatal(e) => Some(e.clone()),
        _ => None,
    }) {
        return Err(Error::Model(fatal));
    }
    let dim = match outcomes.iter().find_map(|o| match o {
        Outcome::Photo(_, v) => Some(v.len()),
        _ => None,
    }) {
        Some(d) => d,
        None => embedder.get().map_err(Error::Model)?.dim(),
    };
    let model_load_s = embedder.load_time();

    let mut photos = Vec::new();
    let mut vectors = Embeddings::new(dim);
    // Entries the walk itself skipped that name a file (not a folder it
    // could not read) count as seen.
    let walked_files = walked.files.len();
    let skipped_entries = walked
        .skipped
        .iter()
        .filter(|s| {
            matches!(
                s.1.kind,
                SkipKind::BrokenSymlink | SkipKind::NotAFile | SkipKind::NonUtf8Name
            )
        })
        .count();
    let mut skipped = walked.skipped;
    for o in outcomes {
        match o {
            Outcome::Photo(p, v) => {
                vectors.try_push(&v)?;
                photos.push(p);
            }
            Outcome::Skip(path, reason) => skipped.push((path, reason)),
            Outcome::Fatal(_) => {}
        }
    }
    skipped.sort_by(|a, b| a.0.cmp(&b.0));
    let files_seen = (walked_files + skipped_entries) as u64;
    Ok(Embedded {
        roots,
        photos,
        vectors,
        skipped,
        files_seen,
        walk_s,
        model_load_s,
        decode_embed_s,
        decode_thread_s: decode_ns.into_inner() as f64 / 1e9,
        embed_thread_s: embed_ns.into_inner() as f64 / 1e9,
        thumbs: spool,
    })
}

/// The vector of every photo's mirror image (flipped left to right), from
/// the cache or embedded now.
fn embed_mirrored(
    photos: &[Photo],
    embedder: &LazyEmbedder,
    opts: &ScanOptions,
    cache: &Cache,
    cancel: &AtomicBool,
) -> Result<Embeddings> {
    let geo = embedder.model().sidecar.geometry();
    let vectors: std::result::Result<Vec<Vec<f32>>, String> = photos
        .par_iter()
        .map(|p| {
            if cancel.load(Ordering::Relaxed) {
                return Err("interrupted".to_string());
            }
            let key = format!("{}#mirror", p.content);
            if let Some(e) = cache.get(&key) {
                return Ok(e.vector);
            }
            let bytes =
                reread(&p.file.path).map_err(|e| format!("{}: {e}", p.file.path.display()))?;
            let mut prepared = decode::prepare(&bytes, geo, opts.limits).map_err(|r| r.message)?;
            decode::mirror_rgb(&mut prepared.rgb, geo.width);
            let v = embedder
                .get()?
                .embed(&prepared.rgb)
                .map_err(|e| e.to_string())?;
            cache.put(
                &key,
                cache::Entry {
                    width: p.width,
                    height: p.height,
                    format: p.format.to_string(),
                    vector: v.clone(),
                },
            );
            Ok(v)
        })
        .collect();
    check_cancel(cancel)?;
    // A file that changed or vanished since it was embedded fails the run
    // rather than giving a half-mirrored result.
    let vectors = vectors.map_err(|e| Error::Inference(format!("mirror image: {e}")))?;
    let mut out = Embeddings::new(vectors.first().map_or(0, Vec::len));
    for v in &vectors {
        out.try_push(v)?;
    }
    Ok(out)
}

/// The model's LSH centre, when its sidecar has one.
fn lsh_centre(model: &ModelSource) -> Option<&[f32]> {
    model
        .sidecar
        .lsh_centre
        .as_ref()
        .map(|c| c.vector.as_slice())
}

/// Add to `near` the pairs whose mirror images are within the threshold
/// (photo i against the flipped photo j), keeping the smaller distance;
/// returns the pairs found only through a mirror.
fn mirror_pairs(
    vectors: &Embeddings,
    flipped: &Embeddings,
    near: &mut Vec<index::ScoredPair>,
    threshold: f32,
    seed: u64,
    centre: Option<&[f32]>,
) -> Result<HashSet<(u32, u32)>> {
    let n = vectors.len();
    let mut both = vectors.clone();
    both.data.extend_from_slice(&flipped.data);
    let req = LshRequest {
        bits: None,
        tables: None,
        seed,
        target_recall: TARGET_RECALL,
        centre,
    };
    let plan = index::plan(&both, threshold, req)?;
    // Photo i against the flipped photo j (never itself).
    let n32 = n as u32;
    let (found, _) = index::search(&both, &plan, threshold, |a, b| {
        a < n32 && b >= n32 && a != b - n32
    });
    let mut best: HashMap<(u32, u32), f32> = HashMap::new();
    for p in found {
        let (i, j) = (p.a, p.b - n as u32);
        let key = (i.min(j), i.max(j));
        let d = best.entry(key).or_insert(p.distance);
        *d = d.min(p.distance);
    }
    let mut only_mirror = HashSet::new();
    let mut index_of: HashMap<(u32, u32), usize> = near
        .iter()
        .enumerate()
        .map(|(k, p)| ((p.a, p.b), k))
        .collect();
    let mut keys: Vec<_> = best.into_iter().collect();
    keys.sort_by_key(|(k, _)| *k);
    for ((a, b), d) in keys {
        match index_of.get(&(a, b)) {
            Some(&k) if near[k].distance <= d => {}
            Some(&k) => {
                near[k].distance = d;
                only_mirror.insert((a, b));
            }
            None => {
                index_of.insert((a, b), near.len());
                near.push(index::ScoredPair { a, b, distance: d });
                only_mirror.insert((a, b));
            }
        }
    }
    near.sort_by_key(|p| (p.a, p.b));
    Ok(only_mirror)
}

/// Pairs close enough to be the same image, of the same displayed size and
/// not byte-identical, whose fully decoded pixels are equal.
fn same_pixel_pairs(
    photos: &[Photo],
    near: &[index::ScoredPair],
    rules: &Rules,
    limits: Limits,
    cache: &Cache,
) -> HashSet<(u32, u32)> {
    let todo: Vec<index::ScoredPair> = near
        .iter()
        .filter(|p| {
            let (a, b) = (&photos[p.a as usize], &photos[p.b as usize]);
            p.distance <= rules.same_pixels_radius
                && a.content != b.content
                && (a.width, a.height) == (b.width, b.height)
        })
        .copied()
        .collect();
    // Two JPEGs are decoded side by side and compared band by band, which
    // stops at the first difference; the answer depends only on the two
    // contents, so it is cached for the pair (in content order). Within a
    // cluster of such pairs, a pair already joined by proven-same pairs is
    // not decoded again (same pixels is transitive), so that k copies with
    // the same pixels cost k - 1 comparisons, not k(k - 1)/2.
    let pair_key = |a: u32, b: u32| {
        let (x, y) = (&photos[a as usize].content, &photos[b as usize].content);
        if x <= y {
            format!("{x}|{y}")
        } else {
            format!("{y}|{x}")
        }
    };
    let compare = |a: u32, b: u32| -> Option<bool> {
        let key = pair_key(a, b);
        match cache.get_fact(SAME_PIXELS_FACT, &key).as_deref() {
            Some([0]) => return Some(false),
            Some([1]) => return Some(true),
            _ => {}
        }
        let read = |i: u32| reread(&photos[i as usize].file.path).ok();
        let (Some(x), Some(y)) = (read(a), read(b)) else {
            return Some(false); // unreadable now: not shown to be the same
        };
        match decode::same_pixels(&x, &y, limits) {
            Ok(Some(same)) => {
                cache.put_fact(SAME_PIXELS_FACT, &key, vec![same as u8]);
                Some(same)
            }
            Ok(None) => None,
            Err(_) => Some(false),
        }
    };
    let clusters = crate::group::connected_components(photos.len(), &todo);
    let compared: Vec<((u32, u32), Option<bool>)> = clusters
        .par_iter()
        .flat_map_iter(|c| {
            let local = |i: u32| c.members.binary_search(&i).expect("a member") as u32;
            let mut proven = crate::group::UnionFind::new(c.members.len());
            c.pairs
                .iter()
                .map(|p| {
                    let (la, lb) = (local(p.a), local(p.b));
                    if proven.find(la) == proven.find(lb) {
                        return ((p.a, p.b), Some(true));
                    }
                    let answer = compare(p.a, p.b);
                    if answer == Some(true) {
                        proven.union(la, lb);
                    }
                    ((p.a, p.b), answer)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut same: HashSet<(u32, u32)> = compared
        .iter()
        .filter(|(_, v)| *v == Some(true))
        .map(|(p, _)| *p)
        .collect();
    // The rest (other formats, other orientations): a hash of each photo's
    // whole pixels, computed once per photo.
    let rest: Vec<(u32, u32)> = compared
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(p, _)| *p)
        .collect();
    let needed = photos_in(rest.iter().copied());
    let hashes: HashMap<u32, String> = needed
        .par_iter()
        .filter_map(|&i| {
            let p = &photos[i as usize];
            if let Some(h) = cache.get_fact(PIXELS_FACT, &p.content) {
                return String::from_utf8(h).ok().map(|h| (i, h));
            }
            let bytes = reread(&p.file.path).ok()?;
            let h = decode::pixel_hash(&bytes, limits).ok()?;
            cache.put_fact(PIXELS_FACT, &p.content, h.clone().into_bytes());
            Some((i, h))
        })
        .collect();
    same.extend(
        rest.into_iter().filter(
            |(a, b)| matches!((hashes.get(a), hashes.get(b)), (Some(x), Some(y)) if x == y),
        ),
    );
    same
}

/// Inliers of the geometric check of each pair in `checks`. Features are
/// computed once per photo involved, from a second, reduced decode.
fn geometric_check(
    photos: &[Photo],
    checks: &[(u32, u32)],
    rules: &Rules,
    limits: Limits,
    cache: &Cache,
    cancel: &AtomicBool,
) -> Result<HashMap<(u32, u32), u32>> {
    // Results depend only on the two files' contents and the constants, so
    // they are cached by content and seeded by content.
    let kind = format!(
        "inliers/{GEOMETRY_VERSION}/{}/{}/{}/{}/{}",
        rules.geo_features, rules.geo_long_side, rules.ratio, rules.reproj_px, rules.ransac_iters
    );
    let key = |a: u32, b: u32| {
        format!(
            "{}|{}",
            photos[a as usize].content, photos[b as usize].content
        )
    };
    let mut known: HashMap<(u32, u32), u32> = HashMap::new();
    let mut todo: Vec<(u32, u32)> = Vec::new();
    for &(a, b) in checks {
        match cache
            .get_fact(&kind, &key(a, b))
            .and_then(|v| v.try_into().ok())
        {
            Some(bytes) => {
                known.insert((a, b), u32::from_le_bytes(bytes));
            }
            None => todo.push((a, b)),
        }
    }
    let checks = &todo[..];
    let needed = photos_in(checks.iter().copied());
    let params = geometry::OrbParams {
        n_features: rules.geo_features,
        ..Default::default()
    };
    let features: HashMap<u32, geometry::Features> = needed
        .par_iter()
        .filter_map(|&i| {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let bytes = reread(&photos[i as usize].file.path).ok()?;
            let g = decode::prepare_gray(&bytes, rules.geo_long_side, limits).ok()?;
            let gray = geometry::Gray {
                width: g.width,
                height: g.height,
                pixels: &g.pixels,
            };
            Some((i, geometry::orb(&gray, &params)))
        })
        .collect();
    check_cancel(cancel)?;
    let empty = geometry::Features::default();
    let computed: Vec<((u32, u32), u32)> = checks
        .par_iter()
        .map(|&(a, b)| {
            let fa = features.get(&a).unwrap_or(&empty);
            let fb = features.get(&b).unwrap_or(&empty);
            // The photo whose path sorts first is matched against the other;
            // the RANSAC seed comes from the two contents, so the count does
            // not depend on what else was scanned.
            let k = key(a, b);
            let seed = geometry::pair_seed(&k);
            let n = geometry::homography_inliers(
                fa,
                fb,
                rules.ratio,
                rules.reproj_px,
                rules.ransac_iters,
                seed,
            ) as u32;
            // A photo that could not be read again is not remembered as 0.
            if features.contains_key(&a) && features.contains_key(&b) {
                cache.put_fact(&kind, &k, n.to_le_bytes().to_vec());
            }
            ((a, b), n)
        })
        .collect();
    known.extend(computed);
    Ok(known)
}

/// True when `path` lies in one of the (canonical) reference folders. The
/// folder holding the file is resolved, not the file itself: a link in a
/// reference folder is in it.
fn in_reference(path: &std::path::Path, references: &[PathBuf]) -> bool {
    if references.is_empty() {
        return false;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let Ok(dir) = std::fs::canonicalize(parent) else {
        return false;
    };
    let full = match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    };
    references.iter().any(|r| full.starts_with(r))
}

/// The photos that appear in `pairs`, sorted, each once.
fn photos_in(pairs: impl Iterator<Item = (u32, u32)>) -> Vec<u32> {
    let mut v: Vec<u32> = pairs.flat_map(|(a, b)| [a, b]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn check_cancel(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Read a file that may be a photo: a regular file (never a FIFO or a
/// device, checked on the open handle), sniffed from its first bytes, then
/// read whole only when its length is within what its format allows
/// ([`decode::max_file_bytes`]); a sparse file of gigabytes is refused
/// before anything but its first bytes is read.
fn read_photo(file: &FileEntry) -> std::result::Result<Vec<u8>, SkipReason> {
    let (mut f, meta) = open::open_regular(&file.path).map_err(read_skip)?;
    let len = meta.len();
    if len > decode::MAX_FILE_BYTES {
        return Err(too_large(len, decode::MAX_FILE_BYTES));
    }
    let mut head = [0u8; 4096];
    let n = open::read_up_to(&mut f, &mut head).map_err(|e| read_skip(e.into()))?;
    let format = decode::sniff(&head[..n])?;
    let cap = decode::max_file_bytes(format);
    if len > cap {
        return Err(too_large(len, cap));
    }
    std::io::Seek::rewind(&mut f).map_err(|e| read_skip(e.into()))?;
    open::read_open_capped(f, &meta, cap).map_err(read_skip)
}

fn too_large(len: u64, cap: u64) -> SkipReason {
    SkipReason::new(
        SkipKind::TooLarge,
        format!(
            "{} is too large for a photo (at most {} of this format are read)",
            report::human_bytes(len),
            report::human_bytes(cap)
        ),
    )
}

/// Why a file could not be read, as a skip.
fn read_skip(e: open::ReadError) -> SkipReason {
    match e {
        open::ReadError::NotFound => {
            SkipReason::new(SkipKind::Vanished, "the file disappeared during the scan")
        }
        open::ReadError::NotAFile(kind) => {
            SkipReason::new(SkipKind::NotAFile, format!("not a regular file: {kind}"))
        }
        open::ReadError::TooLarge { len, cap } => too_large(len, cap),
        open::ReadError::Io(e) => {
            SkipReason::new(SkipKind::Unreadable, format!("cannot read: {e}"))
        }
    }
}

/// A photo's bytes read again after the walk (verify stages, thumbnails):
/// regular files only, bounded like the first read.
fn reread(path: &std::path::Path) -> std::result::Result<Vec<u8>, open::ReadError> {
    open::read_capped(path, decode::MAX_FILE_BYTES)
}
