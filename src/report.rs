//! The report: what a scan found, as plain data ([`Report`] and the types
//! it holds), and its writers: [`text`] for people, [`json`] for programs
//! (and its one validated reader, [`read_plan`], for `neardup report` and
//! `neardup apply`), [`html`] as one self-contained page, with the
//! [`thumbs`] it shows.
//!
//! # The JSON report (`schema_version` 1)
//!
//! `neardup scan --format json` writes one object, pretty-printed, fields in
//! the order below. Fields are only ever added, never renamed or removed,
//! while `schema_version` stays 1; a field marked `?` is left out when it
//! has no value (or is `false`), and a reader must accept any of them
//! missing.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "tool":   { "name": "neardup", "version" },
//!   "model":  { "name", "sha256", "source": "bundled" | "file", "path"?, "dimension",
//!               "input":  { "name", "width", "height", "layout", "color", "scale",
//!                           "mean", "std" },
//!               "resize": { "shorter_side", "crop" },
//!               "output": { "name", "pooling" } },             // the sidecar's values
//!   "parameters": { "metric": "cosine_distance", "threshold", "bits", "tables", "seed",
//!                   "centre": "origin" | "data_mean" | "model",
//!                   "bits_from": "auto" | "user", "tables_from": "auto" | "user",
//!                   "target_recall", "pair_recall_at_threshold", "search_radius",
//!                   "mode": "copies" | "edits" | "similar",
//!                   "rules": { "mode", "threshold", "same_pixels_radius", "neighbours",
//!                              "geo_radius", "min_inliers", "min_coverage",
//!                              "max_region_distance", "min_containment",
//!                              "max_frame_distance", "geo_long_side",
//!                              "geo_features", "ratio", "reproj_px", "ransac_iters",
//!                              "link_fraction" },
//!                   "hidden", "mirror", "roots": [..], "reference": [..],
//!                   "keep": [criterion, ..],
//!                   "decisions"?: [ { "kind": "not-duplicates" | "keep-all",
//!                                     "contents": [content, ..] } ], "roots_seal"? },
//!   "stats":  { "files_seen", "photos_embedded", "files_skipped", "candidate_pairs",
//!               "bucket_collisions", "verified_pairs", "geometric_checks",
//!               "not_same_picture", "frame_settled", "decided_pairs", "neighbour_search"?: { "method": "exact" |
//!               "descent" | "update", "rounds", "neighbours", "radius", "distances",
//!               "pairs" },
//!               "groups", "photos_in_groups",
//!               "skipped": [ { "path", "kind", "reason" } ],
//!               "seconds"?: { "walk", "model_load", "decode_embed", "decode_thread",
//!                             "embed_thread", "index", "verify", "group", "total" } },
//!   "groups": [ { "id", "label", "raw_jpeg_pair"?, "files": [path, ..],
//!                 "members": [ { "path", "bytes", "width", "height", "format",
//!                                "mtime_ns"?, "modified"?, "content"?, "captured"?,
//!                                "camera"?, "gps", "exif_fields", "reference"?,
//!                                "symlink"? } ],
//!                 "pairs":   [ { "a", "b", "distance", "label", "inliers"?, "coverage"?,
//!                                "regions"?, "frame"?, "mirrored"?, "raw_jpeg_pair"? } ],
//!                 "keeper"?, "keeper_reason"?, "decision"? } ]
//! }
//! ```
//! - Distances are cosine distances `1 − cos` between the L2-normalised
//!   embeddings (0 = same direction), rounded to 6 decimals ([`round6`]), as
//!   are `threshold`, `search_radius`, `pair_recall_at_threshold` and the
//!   seconds.
//! - `label` (of a pair, and of a group: the loosest of its pairs) is one of
//!   `identical`, `same-pixels`, `raw+jpeg`, `edited`, `similar`;
//!   `inliers` is present when the geometric check ran for the pair, and
//!   `coverage` (`[a, b]`: the share of `a` that `b` shows, and of `b` that
//!   `a` shows, 3 decimals) when it fitted a homography, and `regions` (the
//!   worst quarter's cosine distance from what that homography lines it up
//!   with, 3 decimals) when both photos have a layout ([`crate::layout`]);
//!   `frame` (the worst quarter's cosine distance from the same place in
//!   the other, the two framed the same way, 3 decimals) when the verify
//!   stage looked at the pair's pictures. A pair above `same-pixels` whose
//!   `frame` is over `max_frame_distance`, or whose check has `min_inliers`
//!   and a coverage under `min_coverage` on either side, a larger share
//!   under `min_containment`, or `regions` over `max_region_distance` is
//!   not an edge (`not_same_picture`); `frame_settled` counts the pairs whose
//!   frame alone settled them, for which the geometric check did not run.
//! - `keep` criteria are `pixels`, `largest`, `smallest`, `format`, `exif`,
//!   `oldest`, `newest`, `path` (see [`keep`]); `keeper` is a member's path
//!   and `keeper_reason` says why, against the runner-up.
//! - `width`/`height` are as displayed (EXIF orientation applied);
//!   `mtime_ns` is nanoseconds since the epoch and `modified` the same time
//!   as `YYYY-MM-DDTHH:MM:SSZ`; `content` is `size:blake3` of the bytes as
//!   scanned (`apply` checks both); `captured` is the EXIF date
//!   `YYYY-MM-DDTHH:MM:SS`.
//! - `kind` of a skipped file is one of `not_an_image`, `unsupported_format`,
//!   `corrupt`, `no_preview`, `too_large`, `unreadable`, `vanished`, `broken_symlink`,
//!   `not_a_file`, `non_utf8_name`.
//! - Groups are sorted by their first path; members, files and pairs by path.
//! - `stats.seconds` is present only with `--timings`: everything else is the
//!   same bytes for the same input and flags.

pub mod build;

use crate::decode::SkipKind;
use crate::keep;
use serde::{Deserialize, Serialize};

pub mod html;
pub mod json;
pub mod text;
pub mod thumbs;

pub use crate::units::{human_bytes, utc_timestamp};
pub use json::{read_json, read_plan, write_json, PLAN_CAP, PLAN_MAX_DEPTH};
pub use text::{escape_name, write_text};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub model: ModelInfo,
    pub parameters: Parameters,
    pub stats: Stats,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub sha256: String,
    /// "bundled" or "file".
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub dimension: usize,
    pub input: crate::model::InputSpec,
    pub resize: crate::model::ResizeSpec,
    pub output: crate::model::OutputSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    pub metric: String,
    pub threshold: f64,
    pub bits: usize,
    pub tables: usize,
    pub seed: u64,
    pub centre: crate::index::Centre,
    pub bits_from: String,
    pub tables_from: String,
    pub target_recall: f64,
    pub pair_recall_at_threshold: f64,
    /// The cosine distance the candidate stage covers: the threshold, or in
    /// `similar` mode the geometric check's neighbourhood, where it finds
    /// each photo's nearest neighbours (not every pair: `stats.neighbour_search`).
    pub search_radius: f64,
    pub mode: crate::verify::decide::Mode,
    /// Every constant of the decision.
    pub rules: crate::verify::decide::Rules,
    pub hidden: bool,
    /// Mirrored copies count (`--mirror`).
    #[serde(default)]
    pub mirror: bool,
    pub roots: Vec<String>,
    /// Reference folders (`--reference`): their files are always kept.
    #[serde(default)]
    pub reference: Vec<String>,
    /// The keeper criteria, in order (`--keep`, completed with the defaults).
    #[serde(default)]
    pub keep: Vec<keep::Criterion>,
    /// The user's decisions (`neardup decide`) that name two or more of the
    /// scanned photos, by content: no pair within one of them is an edge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<crate::decisions::DecisionRule>,
    /// A keyed hash of `roots` and `reference` made by the scan with this
    /// user's secret (see `apply::seal_roots`): `apply` trusts the plan's
    /// roots only when it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots_seal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub files_seen: u64,
    pub photos_embedded: u64,
    pub files_skipped: u64,
    pub candidate_pairs: u64,
    pub bucket_collisions: u64,
    pub verified_pairs: u64,
    /// Pairs that went through the geometric check.
    pub geometric_checks: u64,
    /// Pairs close enough to be edges that the geometric check showed not
    /// to be the same picture (coverage, containment or regions: see
    /// [`crate::verify::decide::same_picture`]).
    #[serde(default)]
    pub not_same_picture: u64,
    /// Pairs whose frame distance alone showed they are not the same
    /// picture, so that the geometric check did not run for them.
    #[serde(default)]
    pub frame_settled: u64,
    /// Edges the user's decisions removed (`parameters.decisions`).
    #[serde(default)]
    pub decided_pairs: u64,
    /// How each photo's nearest neighbours were found (mode `similar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbour_search: Option<NeighbourSearch>,
    pub groups: u64,
    pub photos_in_groups: u64,
    pub skipped: Vec<Skipped>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Timings>,
}

/// The neighbour search of mode `similar` ([`crate::index::nearest`]):
/// `exact` (every pair compared), `descent` (seeded by the LSH tables,
/// `rounds` of neighbours of neighbours) or `update` (a rescan's: the
/// stored result, the changed photos searched exactly against all,
/// [`crate::index::memo`]), for each photo's `neighbours` nearest within
/// `radius`; `distances` computed (exact: every ordered pair; descent:
/// mostly between the vectors as bytes; update: searched photos × photos),
/// `pairs` found beyond the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighbourSearch {
    pub method: String,
    #[serde(default)]
    pub rounds: usize,
    pub neighbours: usize,
    pub radius: f64,
    pub distances: u64,
    pub pairs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub kind: SkipKind,
    pub reason: String,
}

/// Wall-clock seconds per stage; `decode_thread`, `embed_thread` and
/// `keypoints_thread` are the time summed over worker threads (they run
/// interleaved).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub walk: f64,
    pub model_load: f64,
    pub decode_embed: f64,
    pub decode_thread: f64,
    pub embed_thread: f64,
    /// The geometric check's keypoints made from the embed stage's decode.
    #[serde(default)]
    pub keypoints_thread: f64,
    pub index: f64,
    pub verify: f64,
    pub group: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// 1-based, in report order.
    pub id: u64,
    /// The loosest label of its pairs.
    pub label: crate::verify::decide::Label,
    /// True when a pair of the group is a RAW file and the camera JPEG of
    /// the same shot (`pairs[].raw_jpeg_pair`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_jpeg_pair: bool,
    /// The members' paths (the same as `members[].path`), for scripts.
    pub files: Vec<String>,
    pub members: Vec<Member>,
    pub pairs: Vec<Pair>,
    /// The path of the member to keep (`neardup apply` keeps it and acts
    /// on the others; a plan may name another member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper: Option<String>,
    /// Why that member, in words (against the runner-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper_reason: Option<String>,
    /// Never written by a scan: a user editing the plan sets it to
    /// `"not-duplicates"` or `"keep-all"`; `neardup decide import` stores
    /// it for every later scan, and `neardup apply` leaves the group alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::decisions::DecisionKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub path: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub format: String,
    /// Modification time in nanoseconds since the epoch, as scanned (apply
    /// checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// The modification time, `YYYY-MM-DDTHH:MM:SSZ` (UTC), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// `size:blake3` of the file's bytes, as scanned (apply checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// EXIF capture date (DateTimeOriginal, else DateTime), `YYYY-MM-DDTHH:MM:SS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<String>,
    /// EXIF camera make and model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// The EXIF holds a GPS position.
    #[serde(default)]
    pub gps: bool,
    /// Number of EXIF fields.
    #[serde(default)]
    pub exif_fields: u32,
    /// The file is in a reference folder (`--reference`): always kept,
    /// never touched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    /// The path is a symbolic link (to a file): never chosen as the keeper
    /// while a member is a regular file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub symlink: bool,
}

impl Member {
    /// How many of capture date, camera and GPS position are known (0-3).
    pub fn meta_richness(&self) -> u32 {
        self.candidate().meta_richness()
    }

    /// What [`keep`] ranks this member on.
    pub fn candidate(&self) -> keep::Candidate<'_> {
        keep::Candidate {
            path: &self.path,
            bytes: self.bytes,
            width: self.width,
            height: self.height,
            format: &self.format,
            mtime_ns: self.mtime_ns,
            captured: self.captured.as_deref(),
            camera: self.camera.as_deref(),
            gps: self.gps,
            exif_fields: self.exif_fields,
            reference: self.reference,
            symlink: self.symlink,
        }
    }
}

/// The member of a group to keep (its index in `members`) and why, in
/// words: [`keep::choose`] on the members' [`Member::candidate`]s.
pub fn choose_keeper(members: &[Member], order: &[keep::Criterion]) -> Option<(usize, String)> {
    let candidates: Vec<keep::Candidate<'_>> = members.iter().map(Member::candidate).collect();
    keep::choose(&candidates, order)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub distance: f64,
    pub label: crate::verify::decide::Label,
    /// Inliers of the geometric check, when it ran for this pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inliers: Option<u32>,
    /// `[a, b]`: the share of `a` that `b` shows and of `b` that `a` shows,
    /// through the homography of the geometric check, when it fitted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<[f64; 2]>,
    /// The largest cosine distance between a quarter of either photo and
    /// what that homography lines it up with in the other (3 decimals), when
    /// both photos have a layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<f64>,
    /// The largest cosine distance between a quarter of either photo and
    /// the same place in the other, the two framed the same way (3
    /// decimals), when both photos have a layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<f64>,
    /// True when the pair matched as mirror images (`--mirror`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirrored: bool,
    /// True when the pair is a RAW file and the camera JPEG of the same shot
    /// (label `raw+jpeg`): never to be proposed for deletion against each
    /// other unless the user asks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_jpeg_pair: bool,
}

/// Round to 6 decimals so that reports stay short and readable.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A region distance as the report writes it: 3 decimals.
pub fn round3(x: f32) -> f64 {
    (f64::from(x) * 1e3).round() / 1e3
}

/// A coverage as the report writes it: `[a, b]`, 3 decimals.
pub fn coverage_pair(c: crate::verify::decide::Coverage) -> [f64; 2] {
    [round3(c.a), round3(c.b)]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Report {
        let sidecar = crate::model::Sidecar::parse(crate::model::BUNDLED_SIDECAR).unwrap();
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "neardup".into(),
                version: "0.1.0".into(),
            },
            model: ModelInfo {
                name: sidecar.name.clone(),
                sha256: sidecar.sha256.clone(),
                source: "bundled".into(),
                path: None,
                dimension: 1280,
                input: sidecar.input,
                resize: sidecar.resize,
                output: sidecar.output,
            },
            parameters: Parameters {
                metric: "cosine_distance".into(),
                threshold: 0.21,
                bits: 8,
                tables: 3,
                seed: 1,
                centre: crate::index::Centre::DataMean,
                bits_from: "auto".into(),
                tables_from: "auto".into(),
                target_recall: 0.99,
                pair_recall_at_threshold: 0.995,
                search_radius: 0.5,
                mode: crate::verify::decide::Mode::Similar,
                rules: crate::verify::decide::Rules::new(
                    crate::verify::decide::Mode::Similar,
                    0.21,
                ),
                hidden: false,
                mirror: false,
                roots: vec!["album".into()],
                reference: vec![],
                keep: crate::keep::complete(&[]),
                decisions: Vec::new(),
                roots_seal: None,
            },
            stats: Stats {
                files_seen: 4,
                photos_embedded: 3,
                files_skipped: 1,
                candidate_pairs: 2,
                bucket_collisions: 2,
                verified_pairs: 1,
                geometric_checks: 0,
                not_same_picture: 0,
                frame_settled: 0,
                decided_pairs: 0,
                neighbour_search: None,
                groups: 1,
                photos_in_groups: 2,
                skipped: vec![Skipped {
                    path: "album/x.jpg".into(),
                    kind: SkipKind::NotAnImage,
                    reason: "not an image: the file is text".into(),
                }],
                seconds: None,
            },
            groups: vec![Group {
                id: 1,
                label: crate::verify::decide::Label::Edited,
                raw_jpeg_pair: false,
                files: vec!["album/a.jpg".into(), "album/b.png".into()],
                members: vec![
                    Member {
                        path: "album/a.jpg".into(),
                        bytes: 2_400_000,
                        width: 4000,
                        height: 3000,
                        format: "jpeg".into(),
                        mtime_ns: Some(1_600_000_000_000_000_000),
                        modified: Some(utc_timestamp(1_600_000_000_000_000_000)),
                        content: Some("2400000:abc".into()),
                        captured: Some("2020-01-02T03:04:05".into()),
                        camera: Some("NIKON D750".into()),
                        gps: true,
                        exif_fields: 40,
                        reference: false,
                        symlink: false,
                    },
                    Member {
                        path: "album/b.png".into(),
                        bytes: 900,
                        width: 400,
                        height: 300,
                        format: "png".into(),
                        ..Member::default()
                    },
                ],
                pairs: vec![Pair {
                    a: "album/a.jpg".into(),
                    b: "album/b.png".into(),
                    distance: 0.0123,
                    label: crate::verify::decide::Label::Edited,
                    inliers: None,
                    coverage: None,
                    regions: None,
                    frame: None,
                    mirrored: false,
                    raw_jpeg_pair: false,
                }],
                keeper: Some("album/a.jpg".into()),
                keeper_reason: Some("more pixels (4000×3000 vs 400×300)".into()),
                decision: None,
            }],
        }
    }
}
