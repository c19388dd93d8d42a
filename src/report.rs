//! The report: what a scan found, as plain data, and its writers.
//!
//! # JSON format (`schema_version` 1)
//!
//! `neardup scan --format json` writes one object. Fields are only ever
//! added, never renamed or removed, while `schema_version` stays 1.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "tool":   { "name": "neardup", "version": "0.1.0" },
//!   "model":  { "name", "sha256", "source": "bundled" | "file", "path"?, "dimension",
//!               "input": {...}, "resize": {...}, "output": {...} },   // the sidecar's values
//!   "parameters": { "metric": "cosine_distance", "threshold", "bits", "tables", "seed",
//!                   "centre": "origin" | "data_mean", "bits_from": "auto" | "user",
//!                   "tables_from": "auto" | "user", "target_recall",
//!                   "pair_recall_at_threshold", "hidden", "roots": [..],
//!                   "reference": [..], "keep": [criterion, ..], "roots_seal"? },
//!   "stats":  { "files_seen", "photos_embedded", "files_skipped", "candidate_pairs",
//!               "bucket_collisions", "verified_pairs", "groups", "photos_in_groups",
//!               "skipped": [ { "path", "kind", "reason" } ],
//!               "seconds"?: { "walk", "model_load", "decode_embed", "decode_thread",
//!                             "embed_thread", "index", "verify", "group", "total" } },
//!   "groups": [ { "id", "files": [path, ..],
//!                 "members": [ { "path", "bytes", "width", "height", "format",
//!                                "mtime_ns"?, "modified"?, "content"?, "captured"?,
//!                                "camera"?, "gps", "exif_fields", "reference"?,
//!                                "symlink"? } ],
//!                 "pairs":   [ { "a", "b", "distance" } ],
//!                 "keeper"?, "keeper_reason"? } ]
//! }
//! ```
//! - Distances are cosine distances `1 − cos` between the L2-normalised
//!   embeddings (0 = same direction), rounded to 6 decimals.
//! - `width`/`height` are as displayed (EXIF orientation applied).
//! - `kind` of a skipped file is one of `not_an_image`, `unsupported_format`,
//!   `corrupt`, `no_preview`, `too_large`, `unreadable`, `vanished`, `broken_symlink`,
//!   `not_a_file`, `non_utf8_name`.
//! - Groups are sorted by their first path; members, files and pairs by path.
//! - `stats.seconds` is present only with `--timings`: everything else is the
//!   same bytes for the same input and flags.

pub mod build;

use crate::decode::SkipKind;
use serde::{Deserialize, Serialize};
use std::io::Write;

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
    /// The cosine distance the candidate stage covers (the threshold, or
    /// the geometric check's neighbourhood in `similar` mode).
    pub search_radius: f64,
    pub mode: crate::decide::Mode,
    /// Every constant of the decision.
    pub rules: crate::decide::Rules,
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
    pub keep: Vec<crate::keep::Criterion>,
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
    pub groups: u64,
    pub photos_in_groups: u64,
    pub skipped: Vec<Skipped>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Timings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub kind: SkipKind,
    pub reason: String,
}

/// Wall-clock seconds per stage; `decode_thread` and `embed_thread` are the
/// time summed over worker threads (they run interleaved).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub walk: f64,
    pub model_load: f64,
    pub decode_embed: f64,
    pub decode_thread: f64,
    pub embed_thread: f64,
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
    pub label: crate::decide::Label,
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
        self.captured.is_some() as u32 + self.camera.is_some() as u32 + self.gps as u32
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) of a time in nanoseconds since the epoch.
pub fn utc_timestamp(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub distance: f64,
    pub label: crate::decide::Label,
    /// Inliers of the geometric check, when it ran for this pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inliers: Option<u32>,
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

/// The report as pretty JSON followed by a newline.
pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// Parse a JSON report back.
pub fn read_json(text: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(text)
}

/// The largest plan [`read_plan`] reads (a million groups fit well below).
pub const PLAN_CAP: u64 = 1 << 30;

/// The deepest nesting of arrays and objects [`read_plan`] accepts (a
/// report nests 6 levels).
pub const PLAN_MAX_DEPTH: usize = 32;

/// Read a plan (a report, maybe edited) the one validated way, for both
/// `neardup report` and `neardup apply`: a regular file of at most
/// [`PLAN_CAP`] bytes (never a FIFO or a device), valid JSON without a
/// duplicated key anywhere and nested at most [`PLAN_MAX_DEPTH`] levels,
/// `tool.name` "neardup", this [`SCHEMA_VERSION`], then the typed report.
pub fn read_plan(path: &std::path::Path) -> Result<Report, crate::Error> {
    use serde::de::DeserializeSeed;
    let shown = path.display();
    let fail =
        |why: String| crate::Error::Plan(format!("{shown} is not a neardup JSON report: {why}"));
    let text = crate::open::read_text_capped(path, PLAN_CAP).map_err(|e| match e {
        crate::open::ReadError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            fail("not text".into())
        }
        e => crate::Error::Plan(format!("cannot read {shown}: {e}")),
    })?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let shape = StrictShape { depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = shape {
        return Err(fail(match e.classify() {
            serde_json::error::Category::Data => e.to_string(),
            _ => format!("not valid JSON: {e}"),
        }));
    }
    #[derive(Deserialize)]
    struct Probe {
        tool: Option<serde_json::Value>,
        schema_version: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let name = probe
        .tool
        .as_ref()
        .and_then(|t| t.get("name"))
        .and_then(|n| n.as_str());
    if name != Some("neardup") {
        return Err(fail("no tool.name \"neardup\"".into()));
    }
    match probe.schema_version {
        None => return Err(fail("no schema_version".into())),
        Some(v) if v.as_u64() == Some(SCHEMA_VERSION as u64) => {}
        Some(v) => {
            return Err(crate::Error::Plan(format!(
                "{shown} has schema_version {v}; this neardup reads version {SCHEMA_VERSION}"
            )))
        }
    }
    serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
}

/// Walks any JSON value, refusing a key given twice in one object and
/// nesting deeper than [`PLAN_MAX_DEPTH`] (serde's derive would keep the
/// last of two keys in maps and ignored fields; `serde_json::Value` too).
struct StrictShape {
    depth: usize,
}

impl StrictShape {
    fn deeper<E: serde::de::Error>(&self) -> Result<StrictShape, E> {
        if self.depth >= PLAN_MAX_DEPTH {
            return Err(E::custom(format!(
                "nested deeper than {PLAN_MAX_DEPTH} levels"
            )));
        }
        Ok(StrictShape {
            depth: self.depth + 1,
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictShape {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictShape {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq
            .next_element_seed(StrictShape { depth: inner.depth })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let mut keys = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !keys.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {k:?} is given twice in one object"
                )));
            }
            map.next_value_seed(StrictShape { depth: inner.depth })?;
        }
        Ok(())
    }
}

/// Human-readable size: 1.2 MB, 340 kB, 12 B (powers of 1000).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Whether `c` is printed as an escape by [`escape_name`].
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{200e}' | '\u{200f}' | '\u{061c}' // bidi marks
                | '\u{2028}' | '\u{2029}' // line and paragraph separators
        )
}

/// A file name (or a path, or a message naming one) made safe to print on
/// a terminal as one line of text: a name cannot start a new line, move the
/// cursor, change colours or reorder the text around it.
///
/// - `\n`, `\r`, `\t` are printed as `\n`, `\r`, `\t`;
/// - the other C0 controls and DEL as `\x01` .. `\x1f`, `\x7f`;
/// - the C1 controls as `\u{80}` .. `\u{9f}`;
/// - the bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E,
///   U+200F, U+061C) and the line and paragraph separators (U+2028, U+2029)
///   as `\u{202e}` and so on.
///
/// A backslash stays one backslash (`C:\Users\me` reads as it is), except
/// where it would read as the start of an escape: before `n`, `r`, `t`,
/// `x`, `u`, another backslash or an escaped character it is doubled.
/// So the output reads back without ambiguity: `\\` is one backslash,
/// `\n` `\r` `\t` `\xHH` `\u{H..}` are the escaped characters, and any
/// other backslash is itself. Everything else (accents, emoji, other
/// scripts) is printed as it is. The JSON report is not escaped this way:
/// JSON has its own escapes.
pub fn escape_name(s: &str) -> std::borrow::Cow<'_, str> {
    let ambiguous = |next: Option<char>| {
        next.is_some_and(|n| matches!(n, '\\' | 'n' | 'r' | 't' | 'x' | 'u') || needs_escape(n))
    };
    let mut chars = s.chars().peekable();
    let clean = {
        let mut it = s.chars().peekable();
        let mut ok = true;
        while let Some(c) = it.next() {
            if needs_escape(c) || (c == '\\' && ambiguous(it.peek().copied())) {
                ok = false;
                break;
            }
        }
        ok
    };
    if clean {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => {
                out.push('\\');
                if ambiguous(chars.peek().copied()) {
                    out.push('\\');
                }
            }
            c if needs_escape(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The groups as text for people. Paths and reasons are printed through
/// [`escape_name`]: one line per file whatever its name holds.
pub fn write_text(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    if report.groups.is_empty() {
        writeln!(out, "No near-duplicates found.")?;
        return Ok(());
    }
    for g in &report.groups {
        writeln!(
            out,
            "Group {} · {} photos · {}",
            g.id,
            g.members.len(),
            g.label.as_str()
        )?;
        let paths: Vec<_> = g.members.iter().map(|m| escape_name(&m.path)).collect();
        let wpath = paths.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        for (m, path) in g.members.iter().zip(&paths) {
            let dims = format!("{}×{}", m.width, m.height);
            writeln!(
                out,
                "  {:<wpath$}  {:>9}  {:>11}  {}{}",
                path,
                human_bytes(m.bytes),
                dims,
                escape_name(&m.format),
                if m.reference { "  (reference)" } else { "" }
            )?;
        }
        if let Some(k) = &g.keeper {
            let k = escape_name(k);
            match &g.keeper_reason {
                Some(why) => writeln!(out, "  keep: {k} ({})", escape_name(why))?,
                None => writeln!(out, "  keep: {k}")?,
            }
        }
        writeln!(out, "  distances:")?;
        for p in &g.pairs {
            let mut why = match p.inliers {
                Some(k) => format!("{} ({k} inliers)", p.label.as_str()),
                None => p.label.as_str().to_string(),
            };
            if p.mirrored {
                why.push_str(", mirrored");
            }
            writeln!(
                out,
                "    {:.4}  {:<24}  {}  ~  {}",
                p.distance,
                why,
                escape_name(&p.a),
                escape_name(&p.b)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
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
                mode: crate::decide::Mode::Similar,
                rules: crate::decide::Rules::new(crate::decide::Mode::Similar, 0.21),
                hidden: false,
                mirror: false,
                roots: vec!["album".into()],
                reference: vec![],
                keep: crate::keep::complete(&[]),
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
                label: crate::decide::Label::Edited,
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
                    label: crate::decide::Label::Edited,
                    inliers: None,
                    mirrored: false,
                    raw_jpeg_pair: false,
                }],
                keeper: Some("album/a.jpg".into()),
                keeper_reason: Some("more pixels (4000×3000 vs 400×300)".into()),
            }],
        }
    }

    #[test]
    fn json_round_trips_into_typed_structs() {
        let r = sample();
        let mut buf = Vec::new();
        write_json(&r, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(read_json(&text).unwrap(), r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["stats"]["skipped"][0]["kind"], "not_an_image");
        assert_eq!(v["parameters"]["centre"], "data_mean");
        assert!(v["stats"].get("seconds").is_none());
        assert_eq!(v["groups"][0]["files"][1], "album/b.png");
        assert_eq!(v["groups"][0]["keeper"], "album/a.jpg");
        assert_eq!(
            v["groups"][0]["members"][0]["modified"],
            "2020-09-13T12:26:40Z"
        );
        assert_eq!(v["parameters"]["keep"][0], "pixels");
        // Members without metadata carry no empty fields.
        assert!(v["groups"][0]["members"][1].get("captured").is_none());
    }

    #[test]
    fn reports_without_the_new_fields_still_parse() {
        let mut v = serde_json::to_value(sample()).unwrap();
        for k in ["reference", "keep"] {
            v["parameters"].as_object_mut().unwrap().remove(k);
        }
        let g = v["groups"][0].as_object_mut().unwrap();
        g.remove("keeper");
        g.remove("keeper_reason");
        let m = v["groups"][0]["members"][0].as_object_mut().unwrap();
        for k in [
            "mtime_ns",
            "modified",
            "content",
            "captured",
            "camera",
            "gps",
            "exif_fields",
        ] {
            m.remove(k);
        }
        let r = read_json(&v.to_string()).unwrap();
        assert_eq!(r.groups[0].keeper, None);
        assert_eq!(r.groups[0].members[0].content, None);
        assert!(r.parameters.keep.is_empty());
    }

    #[test]
    fn read_plan_refuses_duplicate_keys_deep_nesting_and_other_versions() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("plan.json");
        let text = serde_json::to_string(&sample()).unwrap();
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_plan(&p).unwrap(), sample());
        let refusal = |body: &str| {
            std::fs::write(&p, body).unwrap();
            read_plan(&p).unwrap_err().to_string()
        };
        // A second keeper (the old apply reader, through Value, took it).
        let dup = text.replacen("\"keeper\":", "\"keeper\":\"album/b.png\",\"keeper\":", 1);
        let e = refusal(&dup);
        assert!(e.contains("\"keeper\" is given twice"), "{e}");
        let e = refusal(&text.replacen("{", "{\"x\":1,\"x\":1,", 1));
        assert!(e.contains("\"x\" is given twice"), "{e}");
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let e = refusal(&text.replacen("{", &format!("{{\"x\":{deep},"), 1));
        assert!(e.contains("nested deeper than 32 levels"), "{e}");
        let e = refusal(&text.replacen("\"schema_version\":1", "\"schema_version\":2", 1));
        assert!(e.contains("has schema_version 2"), "{e}");
        let e = refusal("{\"groups\": []}");
        assert!(
            e.contains("is not a neardup JSON report: no tool.name"),
            "{e}"
        );
        let e = refusal(&text[..text.len() / 2]);
        assert!(e.contains("not valid JSON"), "{e}");
        let e = read_plan(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc_timestamp(951_782_400_000_000_000),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(utc_timestamp(-1_000_000_000), "1969-12-31T23:59:59Z");
        assert_eq!(
            utc_timestamp(4_102_444_799_999_999_999),
            "2099-12-31T23:59:59Z"
        );
    }

    #[test]
    fn text_lists_members_and_distances() {
        let mut buf = Vec::new();
        write_text(&sample(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with("Group 1 · 2 photos · edited\n"), "{text}");
        assert!(
            text.contains("album/a.jpg") && text.contains("2.4 MB") && text.contains("4000×3000"),
            "{text}"
        );
        assert!(
            text.contains("0.0123  edited                    album/a.jpg  ~  album/b.png"),
            "{text}"
        );
        assert!(
            text.contains("  keep: album/a.jpg (more pixels (4000×3000 vs 400×300))\n"),
            "{text}"
        );
        let mut empty = sample();
        empty.groups.clear();
        let mut buf = Vec::new();
        write_text(&empty, &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "No near-duplicates found.\n"
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1500), "1.5 kB");
        assert_eq!(human_bytes(2_400_000), "2.4 MB");
    }
}
