//! Before a member is moved, trashed, linked or deleted, check again from
//! the files themselves (never the cache) that the keeper is still a
//! near-duplicate of it.
//!
//! A plan rests on cached facts (vectors, pixel hashes, inliers) and may
//! have been edited by hand. A flipped bit in a cached vector once put an
//! unrelated photo into a group at distance 0 and made it the keeper; acting
//! on that plan would have removed every real copy. So each (keeper,
//! member) couple is judged again, with the same decision rules as the scan
//! and `neardup explain` ([`decide::judge`] fed with evidence measured now):
//!
//! - the plan's direct pair between the two, if there is one, fixes what its
//!   label rests on: `identical` the bytes (the content keys that apply has
//!   just re-hashed from both files), `same-pixels` the decoded pixels,
//!   `edited` and `raw+jpeg` the embedding distance under the plan's
//!   threshold (against the flipped image for a `mirrored` pair), `similar`
//!   the distance under the geometric radius and the geometric check;
//! - a member that is in the group only through a chain must verify directly
//!   against the keeper, trying the cheapest evidence first (bytes, pixels,
//!   distance, then in `similar` mode the geometric check), as far as the
//!   plan's mode reaches.
//!
//! The embeddings are recomputed with the plan's model (bundled, or the
//! plan's `model.path`), which must have the plan's sha256. What is measured
//! of the keeper is kept for the whole group: it is decoded and embedded
//! once, not once per member.

use crate::decode::{self, Geometry, Limits};
use crate::embed::Embedder;
use crate::geometry;
use crate::index::cosine_distance;
use crate::model::ModelSource;
use crate::photo::Format;
use crate::report::{Member, Report};
use crate::verify::decide::{self, Evidence, Label, Mode, Rules};
use crate::verify::keypoints;
use std::path::{Path, PathBuf};

/// How much evidence a couple needs, from the cheapest to the dearest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Bytes,
    Pixels,
    Distance,
    Geometry,
}

fn level_of(label: Label) -> Level {
    match label {
        Label::Identical => Level::Bytes,
        Label::SamePixels => Level::Pixels,
        Label::RawJpeg | Label::Edited => Level::Distance,
        Label::Similar => Level::Geometry,
    }
}

/// What is measured of one file, each fact computed on first use.
struct Facts {
    path: PathBuf,
    bytes: Option<Vec<u8>>,
    pixels: Option<String>,
    vector: Option<Vec<f32>>,
    flipped: Option<Vec<f32>>,
    features: Option<geometry::Features>,
}

impl Facts {
    fn new(path: &Path) -> Facts {
        Facts {
            path: path.to_path_buf(),
            bytes: None,
            pixels: None,
            vector: None,
            flipped: None,
            features: None,
        }
    }

    fn bytes(&mut self) -> Result<&[u8], String> {
        if self.bytes.is_none() {
            let b = crate::open::read_capped(&self.path, decode::MAX_FILE_BYTES)
                .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
            self.bytes = Some(b);
        }
        Ok(self.bytes.as_deref().expect("read above"))
    }

    fn pixel_hash(&mut self, limits: Limits) -> Result<String, String> {
        if self.pixels.is_none() {
            let path = self.path.display().to_string();
            let h = decode::pixel_hash(self.bytes()?, limits)
                .map_err(|r| format!("cannot decode {path}: {}", r.message))?;
            self.pixels = Some(h);
        }
        Ok(self.pixels.clone().expect("set above"))
    }

    /// The embedding, and with `mirror` that of the image flipped left to
    /// right (as the scan's `--mirror` computes it), from one decode.
    fn vectors(
        &mut self,
        model: &Loaded,
        limits: Limits,
        mirror: bool,
    ) -> Result<(&[f32], Option<&[f32]>), String> {
        if self.vector.is_none() || (mirror && self.flipped.is_none()) {
            let path = self.path.display().to_string();
            let mut p = decode::prepare(self.bytes()?, model.geo, limits)
                .map_err(|r| format!("cannot decode {path}: {}", r.message))?;
            let embed = |rgb: &[u8]| {
                model
                    .embedder
                    .embed(rgb)
                    .map_err(|e| format!("cannot embed {path}: {e}"))
            };
            if self.vector.is_none() {
                self.vector = Some(embed(&p.rgb)?);
            }
            if mirror {
                decode::mirror_rgb(&mut p.rgb, model.geo.width);
                self.flipped = Some(embed(&p.rgb)?);
            }
        }
        let v = self.vector.as_deref().expect("set above");
        Ok((
            v,
            if mirror {
                self.flipped.as_deref()
            } else {
                None
            },
        ))
    }

    /// ORB features of the reduced photo, as the scan's geometric check
    /// computes them.
    fn features(
        &mut self,
        rules: &Rules,
        geo: Geometry,
        limits: Limits,
    ) -> Result<&geometry::Features, String> {
        if self.features.is_none() {
            let path = self.path.display().to_string();
            let f = keypoints::decode_features(self.bytes()?, rules, geo, limits)
                .map_err(|r| format!("cannot decode {path}: {}", r.message))?;
            self.features = Some(f);
        }
        Ok(self.features.as_ref().expect("set above"))
    }
}

/// The plan's model, loaded.
struct Loaded {
    embedder: Embedder,
    geo: Geometry,
}

/// The plan's model, or why it cannot be used, or not loaded yet.
enum ModelState {
    Unloaded,
    Ready(Box<Loaded>),
    Refused(String),
}

/// Judges (keeper, member) couples of one plan again from the files.
pub struct Verifier<'a> {
    report: &'a Report,
    rules: Rules,
    limits: Limits,
    model: ModelState,
    /// The keeper of the group being acted on, and its group id.
    keeper: Option<(u64, Facts)>,
}

impl<'a> Verifier<'a> {
    pub fn new(report: &'a Report, limits: Limits) -> Verifier<'a> {
        Verifier {
            report,
            rules: report.parameters.rules,
            limits,
            model: ModelState::Unloaded,
            keeper: None,
        }
    }

    /// The model the plan was scanned with, loaded on first need. Refused
    /// when it is not the plan's (sha256, input, resize or output differ).
    fn model(&mut self) -> Result<&Loaded, String> {
        if matches!(self.model, ModelState::Unloaded) {
            self.model = match load_model(self.report) {
                Ok(m) => ModelState::Ready(Box::new(m)),
                Err(e) => ModelState::Refused(e),
            };
        }
        match &self.model {
            ModelState::Ready(m) => Ok(m),
            ModelState::Refused(e) => Err(e.clone()),
            ModelState::Unloaded => unreachable!("loaded above"),
        }
    }

    /// Is `member` (at `member_abs`) still a near-duplicate of the keeper of
    /// group `group` (at `keeper_abs`)? Both files must already have been
    /// checked to be the scanned contents (their `content` keys re-hashed).
    /// `Ok` gives the label the files support now; `Err` the reason, with
    /// the evidence measured.
    pub fn check(
        &mut self,
        group: u64,
        keeper_abs: &Path,
        keeper: &Member,
        member_abs: &Path,
        member: &Member,
    ) -> Result<Label, String> {
        let stale = self
            .keeper
            .as_ref()
            .is_none_or(|(id, f)| *id != group || f.path != keeper_abs);
        if stale {
            self.keeper = Some((group, Facts::new(keeper_abs)));
        }
        let mut k = self.keeper.take().expect("set above");
        let mut m = Facts::new(member_abs);
        let r = self.judge(group, &mut k.1, keeper, &mut m, member);
        self.keeper = Some(k);
        r.map_err(|e| format!("not verified against the keeper {}: {e}", keeper.path))
    }

    fn judge(
        &mut self,
        group: u64,
        kf: &mut Facts,
        keeper: &Member,
        mf: &mut Facts,
        member: &Member,
    ) -> Result<Label, String> {
        let rules = self.rules;
        let limits = self.limits;
        let direct = self
            .report
            .groups
            .iter()
            .find(|g| g.id == group)
            .and_then(|g| {
                g.pairs.iter().find(|p| {
                    (p.a == keeper.path && p.b == member.path)
                        || (p.a == member.path && p.b == keeper.path)
                })
            });
        // A direct pair is held to what its label rests on; a chain to
        // whatever the plan's mode reaches.
        let (ceiling, mirror, claim) = match direct {
            Some(p) => (level_of(p.label), p.mirrored, Some(p.label)),
            None => (
                match rules.mode {
                    Mode::Copies => Level::Pixels,
                    Mode::Edits => Level::Distance,
                    Mode::Similar => Level::Geometry,
                },
                self.report.parameters.mirror,
                None,
            ),
        };
        let says = match claim {
            Some(l) => format!("the plan pairs them as {}, but ", l.as_str()),
            None => "in the group through other members, and ".to_string(),
        };
        let raw_jpeg = decide::is_raw_jpeg_pair(
            Path::new(&keeper.path),
            Format::from_name(&keeper.format),
            Path::new(&member.path),
            Format::from_name(&member.format),
        );
        let none = Evidence {
            raw_jpeg,
            ..Evidence::default()
        };

        // 1. The bytes: both contents were just re-hashed from the files.
        let same_bytes = keeper.content.is_some() && keeper.content == member.content;
        if same_bytes {
            if let Some(l) = decide::judge(0.0, Evidence { same_bytes, ..none }, &rules) {
                return Ok(l);
            }
        }
        if ceiling == Level::Bytes {
            return Err(format!("{says}the two files have different bytes"));
        }

        // 2. The pixels: for a same-pixels pair, or a chain member of the
        // keeper's displayed size (other sizes cannot have the same pixels).
        let try_pixels = claim == Some(Label::SamePixels)
            || (claim.is_none() && (keeper.width, keeper.height) == (member.width, member.height));
        let mut pixels_differ = false;
        if try_pixels {
            let (hk, hm) = (kf.pixel_hash(limits)?, mf.pixel_hash(limits)?);
            if hk == hm {
                if let Some(l) = decide::judge(
                    0.0,
                    Evidence {
                        same_pixels: true,
                        ..none
                    },
                    &rules,
                ) {
                    return Ok(l);
                }
            }
            pixels_differ = hk != hm;
        }
        if ceiling == Level::Pixels {
            return Err(if pixels_differ || claim.is_some() {
                format!("{says}their decoded pixels differ")
            } else {
                format!("{says}they are of different sizes (mode copies)")
            });
        }

        // 3. The embedding distance, with the plan's model.
        let t = rules.threshold;
        let model = self.model().map_err(|e| format!("cannot verify: {e}"))?;
        let geo = model.geo;
        let (kv, kflip) = kf.vectors(model, limits, mirror)?;
        let (mv, mflip) = mf.vectors(model, limits, mirror)?;
        let mut distance = cosine_distance(kv, mv);
        if let (Some(kflip), Some(mflip)) = (kflip, mflip) {
            // The scan compares each photo with the other's mirror image.
            distance = distance
                .min(cosine_distance(kv, mflip))
                .min(cosine_distance(kflip, mv));
        }
        if let Some(l) = decide::judge(distance, none, &rules) {
            return Ok(l);
        }
        let shown = if mirror {
            format!("distance {distance:.3} (mirror images included)")
        } else {
            format!("distance {distance:.3}")
        };
        if ceiling == Level::Distance {
            return Err(if distance <= t {
                format!("{says}{shown} is under the threshold {t:.3} but mode {:?} does not group edited copies", rules.mode)
            } else {
                format!("{says}{shown} > threshold {t:.3}")
            });
        }

        // 4. The geometric check (similar mode, within its radius).
        if rules.mode != Mode::Similar {
            return Err(format!(
                "{says}{shown} > threshold {t:.3} (mode {:?} runs no geometric check)",
                rules.mode
            ));
        }
        if distance >= rules.geo_radius {
            return Err(format!(
                "{says}{shown} > threshold {t:.3} and >= the geometric radius {:.3}",
                rules.geo_radius
            ));
        }
        let inliers = inliers(kf, keeper, mf, member, &rules, geo, limits)?;
        let ev = Evidence {
            inliers: Some(inliers),
            ..none
        };
        match decide::judge(distance, ev, &rules) {
            Some(l) => Ok(l),
            None => Err(format!(
                "{says}{shown} > threshold {t:.3} and the geometric check found {inliers} inliers < {}",
                rules.min_inliers
            )),
        }
    }
}

/// Inliers of the geometric check between two photos, as the scan counts
/// them: the photo whose path sorts first is matched against the other,
/// with a RANSAC seed drawn from the two contents in that order.
fn inliers(
    kf: &mut Facts,
    keeper: &Member,
    mf: &mut Facts,
    member: &Member,
    rules: &Rules,
    geo: Geometry,
    limits: Limits,
) -> Result<u32, String> {
    let fk = kf.features(rules, geo, limits)?.clone();
    let fm = mf.features(rules, geo, limits)?;
    let content = |m: &Member| m.content.clone().unwrap_or_default();
    let keeper_first = Path::new(&keeper.path) <= Path::new(&member.path);
    let (a, b, key) = if keeper_first {
        (&fk, fm, format!("{}|{}", content(keeper), content(member)))
    } else {
        (fm, &fk, format!("{}|{}", content(member), content(keeper)))
    };
    let seed = geometry::pair_seed(&key);
    Ok(
        geometry::homography_match(a, b, rules.ratio, rules.reproj_px, rules.ransac_iters, seed)
            .inliers,
    )
}

/// The plan's model: the bundled one, or the file at the plan's
/// `model.path`; its sha256 and sidecar must be the plan's.
fn load_model(report: &Report) -> Result<Loaded, String> {
    let info = &report.model;
    let source = match info.source.as_str() {
        "bundled" => ModelSource::bundled().map_err(|e| e.to_string())?,
        "file" => {
            let path = info
                .path
                .as_deref()
                .ok_or("the plan's model is a file but the plan gives no model.path")?;
            ModelSource::from_path(Path::new(path)).map_err(|e| e.to_string())?
        }
        other => return Err(format!("the plan's model source {other:?} is unknown")),
    };
    if !source.sha256.eq_ignore_ascii_case(&info.sha256) {
        return Err(format!(
            "the model's sha256 {} differs from the plan's model.sha256 {}",
            source.sha256, info.sha256
        ));
    }
    let sc = &source.sidecar;
    if sc.input != info.input || sc.resize != info.resize || sc.output != info.output {
        return Err(
            "the model's sidecar (input, resize or output) differs from the plan's".to_string(),
        );
    }
    let embedder = Embedder::load(&source).map_err(|e| e.to_string())?;
    Ok(Loaded {
        embedder,
        geo: sc.geometry(),
    })
}
