//! The keypoints of the geometric check: ORB features of a photo's reduced
//! gray image ([`decode::prepare_gray`]). A cold scan makes them from the
//! embed stage's own decode ([`Keypoints`], an [`crate::embed::GraySink`]), so that
//! the verify stage does not decode the same photo a second time; the
//! photos it lacks (a warm scan, a photo decoded at too small a scale, the
//! memory budget spent) are decoded again, and both ways give the same
//! features.

use super::Rules;
use crate::decode::{self, Geometry, GrayImage, Limits, SkipReason};
use crate::embed::GraySink;
use crate::geometry::{self, Features};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Memory the keypoints held between the embed and verify stages may take:
/// with 1,000 features of 40 bytes a photo, about 13,000 photos (a trip);
/// the photos after them are decoded again in the verify stage.
pub const KEYPOINT_BUDGET: usize = 512 << 20;

/// Files shorter than this are not worth holding keypoints for: decoding
/// one again costs less than its keypoints (about 5 ms), made whether the
/// verify stage needs them or not. A camera's JPEG (12 MP, 3 MB) takes 36 ms
/// to decode at 1/8 scale, a photo of 1 MB about 10 ms.
pub const KEYPOINT_MIN_FILE_BYTES: u64 = 1 << 20;

/// The ORB features of a gray image, as the geometric check uses them.
pub(crate) fn features_of(g: &GrayImage, rules: &Rules) -> Features {
    let params = geometry::OrbParams {
        n_features: rules.geo_features,
        ..Default::default()
    };
    let gray = geometry::Gray {
        width: g.width,
        height: g.height,
        pixels: &g.pixels,
    };
    geometry::orb(&gray, &params)
}

/// The features of a photo decoded from its bytes for the check alone.
pub(crate) fn decode_features(
    bytes: &[u8],
    rules: &Rules,
    geo: Geometry,
    limits: Limits,
) -> Result<Features, SkipReason> {
    let g = decode::prepare_gray(bytes, geo, rules.geo_long_side, limits)?;
    Ok(features_of(&g, rules))
}

/// Bytes a photo's features take, at most, for `n` features.
fn footprint(n: usize) -> usize {
    n * (std::mem::size_of::<(f32, f32)>() + std::mem::size_of::<[u64; 4]>()) + 256
}

/// Features made during the embed stage, by content, within a budget of
/// memory; the verify stage takes each once.
pub struct Keypoints {
    rules: Rules,
    /// Bytes of the budget not yet reserved.
    left: AtomicUsize,
    held: Mutex<HashMap<String, Features>>,
}

impl Keypoints {
    /// An empty store for the check of `rules`, holding at most `budget`
    /// bytes of features.
    pub fn new(rules: &Rules, budget: usize) -> Keypoints {
        Keypoints {
            rules: *rules,
            left: AtomicUsize::new(budget),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Reserve `n` bytes of the budget; false when they are not left.
    fn reserve(&self, n: usize) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }

    /// The features of the photo of this content, once.
    pub(crate) fn take(&self, content: &str) -> Option<Features> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(content)
    }

    /// How many photos' features are held.
    pub fn len(&self) -> usize {
        self.held.lock().map_or(0, |h| h.len())
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl GraySink for Keypoints {
    fn long_side(&self) -> u32 {
        self.rules.geo_long_side
    }

    fn wants(&self, file_bytes: u64) -> bool {
        file_bytes >= KEYPOINT_MIN_FILE_BYTES
    }

    fn put(&self, content: &str, gray: &GrayImage) {
        let most = footprint(self.rules.geo_features);
        if !self.reserve(most) {
            return;
        }
        let f = features_of(gray, &self.rules);
        // What the photo did not use goes back to the budget.
        let used = footprint(f.points.len()) + content.len();
        self.left
            .fetch_add(most.saturating_sub(used), Ordering::Relaxed);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(content.to_owned(), f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Mode;

    fn gray(w: u32, h: u32) -> GrayImage {
        // Squares of a checkerboard with a dot in each: corners to find.
        let pixels = (0..w * h)
            .map(|k| {
                let (x, y) = (k % w, k / w);
                let cell = ((x / 24) + (y / 24)) % 2 == 0;
                let dot = x % 24 == 7 && y % 24 == 11;
                if dot ^ cell {
                    230
                } else {
                    30
                }
            })
            .collect();
        GrayImage {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn the_embed_decode_gives_the_features_a_second_decode_gives() {
        let rules = Rules::new(Mode::Similar, 0.21);
        let geo = Geometry {
            shorter_side: 224,
            width: 224,
            height: 224,
        };
        // 2000 x 1500: the model's 1/4 decode serves the gray image too.
        let img = image::RgbImage::from_fn(2000, 1500, |x, y| {
            let v = (((x / 40) ^ (y / 40)) % 3 * 100) as u8;
            image::Rgb([v, v.wrapping_add((x % 7) as u8), 255 - v])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap();
        let limits = Limits::default();
        let extras = decode::Extras {
            thumbnail: None,
            gray: Some(rules.geo_long_side),
        };
        let d = decode::prepare_with(&jpeg, geo, limits, extras).unwrap();
        let k = Keypoints::new(&rules, KEYPOINT_BUDGET);
        k.put("c", d.gray.as_ref().expect("served by the embed decode"));
        let again = decode_features(&jpeg, &rules, geo, limits).unwrap();
        assert!(again.points.len() > 100, "{}", again.points.len());
        assert_eq!(k.take("c"), Some(again));
    }

    #[test]
    fn features_are_held_within_the_budget_and_taken_once() {
        let rules = Rules::new(Mode::Similar, 0.21);
        let g = gray(320, 240);
        let want = features_of(&g, &rules);
        assert!(want.points.len() > 50, "{}", want.points.len());
        let most = footprint(rules.geo_features);
        let k = Keypoints::new(&rules, KEYPOINT_BUDGET);
        for c in ["a", "b", "c"] {
            k.put(c, &g);
        }
        assert_eq!(k.len(), 3);
        // Room for one photo's worst case: what it did not use goes back,
        // but not enough for a second worst case, left to the verify stage.
        let tight = Keypoints::new(&rules, most + 10);
        tight.put("a", &g);
        let left = tight.left.load(Ordering::Relaxed);
        assert!(left < most, "{left}");
        tight.put("b", &g);
        assert_eq!(tight.len(), 1, "no room for b");
        assert_eq!(tight.take("a"), Some(want.clone()));
        assert_eq!(tight.take("a"), None);
        assert!(tight.is_empty());
        assert!(k.wants(3_000_000) && !k.wants(200_000));
        assert_eq!(k.take("c"), Some(want));
    }
}
