//! Deciding which pairs are near-duplicates, and what kind.
//!
//! A pair becomes an *edge* of the grouping by one of two routes:
//! - its exact cosine distance is at or under the threshold (edited copies,
//!   re-saves, exact copies), or
//! - in `similar` mode, it is among either photo's [`Rules::neighbours`]
//!   nearest neighbours, closer than [`Rules::geo_radius`], and a geometric
//!   check (ORB features, ratio test, RANSAC homography) finds at least
//!   [`Rules::min_inliers`] inliers: the same scene shot again.
//!
//! Every pair then gets a [`Label`] from measurements: `identical` (same
//! bytes), `same-pixels` (same decoded image, different file), `edited`
//! (distance at or under the threshold), `similar` (found by the geometric
//! check only).

pub use crate::geometry::Coverage;
use crate::index::ScoredPair;
use crate::photo::Format;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How far the grouping reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Identical files and same-pixel copies only.
    Copies,
    /// Plus edited copies: everything at or under the distance threshold.
    Edits,
    /// Plus the same scene shot again, confirmed by the geometric check.
    Similar,
}

/// What kind of near-duplicate a pair (or a group) is, from the closest
/// kind to the loosest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Label {
    /// The same bytes.
    Identical,
    /// The same decoded image in another file (re-saved, metadata changed,
    /// PNG <-> lossless).
    SamePixels,
    /// A RAW file and the camera JPEG (or HEIC) of the same shot: the same
    /// name in the same folder, and as close as an edited copy. Keep both:
    /// they are not proposed for deletion against each other.
    #[serde(rename = "raw+jpeg")]
    RawJpeg,
    /// Resized, re-encoded, cropped, colour-edited, rotated a little: the
    /// embedding distance is at or under the threshold.
    Edited,
    /// The same scene shot again (burst, re-shot, other device): farther
    /// than the threshold, confirmed by the geometric check.
    Similar,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Identical => "identical",
            Label::SamePixels => "same-pixels",
            Label::RawJpeg => "raw+jpeg",
            Label::Edited => "edited",
            Label::Similar => "similar",
        }
    }
}

/// The constants of the decision. Defaults were chosen on the development
/// benchmarks and checked for stability (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub mode: Mode,
    /// Cosine distance at or under which a pair is an edited copy.
    pub threshold: f32,
    /// Pairs this close (and of equal size) are checked for same pixels.
    pub same_pixels_radius: f32,
    /// Each photo's this many nearest neighbours are checked geometrically.
    pub neighbours: usize,
    /// ... when closer than this cosine distance.
    pub geo_radius: f32,
    /// RANSAC homography inliers needed to accept a checked pair.
    pub min_inliers: u32,
    /// Share of each photo the other must show (through the homography of
    /// a geometric check with `min_inliers` or more) for any tier above
    /// same-pixels: under it, the two are a panorama's neighbours, a wide
    /// shot and its detail, or share only a region.
    #[serde(default = "default_min_coverage")]
    pub min_coverage: f32,
    /// ... and no quarter of either photo may be further than this cosine
    /// distance from what the homography lines it up with in the other
    /// ([`crate::layout::region_distance`]): over it, the two share a part
    /// (a tile, an object, a detail) and differ elsewhere. 2 turns it off.
    #[serde(default = "default_max_region_distance")]
    pub max_region_distance: f32,
    /// ... and the larger of the two shares must reach this: one frame shows
    /// nearly all of the other (a crop, a zoom, a burst), where two frames
    /// shifted apart (a panorama's neighbours, half a scene each) show only
    /// part of each other both ways.
    #[serde(default = "default_min_containment")]
    pub min_containment: f32,
    /// ... and, with or without a homography, the two framed the same way
    /// (each stretched onto the other, corner to corner) must show the same
    /// things in the same places: no quarter of either further than this
    /// cosine distance from the same place in the other
    /// ([`crate::layout::frame_distance`]). An edited copy, a burst frame, a
    /// re-shot from about the same place line up; a panorama's neighbours,
    /// two photos sharing a tile or an object do not. 2 turns it off.
    #[serde(default = "default_max_frame_distance")]
    pub max_frame_distance: f32,
    /// Photos are reduced to this longer side for the check.
    pub geo_long_side: u32,
    /// ORB features per photo.
    pub geo_features: usize,
    /// Lowe ratio of the descriptor matching.
    pub ratio: f32,
    /// RANSAC reprojection tolerance, pixels (in the reduced photo).
    pub reproj_px: f32,
    /// RANSAC iterations at most.
    pub ransac_iters: usize,
    /// Share of cross pairs that must be edges for two groups to merge.
    pub link_fraction: f64,
}

/// The default [`Rules::min_coverage`] (see the README, "The same picture").
pub const MIN_COVERAGE: f32 = 0.3;

fn default_min_coverage() -> f32 {
    MIN_COVERAGE
}

/// The default [`Rules::max_region_distance`] (see the README, "The same
/// picture").
pub const MAX_REGION_DISTANCE: f32 = 0.5;

fn default_max_region_distance() -> f32 {
    MAX_REGION_DISTANCE
}

/// The default [`Rules::min_containment`].
pub const MIN_CONTAINMENT: f32 = 0.6;

fn default_min_containment() -> f32 {
    MIN_CONTAINMENT
}

/// The default [`Rules::max_frame_distance`] (see the README, "The same
/// picture").
pub const MAX_FRAME_DISTANCE: f32 = 0.65;

fn default_max_frame_distance() -> f32 {
    MAX_FRAME_DISTANCE
}

/// The flags of the same-picture rule ([`same_picture`]), as a scan and
/// `explain` take them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamePicture {
    pub min_coverage: f32,
    pub min_containment: f32,
    pub max_region_distance: f32,
    pub max_frame_distance: f32,
}

impl Default for SamePicture {
    fn default() -> Self {
        SamePicture {
            min_coverage: MIN_COVERAGE,
            min_containment: MIN_CONTAINMENT,
            max_region_distance: MAX_REGION_DISTANCE,
            max_frame_distance: MAX_FRAME_DISTANCE,
        }
    }
}

impl Rules {
    pub fn new(mode: Mode, threshold: f32) -> Rules {
        Rules {
            mode,
            threshold,
            same_pixels_radius: 0.02,
            neighbours: 5,
            geo_radius: 0.5,
            min_inliers: 12,
            min_coverage: MIN_COVERAGE,
            max_region_distance: MAX_REGION_DISTANCE,
            min_containment: MIN_CONTAINMENT,
            max_frame_distance: MAX_FRAME_DISTANCE,
            geo_long_side: 512,
            geo_features: 1000,
            ratio: 0.8,
            reproj_px: 5.0,
            ransac_iters: 2000,
            link_fraction: crate::group::LINK_FRACTION,
        }
    }

    /// The radius the candidate stage must cover.
    pub fn search_radius(&self) -> f32 {
        match self.mode {
            Mode::Similar => self.threshold.max(self.geo_radius),
            _ => self.threshold,
        }
    }
}

/// The pairs to check geometrically: for every photo, its `neighbours`
/// nearest (by distance, then index) among `near` pairs closer than
/// `geo_radius`, keeping only pairs farther than the threshold (closer
/// ones are edges already). Sorted, each pair once.
pub fn geometric_candidates(n: usize, near: &[ScoredPair], rules: &Rules) -> Vec<(u32, u32)> {
    let mut by_photo: Vec<Vec<(f32, u32)>> = vec![Vec::new(); n];
    for p in near.iter().filter(|p| p.distance < rules.geo_radius) {
        by_photo[p.a as usize].push((p.distance, p.b));
        by_photo[p.b as usize].push((p.distance, p.a));
    }
    let mut out = Vec::new();
    for (i, list) in by_photo.iter_mut().enumerate() {
        list.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        for &(d, j) in list.iter().take(rules.neighbours) {
            if d > rules.threshold {
                out.push(((i as u32).min(j), (i as u32).max(j)));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A pair with everything measured about it: what the later stages (group,
/// report) need, so that nothing is joined to it later by index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    pub pair: ScoredPair,
    pub label: Label,
    /// Inliers of the geometric check, when it ran.
    pub inliers: Option<u32>,
    /// What each photo shows of the other, when the check fitted a model.
    pub coverage: Option<Coverage>,
    /// The worst quarter's distance under that model, when both photos
    /// have a layout.
    pub regions: Option<f32>,
    /// The worst quarter's distance framed the same way
    /// ([`Rules::max_frame_distance`]).
    pub frame: Option<f32>,
    /// Found only through a mirror image (or closer through one).
    pub mirrored: bool,
}

/// Facts about a pair beyond its distance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    pub same_bytes: bool,
    pub same_pixels: bool,
    pub inliers: Option<u32>,
    /// The coverage of the homography the geometric check fitted.
    pub coverage: Option<Coverage>,
    /// The region distance under that homography ([`Rules::max_region_distance`]).
    pub regions: Option<f32>,
    /// The region distance of the two framed the same way
    /// ([`Rules::max_frame_distance`]), when the verify stage looked at their
    /// pictures and both have a layout.
    pub frame: Option<f32>,
    /// A RAW file and the camera JPEG of the same shot ([`is_raw_jpeg_pair`]).
    pub raw_jpeg: bool,
}

/// True when one file is a RAW and the other a JPEG or HEIC (formats as
/// [`crate::decode::sniff`] names them) with the same name but for the
/// extension (case-insensitive), in the same folder: what a camera writes
/// for one shot in RAW+JPEG mode.
pub fn is_raw_jpeg_pair(a: &Path, fa: Option<Format>, b: &Path, fb: Option<Format>) -> bool {
    let raw = |f: Option<Format>| f.is_some_and(Format::is_raw);
    let camera_jpeg = |f: Option<Format>| f.is_some_and(Format::is_camera_jpeg);
    let kinds = (raw(fa) && camera_jpeg(fb)) || (raw(fb) && camera_jpeg(fa));
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().to_lowercase());
    kinds && a.parent() == b.parent() && stem(a).is_some() && stem(a) == stem(b)
}

/// Which measure of the geometric check's model shows that two photos are
/// not the same picture, with its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NotSamePicture {
    /// The smaller share, under [`Rules::min_coverage`].
    Coverage(f32),
    /// The larger share, under [`Rules::min_containment`].
    Containment(f32),
    /// The worst quarter, over [`Rules::max_region_distance`].
    Regions(f32),
    /// The worst quarter framed the same way, over
    /// [`Rules::max_frame_distance`].
    Frame(f32),
}

/// Why a pair of this label is not the same picture, or `None` when it is:
/// the two framed the same way differ in part of the frame
/// ([`Rules::max_frame_distance`]), or a geometric check confident enough
/// (`min_inliers`) fits a model that fails the coverage, containment or
/// regions rule. Identical files, same pixels and the RAW and JPEG of one
/// shot need no such check; a pair the check could not fit keeps the label
/// its distance gives when its frames line up.
pub fn not_same_picture(label: Label, ev: Evidence, rules: &Rules) -> Option<NotSamePicture> {
    if !matches!(label, Label::Edited | Label::Similar) || ev.raw_jpeg {
        return None;
    }
    if let Some(f) = ev.frame.filter(|&f| f > rules.max_frame_distance) {
        return Some(NotSamePicture::Frame(f));
    }
    if ev.inliers.is_none_or(|k| k < rules.min_inliers) {
        return None;
    }
    if let Some(c) = ev.coverage {
        if c.min() < rules.min_coverage {
            return Some(NotSamePicture::Coverage(c.min()));
        }
        if c.a.max(c.b) < rules.min_containment {
            return Some(NotSamePicture::Containment(c.a.max(c.b)));
        }
    }
    ev.regions
        .filter(|&r| r > rules.max_region_distance)
        .map(NotSamePicture::Regions)
}

/// Whether a pair of this label shows the same picture
/// ([`not_same_picture`] finds nothing against it).
pub fn same_picture(label: Label, ev: Evidence, rules: &Rules) -> bool {
    not_same_picture(label, ev, rules).is_none()
}

/// The label of a pair, or `None` when it is not an edge in this mode:
/// its [`tier`], when it shows [`same_picture`].
pub fn judge(distance: f32, ev: Evidence, rules: &Rules) -> Option<Label> {
    tier(distance, ev, rules).filter(|&label| same_picture(label, ev, rules))
}

/// The label a pair's bytes, pixels, distance and inliers give it in this
/// mode, before the coverage of the geometric check is asked whether the
/// two are the same picture.
pub fn tier(distance: f32, ev: Evidence, rules: &Rules) -> Option<Label> {
    let label = if ev.same_bytes {
        Label::Identical
    } else if ev.same_pixels {
        Label::SamePixels
    } else if distance <= rules.threshold {
        Label::Edited
    } else if ev.inliers.is_some_and(|k| k >= rules.min_inliers) {
        Label::Similar
    } else {
        return None;
    };
    let reach = match rules.mode {
        Mode::Copies => Label::SamePixels,
        Mode::Edits => Label::Edited,
        Mode::Similar => Label::Similar,
    };
    if label > reach {
        return None;
    }
    // The same shot in RAW and JPEG: whatever made it an edge, say so.
    Some(match label {
        Label::SamePixels | Label::Edited if ev.raw_jpeg => Label::RawJpeg,
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: u32, b: u32, d: f32) -> ScoredPair {
        ScoredPair { a, b, distance: d }
    }

    #[test]
    fn labels_follow_the_evidence_and_the_mode() {
        let r = Rules::new(Mode::Similar, 0.21);
        let none = Evidence::default();
        assert_eq!(
            judge(
                0.0,
                Evidence {
                    same_bytes: true,
                    ..none
                },
                &r
            ),
            Some(Label::Identical)
        );
        assert_eq!(
            judge(
                0.003,
                Evidence {
                    same_pixels: true,
                    ..none
                },
                &r
            ),
            Some(Label::SamePixels)
        );
        assert_eq!(judge(0.15, none, &r), Some(Label::Edited));
        assert_eq!(
            judge(
                0.35,
                Evidence {
                    inliers: Some(40),
                    ..none
                },
                &r
            ),
            Some(Label::Similar)
        );
        assert_eq!(
            judge(
                0.35,
                Evidence {
                    inliers: Some(11),
                    ..none
                },
                &r
            ),
            None
        );
        assert_eq!(judge(0.35, none, &r), None);
        let edits = Rules::new(Mode::Edits, 0.21);
        assert_eq!(
            judge(
                0.35,
                Evidence {
                    inliers: Some(40),
                    ..none
                },
                &edits
            ),
            None
        );
        assert_eq!(judge(0.15, none, &edits), Some(Label::Edited));
        let copies = Rules::new(Mode::Copies, 0.21);
        assert_eq!(judge(0.15, none, &copies), None);
        assert_eq!(
            judge(
                0.001,
                Evidence {
                    same_pixels: true,
                    ..none
                },
                &copies
            ),
            Some(Label::SamePixels)
        );
        assert!(Label::Identical < Label::Similar);
        // A RAW and its camera JPEG: relabelled when close, not when only
        // the geometric check ties them, and never beyond the mode's reach.
        let raw = Evidence {
            raw_jpeg: true,
            ..none
        };
        assert_eq!(judge(0.05, raw, &r), Some(Label::RawJpeg));
        assert_eq!(
            judge(
                0.35,
                Evidence {
                    inliers: Some(40),
                    ..raw
                },
                &r
            ),
            Some(Label::Similar)
        );
        assert_eq!(judge(0.05, raw, &copies), None);
        assert_eq!(judge(0.5, raw, &r), None);
        assert_eq!(Label::RawJpeg.as_str(), "raw+jpeg");
        assert_eq!(
            serde_json::to_string(&Label::RawJpeg).unwrap(),
            "\"raw+jpeg\""
        );
    }

    #[test]
    fn a_pair_that_is_not_the_same_picture_is_no_edge() {
        let r = Rules::new(Mode::Similar, 0.21);
        let fit = |inliers: u32, a: f32, b: f32| Evidence {
            inliers: Some(inliers),
            coverage: Some(Coverage { a, b }),
            ..Evidence::default()
        };
        // A crop, a burst frame: edited, similar.
        assert_eq!(judge(0.1, fit(200, 0.8, 1.0), &r), Some(Label::Edited));
        assert_eq!(judge(0.3, fit(40, 0.9, 0.9), &r), Some(Label::Similar));
        // Panorama neighbours, a wide shot and its detail: neither.
        assert_eq!(judge(0.1, fit(60, 0.1, 0.1), &r), None);
        assert_eq!(judge(0.3, fit(150, 1.0, 0.12), &r), None);
        // A check too weak to trust says nothing; the distance decides.
        assert_eq!(judge(0.1, fit(5, 0.1, 0.1), &r), Some(Label::Edited));
        // Same bytes, same pixels, RAW and JPEG of one shot need no picture.
        let same = Evidence {
            same_pixels: true,
            ..fit(60, 0.1, 0.1)
        };
        assert_eq!(judge(0.01, same, &r), Some(Label::SamePixels));
        let raw = Evidence {
            raw_jpeg: true,
            ..fit(60, 0.1, 0.1)
        };
        assert_eq!(judge(0.1, raw, &r), Some(Label::RawJpeg));
    }

    #[test]
    fn frames_shifted_apart_or_differing_under_the_homography_are_not_the_same_picture() {
        let r = Rules::new(Mode::Similar, 0.21);
        let fit = |a: f32, b: f32, regions: Option<f32>| Evidence {
            inliers: Some(80),
            coverage: Some(Coverage { a, b }),
            regions,
            ..Evidence::default()
        };
        // A zoomed re-shot: one side shows all of the other.
        assert_eq!(
            judge(0.3, fit(1.0, 0.35, Some(0.3)), &r),
            Some(Label::Similar)
        );
        // Two frames half a frame apart: each shows half of the other.
        assert_eq!(judge(0.1, fit(0.52, 0.54, Some(0.2)), &r), None);
        assert_eq!(
            not_same_picture(Label::Edited, fit(0.52, 0.54, Some(0.2)), &r),
            Some(NotSamePicture::Containment(0.54))
        );
        assert_eq!(
            not_same_picture(Label::Similar, fit(1.0, 0.12, Some(0.2)), &r),
            Some(NotSamePicture::Coverage(0.12))
        );
        assert_eq!(
            not_same_picture(Label::Similar, fit(0.9, 0.9, Some(0.75)), &r),
            Some(NotSamePicture::Regions(0.75))
        );
        // Collages sharing one tile: the frames line up, the rest differs.
        assert_eq!(judge(0.3, fit(0.9, 0.9, Some(0.75)), &r), None);
        assert_eq!(
            judge(0.3, fit(0.9, 0.9, Some(0.45)), &r),
            Some(Label::Similar)
        );
        // Without layouts (a model without a feature map) the regions say nothing.
        assert_eq!(judge(0.1, fit(0.9, 0.9, None), &r), Some(Label::Edited));
        // A homography through infinity has no coverage; the regions still count.
        let folded = Evidence {
            coverage: None,
            ..fit(0.0, 0.0, Some(0.8))
        };
        assert_eq!(judge(0.3, folded, &r), None);
        // Each rule switched off lets its pairs through.
        let mut off = r;
        off.min_containment = 0.0;
        off.max_region_distance = 2.0;
        assert_eq!(
            judge(0.1, fit(0.52, 0.54, Some(0.9)), &off),
            Some(Label::Edited)
        );
    }

    #[test]
    fn photos_that_differ_framed_the_same_way_are_not_the_same_picture() {
        let r = Rules::new(Mode::Similar, 0.21);
        let framed = |frame: f32, inliers: Option<u32>| Evidence {
            inliers,
            frame: Some(frame),
            ..Evidence::default()
        };
        // An edited copy lines up; panorama neighbours whose few keypoints
        // fit no model do not, and nor do collages sharing a tile through a
        // confident fit that passes every other measure.
        assert_eq!(judge(0.1, framed(0.2, Some(3)), &r), Some(Label::Edited));
        assert_eq!(judge(0.1, framed(0.8, Some(3)), &r), None);
        assert_eq!(
            not_same_picture(Label::Edited, framed(0.8, None), &r),
            Some(NotSamePicture::Frame(0.8))
        );
        let tile = Evidence {
            coverage: Some(Coverage { a: 0.8, b: 0.7 }),
            regions: Some(0.4),
            ..framed(0.85, Some(90))
        };
        assert_eq!(
            not_same_picture(Label::Similar, tile, &r),
            Some(NotSamePicture::Frame(0.85))
        );
        let reshot = Evidence {
            frame: Some(0.5),
            ..tile
        };
        assert_eq!(judge(0.3, reshot, &r), Some(Label::Similar));
        // At the bound it passes; 2 turns the measure off; RAW+JPEG and
        // same pixels never ask it.
        assert_eq!(
            judge(0.1, framed(MAX_FRAME_DISTANCE, None), &r),
            Some(Label::Edited)
        );
        let mut off = r;
        off.max_frame_distance = 2.0;
        assert_eq!(judge(0.1, framed(1.5, None), &off), Some(Label::Edited));
        let raw = Evidence {
            raw_jpeg: true,
            ..framed(0.9, None)
        };
        assert_eq!(judge(0.1, raw, &r), Some(Label::RawJpeg));
        let same = Evidence {
            same_pixels: true,
            ..framed(0.9, None)
        };
        assert_eq!(judge(0.01, same, &r), Some(Label::SamePixels));
    }

    #[test]
    fn raw_jpeg_pairs_are_the_same_name_in_the_same_folder() {
        let p = Path::new;
        assert!(is_raw_jpeg_pair(
            p("card/DSC_0042.NEF"),
            Format::from_name("nef"),
            p("card/DSC_0042.JPG"),
            Format::from_name("jpeg")
        ));
        assert!(is_raw_jpeg_pair(
            p("card/img_1.heic"),
            Format::from_name("heic"),
            p("card/IMG_1.CR3"),
            Format::from_name("cr3")
        ));
        assert!(!is_raw_jpeg_pair(
            p("a/DSC_0042.NEF"),
            Format::from_name("nef"),
            p("b/DSC_0042.JPG"),
            Format::from_name("jpeg")
        ));
        assert!(!is_raw_jpeg_pair(
            p("a/DSC_0042.NEF"),
            Format::from_name("nef"),
            p("a/DSC_0043.JPG"),
            Format::from_name("jpeg")
        ));
        assert!(!is_raw_jpeg_pair(
            p("a/x.jpg"),
            Format::from_name("jpeg"),
            p("a/x.png"),
            Format::from_name("png")
        ));
        assert!(!is_raw_jpeg_pair(
            p("a/x.dng"),
            Format::from_name("dng"),
            p("a/x.nef"),
            Format::from_name("nef")
        ));
    }

    #[test]
    fn geometric_candidates_are_the_nearest_neighbours_beyond_the_threshold() {
        let mut r = Rules::new(Mode::Similar, 0.21);
        r.neighbours = 2;
        let near = vec![
            p(0, 1, 0.1),
            p(0, 2, 0.3),
            p(0, 3, 0.4),
            p(0, 4, 0.45),
            p(3, 4, 0.6),
            p(1, 2, 0.25),
        ];
        // 0's two nearest: 1 (edge already), 2; 1's: 0, 2; 2's: 1, 0; 3's: 0; 4's: 0.
        assert_eq!(
            geometric_candidates(5, &near, &r),
            vec![(0, 2), (0, 3), (0, 4), (1, 2)]
        );
    }
}
