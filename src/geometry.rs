//! Geometric verification: ORB-like local features and a RANSAC homography
//! inlier count.
//!
//! Two photos are near-duplicates in the geometric sense when many local
//! features of one can be mapped onto the other by a single plane-to-plane
//! transform (a homography): a crop, a resize, a small rotation, a change of
//! brightness or a re-encode all keep that property, two different photos of
//! similar subjects do not.
//!
//! The pipeline, written from scratch on `std` only:
//!
//! 1. [`orb`] builds an image pyramid (each level `scale_factor` smaller,
//!    bilinear), detects FAST-9 corners with non-maximum suppression on each
//!    level, ranks them by Harris response, keeps `n_features` in total
//!    (spread over the levels in proportion to their area), orients each one
//!    by the intensity centroid of a circular patch and describes it with a
//!    steered BRIEF descriptor: 256 intensity comparisons between point pairs
//!    of a Gaussian-smoothed patch, rotated by the keypoint's angle. The
//!    point pairs are drawn once from a fixed seed (isotropic Gaussian,
//!    sigma = patch / 5), so descriptors are comparable across runs and
//!    machines.
//! 2. [`homography_match`] matches descriptors by brute-force Hamming
//!    distance with Lowe's ratio test, then runs a seeded RANSAC over 4-point
//!    samples (direct linear transform solved with Gaussian elimination) and
//!    returns the largest number of matches a single homography explains.
//!
//! Everything is deterministic: the same inputs always give the same
//! features and the same count, on one thread.

use std::f64::consts::PI;

mod nearest;
use nearest::Kernel;

/// A gray image, row-major, one byte per pixel.
///
/// `pixels` holds at least `width * height` bytes; row `y` starts at
/// `y * width`.
#[derive(Debug, Clone, Copy)]
pub struct Gray<'a> {
    /// Pixels per row.
    pub width: u32,
    /// Number of rows.
    pub height: u32,
    /// Intensities, row after row (only the first `width * height` are read).
    pub pixels: &'a [u8],
}

/// Keypoints (x, y in the input image's pixel frame) and 256-bit binary
/// descriptors; `points[i]` is described by `descriptors[i]`.
///
/// Pixel centres sit at integer coordinates: the top-left pixel is `(0, 0)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Keypoint positions `(x, y)` in the input image's pixel frame.
    pub points: Vec<(f32, f32)>,
    /// 256-bit descriptors; bit `i` is word `i / 64`, bit `i % 64`.
    pub descriptors: Vec<[u64; 4]>,
    /// The input image's size, the frame of `points`.
    pub width: u32,
    pub height: u32,
}

// Used by the tests (the scan only counts inliers).
#[cfg(test)]
impl Features {
    /// Number of keypoints.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no keypoint was found.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Parameters of [`orb`]; the defaults are those of OpenCV's ORB as used by
/// the prototype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrbParams {
    /// Most keypoints returned, over all pyramid levels.
    pub n_features: usize,
    /// Ratio between the sizes of two consecutive pyramid levels (> 1).
    pub scale_factor: f32,
    /// Number of pyramid levels, the input included.
    pub n_levels: usize,
    /// FAST threshold: a circle pixel counts as brighter (darker) when it
    /// exceeds the centre by more than this.
    pub fast_threshold: u8,
    /// Keypoints closer than this to a level's border are dropped (raised
    /// if needed so that the rotated descriptor patch stays inside).
    pub edge: u32,
    /// Side of the square window the descriptor's point pairs are drawn
    /// from; also the diameter of the orientation patch.
    pub patch: u32,
}

impl Default for OrbParams {
    fn default() -> Self {
        OrbParams {
            n_features: 1000,
            scale_factor: 1.2,
            n_levels: 8,
            fast_threshold: 20,
            edge: 31,
            patch: 31,
        }
    }
}

/// Number of bits in a descriptor.
const DESCRIPTOR_BITS: usize = 256;
/// Seed of the descriptor's point pairs. Changing it changes every
/// descriptor: features computed with different seeds cannot be compared.
const PAIR_SEED: u64 = 0x6e65_6172_6475_7021;
/// Side of the Harris window (as OpenCV's ORB).
const HARRIS_BLOCK: usize = 7;
/// Harris' `k`.
const HARRIS_K: f32 = 0.04;
/// Half-width of the Gaussian smoothing kernel used before the BRIEF tests.
const BLUR_RADIUS: usize = 3;
/// Sigma of that kernel.
const BLUR_SIGMA: f64 = 2.0;
/// RANSAC confidence for the adaptive iteration bound.
const RANSAC_CONFIDENCE: f64 = 0.995;

// ---------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea & Flood): a tiny, fast, well-mixed generator;
/// plenty for sampling point pairs and RANSAC subsets.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (Lemire); the bias is
    /// below 2^-32 for the sizes used here.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A pair of independent standard normal deviates (Box-Muller).
    fn gaussian_pair(&mut self) -> (f64, f64) {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.next_f64();
        let v = self.next_f64();
        let r = (-2.0 * u.ln()).sqrt();
        let t = 2.0 * PI * v;
        (r * t.cos(), r * t.sin())
    }
}

// ---------------------------------------------------------------------------
// Owned images and the pyramid
// ---------------------------------------------------------------------------

/// An owned gray image (a pyramid level).
#[derive(Debug, Clone)]
struct Plane {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

/// Bilinear resize to `nw` x `nh`, pixel centres aligned
/// (`src = (dst + 0.5) * ratio - 0.5`), fixed-point weights with 8 bits.
///
/// Used with a ratio of `scale_factor` (1.2) between consecutive levels,
/// where bilinear interpolation over the previous level's already smoothed
/// pixels is close to an area average.
fn resize_bilinear(src: &Plane, nw: usize, nh: usize) -> Plane {
    // For each output column: the left source column and its weight /256.
    let taps = |n_out: usize, n_in: usize| -> Vec<(usize, u32)> {
        let ratio = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|i| {
                let s = ((i as f64 + 0.5) * ratio - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = (s.floor() as usize).min(n_in - 1);
                let frac = ((s - i0 as f64) * 256.0).round() as u32;
                // When i0 is the last column, frac is 0 and the right tap is
                // never read with a non-zero weight; clamp its index anyway.
                (i0, frac.min(256))
            })
            .collect()
    };
    let xt = taps(nw, src.w);
    let yt = taps(nh, src.h);
    // Horizontal pass into a u16 buffer (values up to 255 * 256).
    let mut rows = vec![0u16; nw * src.h];
    for y in 0..src.h {
        let line = &src.px[y * src.w..(y + 1) * src.w];
        let out = &mut rows[y * nw..(y + 1) * nw];
        for (o, &(x0, fx)) in out.iter_mut().zip(&xt) {
            let x1 = (x0 + 1).min(src.w - 1);
            *o = (u32::from(line[x0]) * (256 - fx) + u32::from(line[x1]) * fx) as u16;
        }
    }
    // Vertical pass.
    let mut px = vec![0u8; nw * nh];
    for (y, &(y0, fy)) in yt.iter().enumerate() {
        let y1 = (y0 + 1).min(src.h - 1);
        let r0 = &rows[y0 * nw..(y0 + 1) * nw];
        let r1 = &rows[y1 * nw..(y1 + 1) * nw];
        let out = &mut px[y * nw..(y + 1) * nw];
        for ((o, &a), &b) in out.iter_mut().zip(r0).zip(r1) {
            let v = u32::from(a) * (256 - fy) + u32::from(b) * fy;
            *o = ((v + (1 << 15)) >> 16) as u8;
        }
    }
    Plane { w: nw, h: nh, px }
}

/// Separable Gaussian blur (7 taps, sigma 2, replicated borders), in fixed
/// point: the weights of each pass sum to 256.
fn gaussian_blur(src: &Plane) -> Plane {
    const TAPS: usize = 2 * BLUR_RADIUS + 1;
    let mut wf = [0f64; TAPS];
    for (i, w) in wf.iter_mut().enumerate() {
        let d = i as f64 - BLUR_RADIUS as f64;
        *w = (-d * d / (2.0 * BLUR_SIGMA * BLUR_SIGMA)).exp();
    }
    let total: f64 = wf.iter().sum();
    let mut k = [0u32; TAPS];
    for (ki, &w) in k.iter_mut().zip(&wf) {
        *ki = (w / total * 256.0).round() as u32;
    }
    // Put the rounding error on the centre tap so the weights sum to 256.
    let sum: u32 = k.iter().sum();
    k[BLUR_RADIUS] = (k[BLUR_RADIUS] + 256).wrapping_sub(sum);

    let (w, h) = (src.w, src.h);
    // Horizontal pass over a padded copy of each row; u16 holds 255 * 256.
    let mut tmp = vec![0u16; w * h];
    let mut padded = vec![0u8; w + 2 * BLUR_RADIUS];
    for y in 0..h {
        let line = &src.px[y * w..(y + 1) * w];
        padded[BLUR_RADIUS..BLUR_RADIUS + w].copy_from_slice(line);
        for i in 0..BLUR_RADIUS {
            padded[i] = line[0];
            padded[BLUR_RADIUS + w + i] = line[w - 1];
        }
        let out = &mut tmp[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            let win = &padded[x..x + TAPS];
            let mut acc = 0u32;
            for (&p, &kk) in win.iter().zip(&k) {
                acc += u32::from(p) * kk;
            }
            *o = acc as u16;
        }
    }
    // Vertical pass, one output row at a time (vectorizes over x).
    let mut px = vec![0u8; w * h];
    let mut acc = vec![0u32; w];
    for y in 0..h {
        acc.iter_mut().for_each(|a| *a = 0);
        for (t, &kk) in k.iter().enumerate() {
            let sy = (y + t).saturating_sub(BLUR_RADIUS).min(h - 1);
            let row = &tmp[sy * w..(sy + 1) * w];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += u32::from(v) * kk;
            }
        }
        for (o, &a) in px[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *o = ((a + (1 << 15)) >> 16) as u8;
        }
    }
    Plane { w, h, px }
}

// ---------------------------------------------------------------------------
// FAST-9 detection
// ---------------------------------------------------------------------------

/// The 16 pixels of the Bresenham circle of radius 3, clockwise from the top.
const CIRCLE: [(i32, i32); 16] = [
    (0, -3),
    (1, -3),
    (2, -2),
    (3, -1),
    (3, 0),
    (3, 1),
    (2, 2),
    (1, 3),
    (0, 3),
    (-1, 3),
    (-2, 2),
    (-3, 1),
    (-3, 0),
    (-3, -1),
    (-2, -2),
    (-1, -3),
];

/// Whether the 16-bit circular `mask` has 9 consecutive set bits.
#[inline]
fn has_arc9(mask: u32) -> bool {
    // Duplicate so arcs wrapping past bit 15 appear as plain runs.
    let mut m = mask | (mask << 16);
    // After step i, bit j is set iff bits j..=j+i were all set.
    for _ in 0..8 {
        m &= m >> 1;
    }
    m != 0
}

/// FAST corner score: over the 16 arcs of 9 pixels and both polarities, the
/// best smallest contrast along the arc, so the pixel is a FAST-9 corner for
/// every threshold below the score.
///
/// Sliding minima by doubling (2, 4, 8, then 9 wide) over the circle
/// unrolled twice; fixed-length i16 loops that vectorize.
fn fast_score(diff: &[i16; 16]) -> i16 {
    let arc_min = |d: &[i16; 32]| -> i16 {
        let mut m2 = [0i16; 31];
        for k in 0..31 {
            m2[k] = d[k].min(d[k + 1]);
        }
        let mut m4 = [0i16; 29];
        for k in 0..29 {
            m4[k] = m2[k].min(m2[k + 2]);
        }
        let mut best = i16::MIN;
        for k in 0..16 {
            best = best.max(m4[k].min(m4[k + 4]).min(d[k + 8]));
        }
        best
    };
    let mut bright = [0i16; 32];
    let mut dark = [0i16; 32];
    for k in 0..32 {
        bright[k] = diff[k & 15];
        dark[k] = -diff[k & 15];
    }
    arc_min(&bright).max(arc_min(&dark))
}

/// A detected corner on one level: level coordinates and FAST score.
#[derive(Debug, Clone, Copy)]
struct Corner {
    x: usize,
    y: usize,
    score: f32,
}

/// FAST-9 corners with 3x3 non-maximum suppression on the FAST score,
/// restricted to pixels at least `border` (>= 3) from every side.
fn fast_corners(img: &Plane, threshold: u8, border: usize) -> Vec<Corner> {
    let (w, h) = (img.w, img.h);
    if w < 2 * border + 1 || h < 2 * border + 1 {
        return Vec::new();
    }
    let t = i16::from(threshold);
    let offs: [isize; 16] = CIRCLE.map(|(dx, dy)| dy as isize * w as isize + dx as isize);
    // Scores of the corners, 0 elsewhere, for the suppression.
    let mut score = vec![0i16; w * h];
    let mut candidates = Vec::new();
    let px = &img.px;
    let tu = threshold;
    // Whether `a` is brighter / darker than the centre `c` by more than `t`.
    let brighter = |a: u8, c: u8| a.saturating_sub(c) > tu;
    let darker = |a: u8, c: u8| c.saturating_sub(a) > tu;
    let mut pass = vec![false; w];
    for y in border..h - border {
        let row = |dy: isize| {
            let start = (y as isize + dy) as usize * w;
            &px[start..start + w]
        };
        let (up, mid, dn) = (row(-3), row(0), row(3));
        // Quick rejection, branch-free over the row so it vectorizes: an
        // arc of 9 contains pixel 0 or 8 (above / below) and pixel 4 or 12
        // (right / left), so for one polarity both pairs must hold a pixel
        // brighter (or both a pixel darker) than the centre.
        let (lo, hi) = (border, w - border);
        let cols = pass[lo..hi]
            .iter_mut()
            .zip(&mid[lo..hi])
            .zip(up[lo..hi].iter().zip(&dn[lo..hi]))
            .zip(mid[lo - 3..hi - 3].iter().zip(&mid[lo + 3..hi + 3]));
        for (((ok, &c), (&u, &d)), (&l, &r)) in cols {
            let b = (brighter(u, c) | brighter(d, c)) & (brighter(l, c) | brighter(r, c));
            let k = (darker(u, c) | darker(d, c)) & (darker(l, c) | darker(r, c));
            *ok = b | k;
        }
        for x in (lo..hi).filter(|&x| pass[x]) {
            let i = y * w + x;
            let c = i16::from(px[i]);
            let mut diff = [0i16; 16];
            let mut bmask = 0u32;
            let mut dmask = 0u32;
            for (k, d) in diff.iter_mut().enumerate() {
                *d = i16::from(px[(i as isize + offs[k]) as usize]) - c;
                bmask |= u32::from(*d > t) << k;
                dmask |= u32::from(*d < -t) << k;
            }
            if has_arc9(bmask) || has_arc9(dmask) {
                score[i] = fast_score(&diff).max(1);
                candidates.push(i);
            }
        }
    }
    // Keep local maxima; of two equal neighbours, the first in scan order.
    let mut out = Vec::new();
    for &i in &candidates {
        let s = score[i];
        let before = [i - w - 1, i - w, i - w + 1, i - 1];
        let after = [i + 1, i + w - 1, i + w, i + w + 1];
        if before.iter().all(|&j| s > score[j]) && after.iter().all(|&j| s >= score[j]) {
            out.push(Corner {
                x: i % w,
                y: i / w,
                score: f32::from(s),
            });
        }
    }
    out
}

/// Harris corner response `det(M) - k * trace(M)^2` of the structure tensor
/// summed over a 7x7 block of Sobel gradients centred on `(x, y)`; the
/// corner must be at least 4 pixels from the border.
fn harris_response(img: &Plane, x: usize, y: usize) -> f32 {
    let w = img.w;
    let r = HARRIS_BLOCK / 2;
    let (mut a, mut b, mut c) = (0i64, 0i64, 0i64);
    for yy in y - r..=y + r {
        let up = &img.px[(yy - 1) * w..yy * w];
        let mid = &img.px[yy * w..(yy + 1) * w];
        let dn = &img.px[(yy + 1) * w..(yy + 2) * w];
        for xx in x - r..=x + r {
            let p = |row: &[u8], x: usize| i32::from(row[x]);
            let gx = (p(up, xx + 1) - p(up, xx - 1))
                + 2 * (p(mid, xx + 1) - p(mid, xx - 1))
                + (p(dn, xx + 1) - p(dn, xx - 1));
            let gy = (p(dn, xx - 1) + 2 * p(dn, xx) + p(dn, xx + 1))
                - (p(up, xx - 1) + 2 * p(up, xx) + p(up, xx + 1));
            a += i64::from(gx * gx);
            b += i64::from(gy * gy);
            c += i64::from(gx * gy);
        }
    }
    let (a, b, c) = (a as f64, b as f64, c as f64);
    // Normalise as OpenCV does so the numbers stay in a readable range.
    let norm = 1.0 / (4.0 * HARRIS_BLOCK as f64 * 255.0);
    let (a, b, c) = (a * norm * norm, b * norm * norm, c * norm * norm);
    (a * b - c * c - f64::from(HARRIS_K) * (a + b) * (a + b)) as f32
}

// ---------------------------------------------------------------------------
// Orientation and descriptor
// ---------------------------------------------------------------------------

/// For each row offset `v` in `0..=radius`, the half-width of the circular
/// patch on that row.
fn circle_half_widths(radius: usize) -> Vec<usize> {
    let r = radius as f64 + 0.5;
    (0..=radius)
        .map(|v| ((r * r - (v * v) as f64).max(0.0).sqrt().floor() as usize).min(radius))
        .collect()
}

/// Orientation (radians) of the intensity centroid of the disc of
/// `half_widths.len() - 1` pixels radius around `(x, y)`.
fn centroid_angle(img: &Plane, x: usize, y: usize, half_widths: &[usize]) -> f32 {
    let w = img.w;
    let (mut m10, mut m01) = (0i64, 0i64);
    for (v, &hw) in half_widths.iter().enumerate() {
        if v == 0 {
            let row = &img.px[y * w + x - hw..=y * w + x + hw];
            for (u, &p) in row.iter().enumerate() {
                m10 += (u as i64 - hw as i64) * i64::from(p);
            }
            continue;
        }
        let above = &img.px[(y - v) * w + x - hw..=(y - v) * w + x + hw];
        let below = &img.px[(y + v) * w + x - hw..=(y + v) * w + x + hw];
        let mut vsum = 0i64;
        for (u, (&pa, &pb)) in above.iter().zip(below).enumerate() {
            let du = u as i64 - hw as i64;
            m10 += du * (i64::from(pa) + i64::from(pb));
            vsum += i64::from(pb) - i64::from(pa);
        }
        m01 += v as i64 * vsum;
    }
    (m01 as f64).atan2(m10 as f64) as f32
}

/// The 256 BRIEF point pairs `(x1, y1, x2, y2)` for a `patch`-wide window:
/// coordinates drawn from an isotropic Gaussian (sigma = patch / 5) with a
/// fixed seed, rounded and clamped to the window; pairs of two equal points
/// are redrawn.
fn brief_pairs(patch: usize) -> Vec<[f32; 4]> {
    let half = (patch / 2) as f64;
    let sigma = patch as f64 / 5.0;
    let mut rng = SplitMix64(PAIR_SEED);
    let mut point = || {
        let (a, b) = rng.gaussian_pair();
        (
            (a * sigma).round().clamp(-half, half),
            (b * sigma).round().clamp(-half, half),
        )
    };
    let mut pairs = Vec::with_capacity(DESCRIPTOR_BITS);
    while pairs.len() < DESCRIPTOR_BITS {
        let p = point();
        let q = point();
        if p != q {
            pairs.push([p.0 as f32, p.1 as f32, q.0 as f32, q.1 as f32]);
        }
    }
    pairs
}

/// Rounds half away from zero, like `f32::round`, but compiles to a
/// truncating conversion instead of a library call on baseline x86-64.
#[inline]
fn round_half_away(v: f32) -> isize {
    (v + 0.5f32.copysign(v)) as isize
}

/// Steered BRIEF: bit `i` is set when the smoothed intensity at the first
/// point of pair `i`, rotated by `angle` around `(x, y)`, is below the
/// second's. All rotated points must lie inside `smooth`.
fn describe(smooth: &Plane, x: usize, y: usize, angle: f32, pairs: &[[f32; 4]]) -> [u64; 4] {
    let (s, c) = angle.sin_cos();
    let w = smooth.w as isize;
    let centre = (y * smooth.w + x) as isize;
    let offset = |px: f32, py: f32| -> usize {
        let rx = round_half_away(px * c - py * s);
        let ry = round_half_away(px * s + py * c);
        (centre + ry * w + rx) as usize
    };
    let mut d = [0u64; 4];
    for (i, p) in pairs.iter().enumerate() {
        let a = smooth.px[offset(p[0], p[1])];
        let b = smooth.px[offset(p[2], p[3])];
        d[i / 64] |= u64::from(a < b) << (i % 64);
    }
    d
}

/// How many of `n_features` each of the `n_levels` levels gets: a geometric
/// series with ratio `1 / scale_factor^2` (proportional to level area).
fn level_quotas(n_features: usize, n_levels: usize, scale_factor: f64) -> Vec<usize> {
    let f = 1.0 / (scale_factor * scale_factor);
    let first = if (1.0 - f).abs() < 1e-12 {
        n_features as f64 / n_levels as f64
    } else {
        n_features as f64 * (1.0 - f) / (1.0 - f.powi(n_levels as i32))
    };
    let mut quotas = Vec::with_capacity(n_levels);
    let mut given = 0usize;
    let mut want = first;
    for level in 0..n_levels {
        let q = if level + 1 == n_levels {
            n_features.saturating_sub(given)
        } else {
            (want.round() as usize).min(n_features - given)
        };
        quotas.push(q);
        given += q;
        want *= f;
    }
    quotas
}

/// Detects and describes ORB-like features.
///
/// * Pyramid: level 0 is the input; level `i` is `scale_factor^i` times
///   smaller (rounded), resized bilinearly from level `i - 1`. Levels
///   too small to hold a keypoint end the pyramid.
/// * Detection: FAST-9 with threshold `fast_threshold` and 3x3 non-maximum
///   suppression, at least `edge` pixels from the level's borders (more if
///   the rotated descriptor window needs it). The `2 * quota` best by FAST
///   score are ranked by Harris response and the best `quota` kept; quotas
///   follow level area and the share a level cannot use passes to the next.
/// * Orientation: intensity centroid over the disc of radius `patch / 2`.
/// * Descriptor: steered BRIEF, 256 tests on the level smoothed with a 7x7
///   Gaussian (sigma 2), over seeded Gaussian point pairs (see the module
///   documentation).
///
/// Points are returned in the input's pixel frame, level by level, best
/// Harris response first within a level. Same input, same output. Returns no
/// features for an empty image, a buffer shorter than `width * height`, or
/// an image too small for a single descriptor window.
pub fn orb(img: &Gray, p: &OrbParams) -> Features {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut out = Features {
        width: img.width,
        height: img.height,
        ..Features::default()
    };
    let Some(n_px) = w.checked_mul(h) else {
        return out;
    };
    if n_px == 0 || img.pixels.len() < n_px || p.n_features == 0 {
        return out;
    }
    let patch = (p.patch as usize).max(5);
    let half = patch / 2;
    // The rotated window reaches half * sqrt(2); Harris needs 4, FAST 3.
    let reach = ((half as f64) * std::f64::consts::SQRT_2).ceil() as usize + 1;
    let border = (p.edge as usize).max(reach).max(half + 1).max(4);
    let scale = f64::from(p.scale_factor);
    let n_levels = if scale.is_finite() && scale > 1.0 {
        p.n_levels.max(1)
    } else {
        1
    };
    let quotas = level_quotas(p.n_features, n_levels, scale.max(1.0));
    let pairs = brief_pairs(patch);
    let half_widths = circle_half_widths(half);

    let mut level = Plane {
        w,
        h,
        px: img.pixels[..n_px].to_vec(),
    };
    let mut carry = 0usize;
    for (li, &quota) in quotas.iter().enumerate() {
        if li > 0 {
            let s = scale.powi(li as i32);
            let nw = (w as f64 / s).round() as usize;
            let nh = (h as f64 / s).round() as usize;
            if nw < 2 * border + 1 || nh < 2 * border + 1 {
                break;
            }
            level = resize_bilinear(&level, nw, nh);
        }
        if level.w < 2 * border + 1 || level.h < 2 * border + 1 {
            break;
        }
        let quota = quota.saturating_add(carry);
        let keep = quota.saturating_mul(2);
        let mut corners = fast_corners(&level, p.fast_threshold, border);
        // Best by FAST score, ties by position: a total order, so the
        // selection is deterministic.
        let by_score = |a: &Corner, b: &Corner| {
            b.score
                .total_cmp(&a.score)
                .then(a.y.cmp(&b.y))
                .then(a.x.cmp(&b.x))
        };
        if corners.len() > keep {
            if keep == 0 {
                corners.clear();
            } else {
                corners.select_nth_unstable_by(keep - 1, by_score);
                corners.truncate(keep);
            }
        }
        for c in &mut corners {
            c.score = harris_response(&level, c.x, c.y);
        }
        corners.sort_unstable_by(by_score);
        corners.truncate(quota);
        carry = quota - corners.len();
        if corners.is_empty() {
            continue;
        }

        let smooth = gaussian_blur(&level);
        // Level pixel centre -> input pixel centre, per axis.
        let sx = w as f32 / level.w as f32;
        let sy = h as f32 / level.h as f32;
        for c in &corners {
            let angle = centroid_angle(&level, c.x, c.y, &half_widths);
            out.descriptors
                .push(describe(&smooth, c.x, c.y, angle, &pairs));
            out.points
                .push(((c.x as f32 + 0.5) * sx - 0.5, (c.y as f32 + 0.5) * sy - 0.5));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------

/// Brute-force 2-NN matching a -> b with Lowe's ratio test
/// (`best < ratio * second`); returns `(index in a, index in b)` pairs.
fn ratio_matches(a: &[[u64; 4]], b: &[[u64; 4]], ratio: f32) -> Vec<(usize, usize)> {
    ratio_matches_with(a, b, ratio, Kernel::native())
}

fn ratio_matches_with(
    a: &[[u64; 4]],
    b: &[[u64; 4]],
    ratio: f32,
    kernel: Kernel,
) -> Vec<(usize, usize)> {
    if b.len() < 2 {
        return Vec::new();
    }
    let mut out: Vec<(usize, usize, u32)> = nearest::two_nearest(a, b, kernel)
        .into_iter()
        .enumerate()
        .filter(|&(_, (best, second, _))| (best as f32) < ratio * second as f32)
        .map(|(i, (best, _, j))| (i, j, best))
        .collect();
    // One match per point of `b` (the closest; ties: the lower index of
    // `a`): several points of `a` matched to one point of `b` would let an
    // accidental homography collect a cluster of inliers on unrelated photos.
    out.sort_by_key(|&(i, j, d)| (j, d, i));
    out.dedup_by_key(|m| m.1);
    out.sort_unstable();
    out.into_iter().map(|(i, j, _)| (i, j)).collect()
}

// ---------------------------------------------------------------------------
// Homography estimation
// ---------------------------------------------------------------------------

/// A homography as a row-major 3x3 matrix.
pub(crate) type Homography = [f64; 9];

/// Solves `m x = rhs` (n x n, row-major `m`) in place by Gaussian
/// elimination with partial pivoting; `None` when a pivot is (numerically)
/// zero relative to the matrix' largest entry.
fn solve_linear<const N: usize>(m: &mut [[f64; N]; N], rhs: &mut [f64; N]) -> Option<[f64; N]> {
    let scale = m
        .iter()
        .flat_map(|r| r.iter())
        .fold(0.0f64, |a, &v| a.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    let eps = scale * 1e-12;
    for col in 0..N {
        let pivot = (col..N)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .unwrap_or(col);
        if m[pivot][col].abs() <= eps {
            return None;
        }
        m.swap(col, pivot);
        rhs.swap(col, pivot);
        let (upper, lower) = m.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (r, row) in lower.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (a, &p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *a -= f * p;
                }
                rhs[col + 1 + r] -= f * rhs[col];
            }
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let mut acc = rhs[row];
        for k in row + 1..N {
            acc -= m[row][k] * x[k];
        }
        x[row] = acc / m[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The two DLT equations (with `h33 = 1`) of the correspondence
/// `(x, y) -> (u, v)`: rows of the 8 unknowns and their right-hand sides.
#[inline]
fn dlt_rows(x: f64, y: f64, u: f64, v: f64) -> ([f64; 8], f64, [f64; 8], f64) {
    (
        [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y],
        u,
        [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y],
        v,
    )
}

/// Exact homography through 4 correspondences `src[i] -> dst[i]`, from the
/// 8x8 DLT system with `h33 = 1`, solved by Gaussian elimination with
/// partial pivoting in f64. `None` if the system is singular.
///
/// The caller is expected to pass well-conditioned coordinates (see
/// [`Normalizer`]); pixel coordinates work too, with some loss of accuracy.
fn homography_4pt(src: &[(f64, f64); 4], dst: &[(f64, f64); 4]) -> Option<Homography> {
    let mut m = [[0.0f64; 8]; 8];
    let mut rhs = [0.0f64; 8];
    for k in 0..4 {
        let (r1, b1, r2, b2) = dlt_rows(src[k].0, src[k].1, dst[k].0, dst[k].1);
        m[2 * k] = r1;
        rhs[2 * k] = b1;
        m[2 * k + 1] = r2;
        rhs[2 * k + 1] = b2;
    }
    let h = solve_linear(&mut m, &mut rhs)?;
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

/// Least-squares homography (h33 = 1) through many correspondences, from
/// the normal equations of the DLT system. `None` if singular.
fn homography_lsq(src: &[(f64, f64)], dst: &[(f64, f64)]) -> Option<Homography> {
    if src.len() < 4 {
        return None;
    }
    let mut ata = [[0.0f64; 8]; 8];
    let mut atb = [0.0f64; 8];
    for (&(x, y), &(u, v)) in src.iter().zip(dst) {
        let (r1, b1, r2, b2) = dlt_rows(x, y, u, v);
        for (r, b) in [(r1, b1), (r2, b2)] {
            for i in 0..8 {
                if r[i] == 0.0 {
                    continue;
                }
                for j in 0..8 {
                    ata[i][j] += r[i] * r[j];
                }
                atb[i] += r[i] * b;
            }
        }
    }
    let h = solve_linear(&mut ata, &mut atb)?;
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

/// `a * b` for row-major 3x3 matrices.
fn mat_mul(a: &Homography, b: &Homography) -> Homography {
    let mut r = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            r[i * 3 + j] = (0..3).map(|k| a[i * 3 + k] * b[k * 3 + j]).sum();
        }
    }
    r
}

/// Hartley normalisation of a point set: translate the centroid to the
/// origin and scale the mean distance to sqrt(2).
#[derive(Debug, Clone, Copy)]
struct Normalizer {
    cx: f64,
    cy: f64,
    s: f64,
}

impl Normalizer {
    fn new(pts: &[(f64, f64)]) -> Self {
        let n = pts.len().max(1) as f64;
        let cx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let cy = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let mean = pts
            .iter()
            .map(|p| ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt())
            .sum::<f64>()
            / n;
        let s = if mean > 1e-12 {
            std::f64::consts::SQRT_2 / mean
        } else {
            1.0
        };
        Normalizer { cx, cy, s }
    }

    fn apply(&self, p: (f64, f64)) -> (f64, f64) {
        ((p.0 - self.cx) * self.s, (p.1 - self.cy) * self.s)
    }

    /// The matrix of [`Normalizer::apply`].
    fn matrix(&self) -> Homography {
        [
            self.s,
            0.0,
            -self.s * self.cx,
            0.0,
            self.s,
            -self.s * self.cy,
            0.0,
            0.0,
            1.0,
        ]
    }

    /// The inverse of [`Normalizer::matrix`].
    fn inverse(&self) -> Homography {
        [
            1.0 / self.s,
            0.0,
            self.cx,
            0.0,
            1.0 / self.s,
            self.cy,
            0.0,
            0.0,
            1.0,
        ]
    }
}

/// Fits a homography in normalised coordinates and maps it back to the
/// input frame: `H = T_dst^-1 * H_n * T_src`.
fn fit_normalized(src: &[(f64, f64)], dst: &[(f64, f64)]) -> Option<Homography> {
    let ns = Normalizer::new(src);
    let nd = Normalizer::new(dst);
    let s: Vec<_> = src.iter().map(|&p| ns.apply(p)).collect();
    let d: Vec<_> = dst.iter().map(|&p| nd.apply(p)).collect();
    let hn = if s.len() == 4 {
        homography_4pt(&[s[0], s[1], s[2], s[3]], &[d[0], d[1], d[2], d[3]])?
    } else {
        homography_lsq(&s, &d)?
    };
    let mut h = mat_mul(&nd.inverse(), &mat_mul(&hn, &ns.matrix()));
    // Rescale to h33 = 1 when possible (a homography is defined up to scale).
    if h[8].abs() > 1e-12 {
        let k = 1.0 / h[8];
        h.iter_mut().for_each(|v| *v *= k);
    }
    h.iter().all(|v| v.is_finite()).then_some(h)
}

/// Twice the signed area of the triangle `a, b, c`.
#[inline]
fn cross(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

/// Whether a 4-point sample can define a useful homography: no three
/// points collinear (or coincident) on either side, and every triangle
/// keeps its orientation from `src` to `dst` (a homography of a real scene
/// never mirrors a sample, so such samples are noise).
fn sample_ok(src: &[(f64, f64); 4], dst: &[(f64, f64); 4]) -> bool {
    const TRIPLES: [[usize; 3]; 4] = [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]];
    // A triangle is degenerate when its height over its longest side is
    // below 1/1000 of that side (0.3 px for points 300 px apart); two
    // coincident points (several matches onto one keypoint) count too.
    let degenerate = |a: (f64, f64), b: (f64, f64), c: (f64, f64), area2: f64| {
        let d2 = |p: (f64, f64), q: (f64, f64)| (p.0 - q.0).powi(2) + (p.1 - q.1).powi(2);
        let longest = d2(a, b).max(d2(b, c)).max(d2(a, c));
        longest == 0.0 || area2.abs() <= 1e-3 * longest
    };
    TRIPLES.iter().all(|t| {
        let (s0, s1, s2) = (src[t[0]], src[t[1]], src[t[2]]);
        let (d0, d1, d2) = (dst[t[0]], dst[t[1]], dst[t[2]]);
        let cs = cross(s0, s1, s2);
        let cd = cross(d0, d1, d2);
        !degenerate(s0, s1, s2, cs) && !degenerate(d0, d1, d2, cd) && (cs > 0.0) == (cd > 0.0)
    })
}

/// Number of correspondences `src[i] -> dst[i]` that `h` maps with a
/// reprojection error below `sqrt(thresh2)`; marks them in `mask` when given.
fn count_inliers(
    h: &Homography,
    src: &[(f64, f64)],
    dst: &[(f64, f64)],
    thresh2: f64,
    mut mask: Option<&mut Vec<bool>>,
) -> usize {
    let mut n = 0;
    if let Some(m) = mask.as_deref_mut() {
        m.clear();
    }
    for (&(x, y), &(u, v)) in src.iter().zip(dst) {
        let wz = h[6] * x + h[7] * y + h[8];
        let ok = if wz.abs() > 1e-12 {
            let px = (h[0] * x + h[1] * y + h[2]) / wz;
            let py = (h[3] * x + h[4] * y + h[5]) / wz;
            let e = (px - u).powi(2) + (py - v).powi(2);
            e < thresh2
        } else {
            false
        };
        n += usize::from(ok);
        if let Some(m) = mask.as_deref_mut() {
            m.push(ok);
        }
    }
    n
}

/// Iterations needed so that, with probability `RANSAC_CONFIDENCE`, at
/// least one all-inlier 4-point sample was drawn, given the inlier ratio.
fn ransac_bound(inliers: usize, total: usize, max_iters: usize) -> usize {
    if inliers >= total {
        return 0;
    }
    let w = inliers as f64 / total as f64;
    let p_good = w.powi(4);
    if p_good <= 0.0 {
        return max_iters;
    }
    let denom = (1.0 - p_good).ln();
    if denom >= 0.0 {
        return max_iters;
    }
    let n = ((1.0 - RANSAC_CONFIDENCE).ln() / denom).ceil();
    if n.is_finite() && n < max_iters as f64 {
        n as usize
    } else {
        max_iters
    }
}

/// RANSAC homography over the correspondences `src[i] -> dst[i]`; returns
/// the best inlier count (0 when fewer than 4 correspondences).
///
/// Each iteration draws 4 distinct correspondences, skips degenerate
/// samples (see [`sample_ok`]), fits the exact homography and counts the
/// inliers. Each new best model is refined once by least squares over its
/// inliers and recounted (local optimisation), which recovers inliers a
/// slightly noisy 4-point model misses. Stops after `max_iters` iterations
/// (degenerate samples included) or once the adaptive bound for the best
/// inlier ratio so far is reached.
fn ransac_homography(
    src: &[(f64, f64)],
    dst: &[(f64, f64)],
    reproj_px: f64,
    max_iters: usize,
    seed: u64,
) -> (usize, Option<Homography>) {
    let n = src.len();
    if n < 4 || reproj_px.is_nan() || reproj_px <= 0.0 {
        return (0, None);
    }
    let thresh2 = reproj_px * reproj_px;
    let mut rng = SplitMix64(seed);
    let mut best = 0usize;
    let mut best_h = None;
    let mut bound = max_iters;
    let mut mask = Vec::with_capacity(n);
    let mut iter = 0;
    while iter < bound.min(max_iters) {
        iter += 1;
        let mut idx = [0usize; 4];
        for k in 0..4 {
            idx[k] = loop {
                let c = rng.below(n);
                if !idx[..k].contains(&c) {
                    break c;
                }
            };
        }
        let s = idx.map(|i| src[i]);
        let d = idx.map(|i| dst[i]);
        if !sample_ok(&s, &d) {
            continue;
        }
        let Some(h) = fit_normalized(&s, &d) else {
            continue;
        };
        let count = count_inliers(&h, src, dst, thresh2, Some(&mut mask));
        if count <= best {
            continue;
        }
        best = count;
        best_h = Some(h);
        // Local optimisation: refit on the inliers, keep if it explains more.
        if count > 4 {
            let (is, id): (Vec<_>, Vec<_>) = src
                .iter()
                .zip(dst)
                .zip(&mask)
                .filter(|(_, &m)| m)
                .map(|((&a, &b), _)| (a, b))
                .unzip();
            if let Some(hr) = fit_normalized(&is, &id) {
                let refit = count_inliers(&hr, src, dst, thresh2, None);
                if refit > best {
                    best = refit;
                    best_h = Some(hr);
                }
            }
        }
        bound = ransac_bound(best, n, max_iters);
    }
    (best, best_h)
}

/// The RANSAC seed of a pair, from its key (the two contents, the one
/// whose path sorts first before `|`): the inlier count of a pair then does
/// not depend on what else was scanned, and apply's re-verification repeats
/// the scan's count exactly.
pub fn pair_seed(key: &str) -> u64 {
    let digest = blake3::hash(key.as_bytes());
    u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// What [`homography_match`] finds: the inlier count and, from the
/// homography that explains them, how much of each photo the other shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub inliers: u32,
    /// `None` when no homography was fitted (or a photo's size is unknown).
    pub coverage: Option<Coverage>,
    /// The worst quarter's distance under the homography
    /// ([`crate::layout::region_distance`]), filled in by the verify stage
    /// when both photos have a layout.
    pub regions: Option<f32>,
    /// The homography RANSAC kept (frame `a` → frame `b`); not cached.
    pub homography: Option<Homography>,
}

/// How much of each photo of a pair the other one shows, as shares of its
/// area (0 to 1), through the fitted homography: a crop of 10% shows 0.9 of
/// its original and all of itself, a panorama neighbour overlapping by 10%
/// about 0.1 of each other, a zoomed detail all of itself and a small part
/// of the wide shot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    /// The share of photo `a`'s frame that photo `b` shows.
    pub a: f32,
    /// The share of photo `b`'s frame that photo `a` shows.
    pub b: f32,
}

impl Coverage {
    /// The smaller of the two shares.
    pub fn min(&self) -> f32 {
        self.a.min(self.b)
    }
}

/// Counts the matches a→b that a single homography explains.
///
/// For each descriptor of `a`, the two nearest descriptors of `b` by
/// Hamming distance (brute force) are found and the match kept when
/// `best < ratio * second` (Lowe's ratio test; 0.8 in the prototype). A
/// seeded RANSAC then fits homographies `a → b` to random 4-match samples
/// (degenerate samples skipped, DLT with `h33 = 1` solved by Gaussian
/// elimination with partial pivoting in f64 on Hartley-normalised
/// coordinates), counts the matches whose reprojection error in `b`'s input
/// frame is below `reproj_px`, and stops after `max_iters` iterations or
/// once the 0.995-confidence adaptive bound is reached.
///
/// Returns the best inlier count, and the [`Coverage`] of the best model: 0
/// and no coverage when either side has fewer than 2
/// descriptors or fewer than 4 matches survive. Deterministic for a given
/// `seed`. The prototype called a pair a duplicate at 12 inliers or more.
pub fn homography_match(
    a: &Features,
    b: &Features,
    ratio: f32,
    reproj_px: f32,
    max_iters: usize,
    seed: u64,
) -> Match {
    let none = Match {
        inliers: 0,
        coverage: None,
        regions: None,
        homography: None,
    };
    let na = a.descriptors.len().min(a.points.len());
    let nb = b.descriptors.len().min(b.points.len());
    if na < 2 || nb < 2 {
        return none;
    }
    let matches = ratio_matches(&a.descriptors[..na], &b.descriptors[..nb], ratio);
    if matches.len() < 4 {
        return none;
    }
    let pt = |p: (f32, f32)| (f64::from(p.0), f64::from(p.1));
    let src: Vec<_> = matches.iter().map(|&(i, _)| pt(a.points[i])).collect();
    let dst: Vec<_> = matches.iter().map(|&(_, j)| pt(b.points[j])).collect();
    let (inliers, h) = ransac_homography(&src, &dst, f64::from(reproj_px), max_iters, seed);
    let coverage = h.and_then(|h| coverage(&h, (a.width, a.height), (b.width, b.height)));
    Match {
        inliers: inliers as u32,
        coverage,
        regions: None,
        homography: h,
    }
}

/// The coverage of `h` (frame `a` → frame `b`, sizes in pixels): the part
/// of `b`'s frame that `a`'s frame maps onto, and the part of `a`'s frame
/// that `b`'s maps back onto through the inverse. `None` when the model
/// sends a frame's corners through infinity (a homography fitted to part of
/// a scene that is not a plane, extrapolated): it then says nothing of how
/// the frames overlap.
fn coverage(h: &Homography, a: (u32, u32), b: (u32, u32)) -> Option<Coverage> {
    if a.0 == 0 || a.1 == 0 || b.0 == 0 || b.1 == 0 {
        return None;
    }
    let inv = invert(h)?;
    Some(Coverage {
        a: shown(&inv, b, a)? as f32,
        b: shown(h, a, b)? as f32,
    })
}

/// The share of frame `to` covered by frame `from` mapped through `h`;
/// `None` when a corner of `from` maps through infinity.
fn shown(h: &Homography, from: (u32, u32), to: (u32, u32)) -> Option<f64> {
    let rect = |(w, h): (u32, u32)| {
        let (x1, y1) = (f64::from(w) - 0.5, f64::from(h) - 0.5);
        [(-0.5, -0.5), (x1, -0.5), (x1, y1), (-0.5, y1)]
    };
    let mut quad = Vec::with_capacity(4);
    for corner in rect(from) {
        quad.push(project(h, corner)?);
    }
    let [lo, _, hi, _] = rect(to);
    let area = polygon_area(&clip_to_rect(quad, lo, hi));
    Some((area / ((hi.0 - lo.0) * (hi.1 - lo.1))).clamp(0.0, 1.0))
}

/// A point mapped through `h`; `None` when it maps through infinity (or
/// behind the camera).
pub(crate) fn project(h: &Homography, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    let w = h[6] * x + h[7] * y + h[8];
    if w <= 1e-9 {
        return None;
    }
    Some((
        (h[0] * x + h[1] * y + h[2]) / w,
        (h[3] * x + h[4] * y + h[5]) / w,
    ))
}

/// The inverse of a homography, scaled to `h33 = 1` when possible; `None`
/// when it is singular.
pub(crate) fn invert(m: &Homography) -> Option<Homography> {
    let [a, b, c, d, e, f, g, h, i] = *m;
    let co = [
        e * i - f * h,
        c * h - b * i,
        b * f - c * e,
        f * g - d * i,
        a * i - c * g,
        c * d - a * f,
        d * h - e * g,
        b * g - a * h,
        a * e - b * d,
    ];
    let det = a * co[0] + b * co[3] + c * co[6];
    if !det.is_finite() || det.abs() < 1e-12 {
        return None;
    }
    let mut r = co.map(|v| v / det);
    if r[8].abs() > 1e-12 {
        let k = 1.0 / r[8];
        r.iter_mut().for_each(|v| *v *= k);
    }
    r.iter().all(|v| v.is_finite()).then_some(r)
}

/// Sutherland–Hodgman: the part of polygon `poly` inside the axis-aligned
/// rectangle from `lo` to `hi`.
fn clip_to_rect(mut poly: Vec<(f64, f64)>, lo: (f64, f64), hi: (f64, f64)) -> Vec<(f64, f64)> {
    // Each side as (axis, bound, inside when the coordinate is >= bound?).
    let sides = [
        (0, lo.0, true),
        (0, hi.0, false),
        (1, lo.1, true),
        (1, hi.1, false),
    ];
    for (axis, bound, above) in sides {
        if poly.is_empty() {
            break;
        }
        let coord = |p: (f64, f64)| if axis == 0 { p.0 } else { p.1 };
        let inside = |p: (f64, f64)| {
            if above {
                coord(p) >= bound
            } else {
                coord(p) <= bound
            }
        };
        let mut out = Vec::with_capacity(poly.len() + 2);
        for k in 0..poly.len() {
            let (p, q) = (poly[k], poly[(k + 1) % poly.len()]);
            if inside(p) {
                out.push(p);
            }
            if inside(p) != inside(q) {
                let t = (bound - coord(p)) / (coord(q) - coord(p));
                out.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
            }
        }
        poly = out;
    }
    poly
}

/// The area of a simple polygon (shoelace formula).
fn polygon_area(poly: &[(f64, f64)]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let twice: f64 = (0..n)
        .map(|k| {
            let (p, q) = (poly[k], poly[(k + 1) % n]);
            p.0 * q.1 - q.0 * p.1
        })
        .sum();
    twice.abs() / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 512;
    const H: u32 = 384;

    /// A deterministic textured test pattern: low-frequency sines plus
    /// random rectangles, discs and lines of random gray levels.
    fn texture(w: u32, h: u32, seed: u64) -> Vec<u8> {
        let (wu, hu) = (w as usize, h as usize);
        let mut rng = SplitMix64(seed);
        let f1 = 0.02 + 0.03 * rng.next_f64();
        let f2 = 0.02 + 0.03 * rng.next_f64();
        let f3 = 0.01 + 0.02 * rng.next_f64();
        let mut img = vec![0f32; wu * hu];
        for y in 0..hu {
            for x in 0..wu {
                let (xf, yf) = (x as f32, y as f32);
                img[y * wu + x] = 128.0
                    + 30.0 * (xf * f1 as f32).sin()
                    + 30.0 * (yf * f2 as f32).cos()
                    + 20.0 * ((xf + yf) * f3 as f32).sin();
            }
        }
        for _ in 0..160 {
            let cx = rng.next_f64() * w as f64;
            let cy = rng.next_f64() * h as f64;
            let rw = 4.0 + rng.next_f64() * 40.0;
            let rh = 4.0 + rng.next_f64() * 40.0;
            let val = (rng.next_f64() * 255.0) as f32;
            let alpha = 0.5 + 0.5 * rng.next_f64() as f32;
            let kind = rng.below(3);
            let x0 = (cx - rw).max(0.0) as usize;
            let x1 = ((cx + rw) as usize).min(wu - 1);
            let y0 = (cy - rh).max(0.0) as usize;
            let y1 = ((cy + rh) as usize).min(hu - 1);
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let dx = (x as f64 - cx) / rw;
                    let dy = (y as f64 - cy) / rh;
                    let inside = match kind {
                        0 => true,
                        1 => dx * dx + dy * dy <= 1.0,
                        _ => (dx + dy).abs() < 0.15,
                    };
                    if inside {
                        let p = &mut img[y * wu + x];
                        *p = *p * (1.0 - alpha) + val * alpha;
                    }
                }
            }
        }
        img.iter().map(|&v| v.clamp(0.0, 255.0) as u8).collect()
    }

    fn gray(w: u32, h: u32, px: &[u8]) -> Gray<'_> {
        Gray {
            width: w,
            height: h,
            pixels: px,
        }
    }

    /// Warps `src` into a `dw` x `dh` image with the inverse map `inv`
    /// (destination pixel -> source pixel), bilinear, gray 128 outside.
    fn warp(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32, inv: &Homography) -> Vec<u8> {
        let (sw, sh) = (sw as usize, sh as usize);
        let mut out = vec![128u8; (dw * dh) as usize];
        for y in 0..dh as usize {
            for x in 0..dw as usize {
                let (xf, yf) = (x as f64, y as f64);
                let z = inv[6] * xf + inv[7] * yf + inv[8];
                let sx = (inv[0] * xf + inv[1] * yf + inv[2]) / z;
                let sy = (inv[3] * xf + inv[4] * yf + inv[5]) / z;
                if sx < 0.0 || sy < 0.0 || sx > (sw - 1) as f64 || sy > (sh - 1) as f64 {
                    continue;
                }
                let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
                let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
                let p = |x: usize, y: usize| f64::from(src[y * sw + x]);
                let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                    + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
                out[y * dw as usize + x] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    fn inliers(a: &Features, b: &Features) -> usize {
        homography_match(a, b, 0.8, 5.0, 2000, 42).inliers as usize
    }

    fn base() -> (Vec<u8>, Features) {
        let px = texture(W, H, 1);
        let f = orb(&gray(W, H, &px), &OrbParams::default());
        (px, f)
    }

    #[test]
    fn finds_many_features_inside_the_image_deterministically() {
        let (px, f) = base();
        assert!(f.len() >= 500, "only {} features", f.len());
        assert!(f.len() <= 1000);
        assert_eq!(f.points.len(), f.descriptors.len());
        for &(x, y) in &f.points {
            assert!(
                x >= 0.0 && y >= 0.0 && x < W as f32 && y < H as f32,
                "{x},{y}"
            );
        }
        let again = orb(&gray(W, H, &px), &OrbParams::default());
        assert_eq!(f, again);
        // Several pyramid levels contribute.
        let small = f.points.iter().filter(|p| p.0.fract() != 0.0).count();
        assert!(small > 0, "no keypoint from a scaled level");
    }

    #[test]
    fn identical_images_match() {
        let (_, f) = base();
        let n = inliers(&f, &f);
        assert!(n >= 50, "{n}");
    }

    #[test]
    fn shifted_copy_matches() {
        let (px, f) = base();
        let inv = [1.0, 0.0, -17.0, 0.0, 1.0, -9.0, 0.0, 0.0, 1.0];
        let moved = warp(&px, W, H, W, H, &inv);
        let g = orb(&gray(W, H, &moved), &OrbParams::default());
        let n = inliers(&f, &g);
        assert!(n >= 50, "{n}");
    }

    #[test]
    fn scaled_copy_matches() {
        let (px, f) = base();
        let (dw, dh) = (
            (W as f64 * 0.8).round() as u32,
            (H as f64 * 0.8).round() as u32,
        );
        let s = 1.0 / 0.8;
        let inv = [s, 0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, 1.0];
        let small = warp(&px, W, H, dw, dh, &inv);
        let g = orb(&gray(dw, dh, &small), &OrbParams::default());
        let n = inliers(&f, &g);
        assert!(n >= 50, "{n}");
    }

    #[test]
    fn rotated_copy_matches() {
        let (px, f) = base();
        let t = 5f64.to_radians();
        let (c, s) = (t.cos(), t.sin());
        let (cx, cy) = (W as f64 / 2.0, H as f64 / 2.0);
        // Inverse rotation about the centre.
        let inv = [
            c,
            s,
            cx - c * cx - s * cy,
            -s,
            c,
            cy + s * cx - c * cy,
            0.0,
            0.0,
            1.0,
        ];
        let rotated = warp(&px, W, H, W, H, &inv);
        let g = orb(&gray(W, H, &rotated), &OrbParams::default());
        let n = inliers(&f, &g);
        assert!(n >= 50, "{n}");
    }

    #[test]
    fn brightened_copy_matches() {
        let (px, f) = base();
        let bright: Vec<u8> = px
            .iter()
            .map(|&v| (f32::from(v) * 1.1 + 25.0).min(255.0) as u8)
            .collect();
        let g = orb(&gray(W, H, &bright), &OrbParams::default());
        let n = inliers(&f, &g);
        assert!(n >= 50, "{n}");
    }

    #[test]
    fn different_images_do_not_match() {
        let (_, f) = base();
        for seed in 2..6 {
            let other = texture(W, H, seed);
            let g = orb(&gray(W, H, &other), &OrbParams::default());
            assert!(g.len() >= 500);
            let n = inliers(&f, &g);
            assert!(n < 12, "seed {seed}: {n}");
            let n = inliers(&g, &f);
            assert!(n < 12, "seed {seed} reversed: {n}");
        }
    }

    #[test]
    fn flat_and_tiny_images() {
        let flat = vec![128u8; (W * H) as usize];
        let f = orb(&gray(W, H, &flat), &OrbParams::default());
        assert!(f.len() <= 5, "{}", f.len());
        let (_, tex) = base();
        assert_eq!(inliers(&f, &tex), 0);
        assert_eq!(inliers(&tex, &f), 0);
        assert_eq!(inliers(&f, &f), 0);

        for (w, h) in [
            (20, 20),
            (1, 1),
            (0, 0),
            (1, 300),
            (300, 1),
            (64, 64),
            (70, 70),
        ] {
            let px = texture(w.max(1), h.max(1), 7);
            let f = orb(&gray(w, h, &px), &OrbParams::default());
            assert_eq!(f.points.len(), f.descriptors.len());
            let _ = inliers(&f, &f);
        }
        // A buffer shorter than width * height is refused, not indexed.
        let f = orb(&gray(100, 100, &[0u8; 10]), &OrbParams::default());
        assert!(f.is_empty());
        assert_eq!(inliers(&Features::default(), &Features::default()), 0);
    }

    #[test]
    fn odd_parameters_do_not_panic() {
        let px = texture(W, H, 3);
        for p in [
            OrbParams {
                n_features: 0,
                ..OrbParams::default()
            },
            OrbParams {
                n_features: 1,
                ..OrbParams::default()
            },
            OrbParams {
                scale_factor: 1.0,
                ..OrbParams::default()
            },
            OrbParams {
                n_levels: 0,
                ..OrbParams::default()
            },
            OrbParams {
                patch: 0,
                edge: 0,
                fast_threshold: 0,
                ..OrbParams::default()
            },
            OrbParams {
                n_levels: 30,
                ..OrbParams::default()
            },
            OrbParams {
                n_features: usize::MAX,
                scale_factor: f32::NAN,
                ..OrbParams::default()
            },
            OrbParams {
                patch: 1000,
                ..OrbParams::default()
            },
        ] {
            let f = orb(&gray(W, H, &px), &p);
            assert!(f.len() <= p.n_features);
            for &(x, y) in &f.points {
                assert!(x >= 0.0 && y >= 0.0 && x < W as f32 && y < H as f32);
            }
        }
    }

    fn project(h: &Homography, p: (f64, f64)) -> (f64, f64) {
        let z = h[6] * p.0 + h[7] * p.1 + h[8];
        (
            (h[0] * p.0 + h[1] * p.1 + h[2]) / z,
            (h[3] * p.0 + h[4] * p.1 + h[5]) / z,
        )
    }

    #[test]
    fn dlt_solves_an_exact_homography() {
        let truth: Homography = [1.1, 0.05, 12.0, -0.03, 0.95, -7.5, 1.0e-4, -5.0e-5, 1.0];
        let src = [(10.0, 20.0), (500.0, 40.0), (480.0, 370.0), (30.0, 350.0)];
        let dst = src.map(|p| project(&truth, p));
        // Raw pixel coordinates and normalised ones both recover it.
        let raw = homography_4pt(&src, &dst).expect("solvable");
        let norm = fit_normalized(&src, &dst).expect("solvable");
        for h in [raw, norm] {
            for (a, b) in h.iter().zip(&truth) {
                assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{h:?}");
            }
        }
        // Least squares over more exact points gives the same matrix.
        let many: Vec<_> = (0..20)
            .map(|i| (13.0 * i as f64, 300.0 - 11.0 * i as f64 + (i * i) as f64))
            .collect();
        let proj: Vec<_> = many.iter().map(|&p| project(&truth, p)).collect();
        let h = fit_normalized(&many, &proj).expect("solvable");
        for (a, b) in h.iter().zip(&truth) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{h:?}");
        }
        // Collinear points are singular / rejected.
        let line = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (5.0, 1.0)];
        assert!(!sample_ok(&line, &line));
        assert!(sample_ok(&src, &dst));
    }

    #[test]
    fn gaussian_elimination_pivots() {
        // The first pivot is zero: without row exchanges this would fail.
        let mut m = [[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0]];
        let mut b = [5.0, 3.0, 6.0];
        let x = solve_linear(&mut m, &mut b).expect("regular");
        for (xi, want) in x.iter().zip([1.4, 1.6, 1.8]) {
            assert!((xi - want).abs() < 1e-12, "{x:?}");
        }
        let mut s = [[1.0, 2.0], [2.0, 4.0]];
        let mut r = [1.0, 2.0];
        assert!(solve_linear(&mut s, &mut r).is_none());
    }

    #[test]
    fn ransac_ignores_outliers() {
        let truth: Homography = [0.9, -0.1, 30.0, 0.1, 0.9, -10.0, 0.0, 0.0, 1.0];
        let mut rng = SplitMix64(5);
        let mut src = Vec::new();
        let mut dst = Vec::new();
        for i in 0..200 {
            let p = (rng.next_f64() * 500.0, rng.next_f64() * 380.0);
            src.push(p);
            if i % 2 == 0 {
                dst.push(project(&truth, p));
            } else {
                dst.push((rng.next_f64() * 500.0, rng.next_f64() * 380.0));
            }
        }
        let n = ransac_homography(&src, &dst, 5.0, 2000, 1).0;
        assert!((100..=110).contains(&n), "{n}");
        assert_eq!(n, ransac_homography(&src, &dst, 5.0, 2000, 1).0);
        assert_eq!(ransac_homography(&src[..3], &dst[..3], 5.0, 2000, 1).0, 0);
    }

    /// A translation-and-scale homography `x' = s x + tx`, `y' = s y + ty`.
    fn similarity(s: f64, tx: f64, ty: f64) -> Homography {
        [s, 0.0, tx, 0.0, s, ty, 0.0, 0.0, 1.0]
    }

    #[test]
    fn coverage_of_a_copy_a_crop_a_neighbour_and_a_detail() {
        let close = |x: f32, y: f64| (f64::from(x) - y).abs() < 0.01;
        // The same frame: each shows all of the other.
        let c = coverage(&similarity(1.0, 0.0, 0.0), (512, 384), (512, 384)).unwrap();
        assert!(close(c.a, 1.0) && close(c.b, 1.0), "{c:?}");
        // a resized to half: still the whole picture.
        let c = coverage(&similarity(0.5, -0.25, -0.25), (512, 384), (256, 192)).unwrap();
        assert!(close(c.a, 1.0) && close(c.b, 1.0), "{c:?}");
        // b is the middle 80% (per side) of a, enlarged to a's size: b shows
        // 64% of a, a shows all of b.
        let c = coverage(&similarity(1.25, -64.0, -48.0), (512, 384), (512, 384)).unwrap();
        assert!(close(c.a, 0.64) && close(c.b, 1.0), "{c:?}");
        // A panorama neighbour: b starts where the last 10% of a begins.
        let c = coverage(&similarity(1.0, -460.8, 0.0), (512, 384), (512, 384)).unwrap();
        assert!(close(c.a, 0.1) && close(c.b, 0.1), "{c:?}");
        // A zoomed detail: b is a's middle third, enlarged three times.
        let c = coverage(&similarity(3.0, -512.0, -384.0), (512, 384), (512, 384)).unwrap();
        assert!(close(c.a, 1.0 / 9.0) && close(c.b, 1.0), "{c:?}");
    }

    #[test]
    fn a_folding_or_singular_homography_says_nothing() {
        // Corners sent through infinity.
        let fold = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -0.01, 0.0, 1.0];
        assert!(coverage(&fold, (512, 384), (512, 384)).is_none());
        assert!(coverage(&[0.0; 9], (512, 384), (512, 384)).is_none());
        assert!(coverage(&similarity(1.0, 0.0, 0.0), (0, 384), (512, 384)).is_none());
    }

    #[test]
    fn a_photo_matched_with_itself_is_covered_whole() {
        let img = texture(W, H, 7);
        let g = Gray {
            width: W,
            height: H,
            pixels: &img,
        };
        let f = orb(&g, &OrbParams::default());
        let c = homography_match(&f, &f, 0.8, 5.0, 2000, 1)
            .coverage
            .expect("a fit");
        assert!(c.a > 0.99 && c.b > 0.99, "{c:?}");
    }

    #[test]
    fn matching_gives_the_same_pairs_with_every_kernel() {
        let (_, f) = base();
        let other = texture(W, H, 9);
        let g = orb(&gray(W, H, &other), &OrbParams::default());
        for (a, b) in [(&f, &g), (&f, &f), (&g, &f)] {
            let (da, db) = (&a.descriptors, &b.descriptors);
            let portable = ratio_matches_with(da, db, 0.8, Kernel::Portable);
            for k in Kernel::available() {
                assert_eq!(ratio_matches_with(da, db, 0.8, k), portable, "{k:?}");
            }
        }
        // Against itself, every matched point finds itself.
        let own = ratio_matches(&f.descriptors, &f.descriptors, 0.8);
        assert!(own.len() > f.descriptors.len() / 2, "{}", own.len());
        assert!(own.iter().all(|&(i, j)| i == j));
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 (reference implementation).
        let mut r = SplitMix64(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    #[ignore = "informal timing; run with --release --ignored --nocapture"]
    fn timing() {
        let (px, f) = base();
        let other = texture(W, H, 9);
        let g = orb(&gray(W, H, &other), &OrbParams::default());
        let reps = 30;
        // Best of `reps` runs, in milliseconds (robust on a busy machine).
        let best_ms = |run: &mut dyn FnMut()| {
            (0..reps)
                .map(|_| {
                    let t = std::time::Instant::now();
                    run();
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .fold(f64::INFINITY, f64::min)
        };
        let orb_ms = best_ms(&mut || {
            std::hint::black_box(orb(&gray(W, H, &px), &OrbParams::default()));
        });
        let match_ms = best_ms(&mut || {
            std::hint::black_box(ratio_matches(&f.descriptors, &g.descriptors, 0.8));
        });
        for k in Kernel::available() {
            let ms = best_ms(&mut || {
                let (a, b) = (&f.descriptors, &g.descriptors);
                std::hint::black_box(ratio_matches_with(a, b, 0.8, k));
            });
            println!("matching with the {k:?} kernel {ms:.2} ms");
        }
        let unrelated_ms = best_ms(&mut || {
            std::hint::black_box(inliers(&f, &g));
        });
        let same_ms = best_ms(&mut || {
            std::hint::black_box(inliers(&f, &f));
        });
        // Worst case for RANSAC: 1000 correspondences, 5% inliers, so the
        // adaptive bound never stops it before max_iters.
        let mut rng = SplitMix64(11);
        let src: Vec<_> = (0..1000)
            .map(|_| (rng.next_f64() * 500.0, rng.next_f64() * 380.0))
            .collect();
        let dst: Vec<_> = src
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| {
                if i % 20 == 0 {
                    (x + 3.0, y - 2.0)
                } else {
                    (rng.next_f64() * 500.0, rng.next_f64() * 380.0)
                }
            })
            .collect();
        let ransac_ms = best_ms(&mut || {
            std::hint::black_box(ransac_homography(&src, &dst, 5.0, 2000, 3));
        });
        println!("RANSAC worst case (1000 matches, 2000 iterations) {ransac_ms:.2} ms");
        println!(
            "orb {orb_ms:.2} ms ({} features); {}x{} matching alone {match_ms:.2} ms; \
             homography_match unrelated {unrelated_ms:.2} ms, identical {same_ms:.2} ms",
            f.len(),
            f.len(),
            g.len()
        );
    }
}
