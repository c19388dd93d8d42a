//! Where things are in a photo: a compact copy of the CNN's last feature map
//! (a grid of cells, each a short vector), kept beside the embedding so the
//! verify stage can ask whether the transform the geometric check fitted
//! explains the *whole* overlap of two photos, not only the patch where the
//! matched keypoints are.
//!
//! Two collages that share one tile, a photo and another that shows one of
//! its objects, a wide shot and a detail fit a clean homography on the part
//! they share; the rest of what the homography lines up differs. An edited
//! copy, a burst frame or a re-shot lines up everywhere. [`region_distance`]
//! measures the worst of the four quarters of each photo against what the
//! homography maps it onto in the other.
//!
//! The channels are reduced with a count sketch (each channel added, with a
//! random sign, into one of [`DIMS`] buckets; seeded, so the same everywhere)
//! and stored as `i8` with one scale: 6 KB per photo. A cosine between two
//! sketched vectors estimates the cosine of the originals.

use crate::cache::Cache;
use crate::geometry::{self, Homography};

/// Channels after the sketch.
pub const DIMS: usize = 128;
/// The seed of the sketch (fixed: layouts are cached and compared across runs).
const SKETCH_SEED: u64 = 0x6c61_796f_7574_0001;
/// Cache fact kind prefix (the model fingerprint is appended).
pub const FACT_PREFIX: &str = "layout/1";

/// The cells of one photo's feature map, sketched and quantised.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Grid size (rows, columns) of the feature map.
    pub rows: u16,
    pub cols: u16,
    /// The side of the square the model saw, as a share of the photo's
    /// shorter side, centred (224 of 256 for the bundled model).
    pub crop: f32,
    /// Multiply the `i8` values by this to get the sketched activations.
    pub scale: f32,
    /// `rows * cols * DIMS` values, cell by cell in row order.
    pub cells: Vec<i8>,
}

/// The layouts of a scan's photos: those computed in this run, in memory,
/// and the others from the cache (read when asked, so that a rescan holds
/// only what the verify stage needs).
#[derive(Debug, Default)]
pub struct Layouts {
    fresh: Vec<Option<Layout>>,
}

impl Layouts {
    /// `fresh[i]` is the layout photo `i` got in this run, if any.
    pub fn new(fresh: Vec<Option<Layout>>) -> Layouts {
        Layouts { fresh }
    }

    /// Photo `i`'s layout (its content key is `content`): this run's, the
    /// cache's, or else `compute`'s, which is then cached.
    pub fn get(
        &self,
        i: usize,
        content: &str,
        cache: &Cache,
        compute: impl FnOnce() -> Option<Layout>,
    ) -> Option<Layout> {
        if let Some(Some(l)) = self.fresh.get(i) {
            return Some(l.clone());
        }
        let kind = fact_kind(cache);
        if let Some(l) = cache
            .get_fact(&kind, content)
            .and_then(|b| Layout::from_bytes(&b))
        {
            return Some(l);
        }
        let l = compute()?;
        cache.put_fact(&kind, content, l.to_bytes());
        Some(l)
    }
}

/// The cache fact kind of layouts: they depend on the model.
pub fn fact_kind(cache: &Cache) -> String {
    format!("{FACT_PREFIX}/{}", cache.fingerprint())
}

/// One deterministic 64-bit generator (SplitMix64), for the sketch's buckets
/// and signs.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Bucket and sign of each of `channels` channels.
fn sketch(channels: usize) -> Vec<(usize, f32)> {
    let mut s = SKETCH_SEED;
    (0..channels)
        .map(|_| {
            let r = splitmix(&mut s);
            let bucket = (r % DIMS as u64) as usize;
            let sign = if (r >> 63) == 1 { -1.0 } else { 1.0 };
            (bucket, sign)
        })
        .collect()
}

impl Layout {
    /// The layout of a feature map `[channels, rows, cols]` (row-major, as
    /// the model returns it); `None` for a map too small to have quarters.
    pub fn from_feature_map(
        map: &[f32],
        channels: usize,
        rows: usize,
        cols: usize,
        crop: f32,
    ) -> Option<Layout> {
        if rows < 2 || cols < 2 || channels == 0 || map.len() != channels * rows * cols {
            return None;
        }
        if rows > u16::MAX as usize || cols > u16::MAX as usize {
            return None;
        }
        let hw = rows * cols;
        let buckets = sketch(channels);
        let mut acc = vec![0f32; hw * DIMS];
        for (c, &(bucket, sign)) in buckets.iter().enumerate() {
            let plane = &map[c * hw..(c + 1) * hw];
            for (cell, &v) in plane.iter().enumerate() {
                acc[cell * DIMS + bucket] += sign * v;
            }
        }
        let peak = acc.iter().fold(0f32, |m, v| m.max(v.abs()));
        if !peak.is_finite() {
            return None;
        }
        let scale = if peak > 0.0 { peak / 127.0 } else { 1.0 };
        let cells = acc
            .iter()
            .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        Some(Layout {
            rows: rows as u16,
            cols: cols as u16,
            crop,
            scale,
            cells,
        })
    }

    /// Header (rows, cols, crop, scale) then the cells.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(12 + self.cells.len());
        v.extend_from_slice(&self.rows.to_le_bytes());
        v.extend_from_slice(&self.cols.to_le_bytes());
        v.extend_from_slice(&self.crop.to_le_bytes());
        v.extend_from_slice(&self.scale.to_le_bytes());
        v.extend(self.cells.iter().map(|&c| c as u8));
        v
    }

    /// The inverse of [`Layout::to_bytes`]; `None` for bytes that are not one.
    pub fn from_bytes(v: &[u8]) -> Option<Layout> {
        let rows = u16::from_le_bytes(v.get(0..2)?.try_into().ok()?);
        let cols = u16::from_le_bytes(v.get(2..4)?.try_into().ok()?);
        let crop = f32::from_le_bytes(v.get(4..8)?.try_into().ok()?);
        let scale = f32::from_le_bytes(v.get(8..12)?.try_into().ok()?);
        let cells = v.get(12..)?;
        let ok = rows >= 2
            && cols >= 2
            && cells.len() == rows as usize * cols as usize * DIMS
            && crop > 0.0
            && crop <= 1.0
            && scale.is_finite()
            && scale > 0.0;
        ok.then(|| Layout {
            rows,
            cols,
            crop,
            scale,
            cells: cells.iter().map(|&c| c as i8).collect(),
        })
    }

    fn cell(&self, r: usize, c: usize) -> &[i8] {
        let k = (r * self.cols as usize + c) * DIMS;
        &self.cells[k..k + DIMS]
    }

    /// Where cell `(r, c)`'s centre is in a `width` x `height` frame of the
    /// photo (the frame the keypoints were found in).
    fn centre(&self, r: usize, c: usize, width: f64, height: f64) -> (f64, f64) {
        let (side, x0, y0) = self.square(width, height);
        (
            x0 + (c as f64 + 0.5) * side / self.cols as f64,
            y0 + (r as f64 + 0.5) * side / self.rows as f64,
        )
    }

    /// The square the model saw, in a `width` x `height` frame: side and
    /// top-left corner.
    fn square(&self, width: f64, height: f64) -> (f64, f64, f64) {
        let side = self.crop as f64 * width.min(height);
        (side, (width - side) / 2.0, (height - side) / 2.0)
    }

    /// The sketched activations at a point of the frame, interpolated
    /// between the four nearest cell centres; `None` outside the cell
    /// centres' span (half a cell of margin).
    fn sample(&self, x: f64, y: f64, width: f64, height: f64, out: &mut [f32]) -> bool {
        let (side, x0, y0) = self.square(width, height);
        let (rows, cols) = (self.rows as f64, self.cols as f64);
        let gx = (x - x0) / side * cols - 0.5;
        let gy = (y - y0) / side * rows - 0.5;
        if !(gx >= -0.5 && gx <= cols - 0.5 && gy >= -0.5 && gy <= rows - 0.5) {
            return false;
        }
        let cx = gx.clamp(0.0, cols - 1.0);
        let cy = gy.clamp(0.0, rows - 1.0);
        let c0 = (cx.floor() as usize).min(self.cols as usize - 2);
        let r0 = (cy.floor() as usize).min(self.rows as usize - 2);
        let (fx, fy) = ((cx - c0 as f64) as f32, (cy - r0 as f64) as f32);
        let w = [
            (r0, c0, (1.0 - fx) * (1.0 - fy)),
            (r0, c0 + 1, fx * (1.0 - fy)),
            (r0 + 1, c0, (1.0 - fx) * fy),
            (r0 + 1, c0 + 1, fx * fy),
        ];
        for (r, c, wt) in w {
            for (o, &v) in out.iter_mut().zip(self.cell(r, c)) {
                *o += wt * v as f32;
            }
        }
        true
    }
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 1.0;
    }
    (1.0 - ab / (aa.sqrt() * bb.sqrt())) as f32
}

/// The quarters of `a` mapped through `h` into `b`: for each quarter with at
/// least half of its cells landing inside `b`'s grid, the cosine distance
/// between those cells pooled in `a` and what lies under them in `b`.
fn quarters(
    a: &Layout,
    (aw, ah): (f64, f64),
    b: &Layout,
    (bw, bh): (f64, f64),
    h: &Homography,
) -> Vec<f32> {
    let (rows, cols) = (a.rows as usize, a.cols as usize);
    let split = |n: usize| n.div_ceil(2);
    let (rs, cs) = (split(rows), split(cols));
    let mut out = Vec::with_capacity(4);
    for (r_lo, r_hi) in [(0, rs), (rs, rows)] {
        for (c_lo, c_hi) in [(0, cs), (cs, cols)] {
            let mut pa = vec![0f32; DIMS];
            let mut pb = vec![0f32; DIMS];
            let (mut inside, mut total) = (0usize, 0usize);
            for r in r_lo..r_hi {
                for c in c_lo..c_hi {
                    total += 1;
                    let (x, y) = a.centre(r, c, aw, ah);
                    let Some((u, v)) = geometry::project(h, (x, y)) else {
                        continue;
                    };
                    if b.sample(u, v, bw, bh, &mut pb) {
                        inside += 1;
                        for (p, &q) in pa.iter_mut().zip(a.cell(r, c)) {
                            *p += q as f32;
                        }
                    }
                }
            }
            if total > 0 && inside * 2 >= total {
                out.push(cosine_distance(&pa, &pb));
            }
        }
    }
    out
}

/// The largest cosine distance between a quarter of either photo and what
/// the homography `h` (from `a`'s frame to `b`'s) lines up with it in the
/// other, over the quarters that land at least half inside the other; `None`
/// when no quarter does or `h` cannot be inverted. Frames are the sizes the
/// homography's points are in.
pub fn region_distance(
    a: &Layout,
    frame_a: (f64, f64),
    b: &Layout,
    frame_b: (f64, f64),
    h: &Homography,
) -> Option<f32> {
    let inv = geometry::invert(h)?;
    let mut all = quarters(a, frame_a, b, frame_b, h);
    all.extend(quarters(b, frame_b, a, frame_a, &inv));
    all.into_iter().reduce(f32::max)
}

/// [`region_distance`] when the two photos are framed the same way: each
/// frame stretched onto the other, corner to corner (what an edited copy, a
/// resized or re-saved one, a burst frame is). No keypoints needed: it says
/// whether the two photos show the same things in the same places, where
/// a panorama's neighbours, a wide shot and its detail, or two collages
/// sharing one tile do not.
pub fn frame_distance(
    a: &Layout,
    frame_a: (f64, f64),
    b: &Layout,
    frame_b: (f64, f64),
) -> Option<f32> {
    if !(frame_a.0 > 0.0 && frame_a.1 > 0.0 && frame_b.0 > 0.0 && frame_b.1 > 0.0) {
        return None;
    }
    let h = [
        frame_b.0 / frame_a.0,
        0.0,
        0.0,
        0.0,
        frame_b.1 / frame_a.1,
        0.0,
        0.0,
        0.0,
        1.0,
    ];
    region_distance(a, frame_a, b, frame_b, &h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feature map whose cell (r, c) has one channel hot per position,
    /// plus a shared background: every cell differs from every other.
    fn map(rows: usize, cols: usize, channels: usize, shift: usize) -> Vec<f32> {
        let hw = rows * cols;
        let mut m = vec![0.05f32; channels * hw];
        for r in 0..rows {
            for c in 0..cols {
                let k = ((r * cols + c + shift) * 37) % channels;
                m[k * hw + r * cols + c] = 6.0;
                m[((k + 11) % channels) * hw + r * cols + c] = 4.0;
            }
        }
        m
    }

    const ID: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

    #[test]
    fn bytes_round_trip_and_bad_bytes_are_refused() {
        let l = Layout::from_feature_map(&map(7, 7, 1280, 0), 1280, 7, 7, 0.875).unwrap();
        assert_eq!(l.cells.len(), 49 * DIMS);
        assert_eq!(Layout::from_bytes(&l.to_bytes()), Some(l.clone()));
        let b = l.to_bytes();
        assert_eq!(Layout::from_bytes(&b[..b.len() - 1]), None);
        assert_eq!(Layout::from_bytes(&b[..5]), None);
        assert_eq!(Layout::from_feature_map(&[1.0; 10], 10, 1, 1, 0.875), None);
    }

    #[test]
    fn a_photo_lines_up_with_itself_everywhere() {
        let l = Layout::from_feature_map(&map(7, 7, 1280, 0), 1280, 7, 7, 0.875).unwrap();
        let d = region_distance(&l, (640.0, 480.0), &l, (640.0, 480.0), &ID).unwrap();
        assert!(d < 1e-4, "{d}");
        // The same photo at half the size, through the matching scale.
        let half = [0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0];
        let d = region_distance(&l, (640.0, 480.0), &l, (320.0, 240.0), &half).unwrap();
        assert!(d < 1e-4, "{d}");
    }

    #[test]
    fn different_content_under_the_homography_is_far() {
        let a = Layout::from_feature_map(&map(7, 7, 1280, 0), 1280, 7, 7, 0.875).unwrap();
        let b = Layout::from_feature_map(&map(7, 7, 1280, 5), 1280, 7, 7, 0.875).unwrap();
        let d = region_distance(&a, (640.0, 480.0), &b, (640.0, 480.0), &ID).unwrap();
        let same = region_distance(&a, (640.0, 480.0), &a, (640.0, 480.0), &ID).unwrap();
        assert!(d > same + 0.2, "different {d} vs same {same}");
    }

    #[test]
    fn a_homography_that_maps_nothing_inside_gives_no_distance() {
        let l = Layout::from_feature_map(&map(7, 7, 1280, 0), 1280, 7, 7, 0.875).unwrap();
        let away = [1.0, 0.0, 5000.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(
            region_distance(&l, (640.0, 480.0), &l, (640.0, 480.0), &away),
            None
        );
        let singular = [0.0; 9];
        assert_eq!(
            region_distance(&l, (640.0, 480.0), &l, (640.0, 480.0), &singular),
            None
        );
    }

    #[test]
    fn frames_line_up_corner_to_corner() {
        let l = Layout::from_feature_map(&map(7, 7, 1280, 0), 1280, 7, 7, 0.875).unwrap();
        // A resized copy (another frame size, same aspect) lines up.
        let d = frame_distance(&l, (640.0, 480.0), &l, (320.0, 240.0)).unwrap();
        assert!(d < 1e-4, "{d}");
        // A photo whose cells all moved along (a panorama's neighbour) does not.
        let moved = Layout::from_feature_map(&map(7, 7, 1280, 3), 1280, 7, 7, 0.875).unwrap();
        let far = frame_distance(&l, (640.0, 480.0), &moved, (640.0, 480.0)).unwrap();
        assert!(far > 0.3, "{far}");
        assert_eq!(frame_distance(&l, (0.0, 480.0), &l, (640.0, 480.0)), None);
    }

    #[test]
    fn the_sketch_keeps_cosines() {
        // Two random non-negative maps with a known cosine per cell.
        let mut s = 3u64;
        let n = 1280 * 4;
        let a: Vec<f32> = (0..n)
            .map(|_| (splitmix(&mut s) % 600) as f32 / 100.0)
            .collect();
        let b: Vec<f32> = a
            .iter()
            .map(|&x| x * 0.5 + (splitmix(&mut s) % 600) as f32 / 200.0)
            .collect();
        let la = Layout::from_feature_map(&a, 1280, 2, 2, 1.0).unwrap();
        let lb = Layout::from_feature_map(&b, 1280, 2, 2, 1.0).unwrap();
        let full =
            |m: &[f32], cell: usize| -> Vec<f32> { (0..1280).map(|c| m[c * 4 + cell]).collect() };
        for cell in 0..4 {
            let exact = cosine_distance(&full(&a, cell), &full(&b, cell));
            let sk: Vec<f32> = la
                .cell(cell / 2, cell % 2)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let sb: Vec<f32> = lb
                .cell(cell / 2, cell % 2)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let approx = cosine_distance(&sk, &sb);
            assert!((exact - approx).abs() < 0.05, "{exact} vs {approx}");
        }
    }
}
