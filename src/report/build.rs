//! The report of a scan, assembled from what the stages handed on: the
//! photos and skips of the embed stage, the index's plan, the judged pairs,
//! the clusters, and per cluster its keeper ([`super::choose_keeper`]).

use crate::cache::Cache;
use crate::decisions::Applied;
use crate::decode::{self, Limits};
use crate::embed::{Embedded, Photo};
use crate::group::Cluster;
use crate::index::{nearest, CandidateStats, LshPlan, NeighbourStats, TARGET_RECALL};
use crate::keep;
use crate::model::ModelSource;
use crate::report::thumbs::{self, Spool, Thumbnails};
use crate::report::{self, Report};
use crate::reread::{self, RereadError};
use crate::verify::{Label, Rules, Verified};
use rayon::prelude::*;
use std::path::PathBuf;

/// The settings of the scan that the report records.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The roots actually walked (nested duplicates dropped).
    pub roots: &'a [PathBuf],
    /// The reference folders as given.
    pub reference: &'a [PathBuf],
    pub keep: &'a [keep::Criterion],
    pub hidden: bool,
    pub mirror: bool,
    /// The cosine distance threshold in force.
    pub threshold: f32,
    /// The search radius the index was planned for.
    pub radius: f32,
    pub rules: Rules,
    pub bits_from_user: bool,
    pub tables_from_user: bool,
}

/// Everything the report is built from, one value per stage.
pub struct Scanned<'a> {
    pub model: &'a ModelSource,
    pub opts: Settings<'a>,
    pub embedded: Embedded,
    pub plan: &'a LshPlan,
    pub candidates: CandidateStats,
    pub neighbours: Option<NeighbourStats>,
    pub verified: &'a Verified,
    /// What the user's decisions removed.
    pub decided: &'a Applied,
    pub clusters: &'a [Cluster],
    pub timings: Option<report::Timings>,
}

/// The report of a scan.
pub fn build(scanned: Scanned) -> Report {
    let Scanned {
        model,
        opts,
        embedded,
        plan,
        candidates: cstats,
        neighbours,
        verified,
        decided,
        clusters,
        timings,
    } = scanned;
    let Settings {
        roots,
        threshold,
        radius,
        rules,
        ..
    } = opts;
    let Embedded {
        photos,
        vectors,
        skipped,
        files_seen,
        ..
    } = embedded;
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
                    let j = verified
                        .get(sp.a, sp.b)
                        .expect("a cluster's pair is judged");
                    pair(&photos, j)
                })
                .collect();
            let (keeper, keeper_reason) = match super::choose_keeper(&members, opts.keep) {
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
                decision: None,
            }
        })
        .collect();
    Report {
        schema_version: report::SCHEMA_VERSION,
        tool: report::Tool {
            name: "neardup".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        model: model_info(model, vectors.dim),
        parameters: report::Parameters {
            metric: "cosine_distance".into(),
            threshold: report::round6(threshold as f64),
            bits: plan.bits,
            tables: plan.tables,
            seed: plan.seed,
            centre: plan.centre,
            bits_from: if opts.bits_from_user { "user" } else { "auto" }.into(),
            tables_from: if opts.tables_from_user {
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
            keep: opts.keep.to_vec(),
            decisions: decided.rules.clone(),
            roots_seal: None,
        },
        stats: report::Stats {
            files_seen,
            photos_embedded: photos.len() as u64,
            files_skipped: skipped.len() as u64,
            candidate_pairs: cstats.exact,
            bucket_collisions: cstats.collisions,
            verified_pairs: verified.judged.len() as u64,
            geometric_checks: verified.geometric_checks,
            not_same_picture: verified.not_same_picture,
            frame_settled: verified.frame_settled,
            decided_pairs: decided.removed,
            neighbour_search: neighbours.map(neighbour_search),
            groups: groups.len() as u64,
            photos_in_groups: groups.iter().map(|g| g.members.len() as u64).sum(),
            skipped: self::skipped(skipped),
            seconds: timings,
        },
        groups,
    }
}

/// A judged pair as the report shows it (its photos by path).
pub fn pair(photos: &[Photo], j: &crate::verify::Judged) -> report::Pair {
    let path_str = |i: u32| photos[i as usize].file.path.to_string_lossy().into_owned();
    report::Pair {
        a: path_str(j.pair.a),
        b: path_str(j.pair.b),
        distance: report::round6(j.pair.distance as f64),
        label: j.label,
        inliers: j.inliers,
        coverage: j.coverage.map(report::coverage_pair),
        regions: j.regions.map(report::round3),
        frame: j.frame.map(report::round3),
        mirrored: j.mirrored,
        raw_jpeg_pair: j.label == Label::RawJpeg,
    }
}

/// The report's description of the model that made vectors of `dim`.
pub fn model_info(model: &ModelSource, dim: usize) -> report::ModelInfo {
    let sc = &model.sidecar;
    report::ModelInfo {
        name: sc.name.clone(),
        sha256: model.sha256.clone(),
        source: if model.path.is_some() {
            "file"
        } else {
            "bundled"
        }
        .into(),
        path: model
            .path
            .as_deref()
            .map(|p| p.to_string_lossy().into_owned()),
        dimension: dim,
        input: sc.input.clone(),
        resize: sc.resize.clone(),
        output: sc.output.clone(),
    }
}

/// The skipped files as the report lists them.
pub fn skipped(list: Vec<(PathBuf, crate::photo::SkipReason)>) -> Vec<report::Skipped> {
    list.into_iter()
        .map(|(p, r)| report::Skipped {
            path: p.to_string_lossy().into_owned(),
            kind: r.kind,
            reason: r.message,
        })
        .collect()
}

/// The thumbnails of the photos `members`: from this scan's spool, else the
/// cache, else the file decoded again at reduced scale (a photo served from
/// a cache filled without thumbnails).
pub fn thumbnails(
    photos: &[Photo],
    clusters: &[Cluster],
    spool: &Spool,
    cache: &Cache,
    shorter_side: u32,
    limits: Limits,
) -> Thumbnails {
    let members = clusters.iter().flat_map(|c| c.members.iter().copied());
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
            let made = reread::checked(p)
                .map_err(|e| match e {
                    RereadError::Changed => "the file changed during the scan".to_string(),
                    RereadError::Read(e) => format!("cannot read: {e}"),
                })
                .and_then(|bytes| {
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

fn neighbour_search(n: NeighbourStats) -> report::NeighbourSearch {
    let (method, rounds) = match n.method {
        nearest::Method::Exact => ("exact", 0),
        nearest::Method::Descent { rounds } => ("descent", rounds),
        nearest::Method::Update { .. } => ("update", 0),
    };
    report::NeighbourSearch {
        method: method.into(),
        rounds,
        neighbours: n.neighbours,
        radius: report::round6(n.radius as f64),
        distances: n.distances,
        pairs: n.pairs,
    }
}
