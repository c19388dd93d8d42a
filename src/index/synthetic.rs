//! Synthetic libraries of vectors like the bundled model's, for the tests
//! and the scale benchmark (`examples/scale_bench.rs`).
//!
//! The model's features are ReLU outputs, so its vectors are non-negative
//! and two unrelated photos sit at a cosine distance of about 0.7. Photos
//! of one library are not unrelated, though: they come in **topics** (a
//! trip, a subject) and, within a topic, in **scenes** (one view shot a few
//! times), and some are **copies** (edited, re-saved) of another. Each
//! photo here is the ReLU of a Gaussian sum of a topic part, a scene part
//! and its own part; two photos' pre-activations then correlate by the
//! variance they share (ρ), and their cosine distance follows the ReLU's
//! arc-cosine kernel: ρ = 0 gives 0.68, 0.35 about 0.49, 0.65 about 0.29,
//! 0.85 about 0.13. Per topic and per scene the shares are drawn at random,
//! so distances spread as real ones do: on holidays-dev a photo's nearest
//! neighbour is at a median 0.19 and its fifth at 0.42; unrelated photos at
//! a median 0.74.
//!
//! Everything is seeded: the same arguments give the same vectors.

use super::{Embeddings, SplitMix64};
use rayon::prelude::*;

/// The shape of a synthetic library.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub photos: usize,
    pub dim: usize,
    /// Mean photos per topic.
    pub per_topic: usize,
    /// Mean photos per scene (scenes of 1 to twice this).
    pub per_scene: usize,
    /// Share of photos that are copies of the photo before them.
    pub copies: f64,
    pub seed: u64,
}

impl Shape {
    /// A library like a photographer's: topics of about 200 photos, scenes
    /// of about 3, 3% copies.
    pub fn library(photos: usize, dim: usize, seed: u64) -> Shape {
        Shape {
            photos,
            dim,
            per_topic: 200,
            per_scene: 3,
            copies: 0.03,
            seed,
        }
    }
}

/// Where each photo of a synthetic library came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub topic: u32,
    pub scene: u32,
    /// The photo this one is a copy of.
    pub copy_of: Option<u32>,
}

fn gaussian_row(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..dim).map(|_| rng.next_gaussian() as f32).collect()
}

fn mix(seed: u64, salt: u64) -> u64 {
    SplitMix64::new(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

/// Make a library of this shape: its vectors (unit length, non-negative)
/// and where each came from.
pub fn library(shape: Shape) -> (Embeddings, Vec<Origin>) {
    let Shape {
        photos: n,
        dim,
        per_topic,
        per_scene,
        copies,
        seed,
    } = shape;
    // Assign topics, scenes and copies in order (cheap, sequential).
    let mut rng = SplitMix64::new(seed);
    let mut origins = Vec::with_capacity(n);
    let (mut topic, mut scene) = (0u32, 0u32);
    let (mut left_in_topic, mut left_in_scene) = (0usize, 0usize);
    for i in 0..n {
        if i > 0 && rng.next_f64() < copies {
            let before: Origin = origins[i - 1];
            origins.push(Origin {
                copy_of: Some((i - 1) as u32),
                ..before
            });
            continue;
        }
        if left_in_topic == 0 {
            topic += 1;
            left_in_topic = 1 + rng.below(2 * per_topic as u64) as usize;
            left_in_scene = 0;
        }
        if left_in_scene == 0 {
            scene += 1;
            left_in_scene = 1 + rng.below((2 * per_scene).max(1) as u64) as usize;
        }
        left_in_topic -= 1;
        left_in_scene -= 1;
        origins.push(Origin {
            topic,
            scene,
            copy_of: None,
        });
    }
    let mut data = vec![0f32; n * dim];
    data.par_chunks_mut(dim)
        .zip(origins.par_iter())
        .enumerate()
        .for_each(|(i, (row, o))| {
            // Shares of the variance: the topic's 0.2-0.45, the scene's
            // 0.15-0.4 of the rest, drawn per topic and per scene.
            let mut tr = SplitMix64::new(mix(seed, 0x1000_0000 + o.topic as u64));
            let topic_share = 0.2 + 0.25 * tr.next_f64();
            let mut sr = SplitMix64::new(mix(seed, 0x2000_0000 + o.scene as u64));
            let scene_share = (0.15 + 0.25 * sr.next_f64()) * (1.0 - topic_share);
            let own_share = 1.0 - topic_share - scene_share;
            let t = gaussian_row(mix(seed, 0x1000_0000 + o.topic as u64) ^ 1, dim);
            let s = gaussian_row(mix(seed, 0x2000_0000 + o.scene as u64) ^ 1, dim);
            // A copy shares its original's own part but for an edit: a
            // correlation of 0.6 to 0.99 between the two own parts.
            let own_photo = o.copy_of.map_or(i as u64, |c| original(&origins, c) as u64);
            let own = gaussian_row(mix(seed, 0x3000_0000 + own_photo), dim);
            let (edit, keep) = match o.copy_of {
                Some(_) => {
                    let mut er = SplitMix64::new(mix(seed, 0x4000_0000 + i as u64));
                    let r = 0.6 + 0.39 * er.next_f64();
                    (gaussian_row(mix(seed, 0x5000_0000 + i as u64), dim), r)
                }
                None => (Vec::new(), 1.0),
            };
            let (a, b, c) = (
                topic_share.sqrt() as f32,
                scene_share.sqrt() as f32,
                own_share.sqrt() as f32,
            );
            let (k, m) = (keep as f32, (1.0 - keep * keep).max(0.0).sqrt() as f32);
            for x in 0..dim {
                let mut v = a * t[x] + b * s[x];
                let mut p = own[x];
                if !edit.is_empty() {
                    p = k * p + m * edit[x];
                }
                v += c * p;
                row[x] = v.max(0.0);
            }
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= norm);
        });
    (Embeddings { dim, data }, origins)
}

/// The photo a chain of copies started from.
fn original(origins: &[Origin], mut i: u32) -> u32 {
    while let Some(c) = origins[i as usize].copy_of {
        i = c;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::cosine_distance;

    #[test]
    fn distances_spread_like_the_models() {
        let (e, o) = library(Shape::library(3000, 256, 3));
        let (mut copy, mut scene, mut topic, mut other) = (vec![], vec![], vec![], vec![]);
        for i in 1..e.len() {
            for j in [i - 1, (i * 7919) % e.len()] {
                if j == i {
                    continue;
                }
                let d = cosine_distance(e.row(i), e.row(j));
                let (a, b) = (o[i], o[j]);
                if a.copy_of == Some(j as u32) {
                    copy.push(d);
                } else if a.scene == b.scene {
                    scene.push(d);
                } else if a.topic == b.topic {
                    topic.push(d);
                } else {
                    other.push(d);
                }
            }
        }
        let median = |v: &mut Vec<f32>| {
            v.sort_by(f32::total_cmp);
            v[v.len() / 2]
        };
        let (c, s, t, u) = (
            median(&mut copy),
            median(&mut scene),
            median(&mut topic),
            median(&mut other),
        );
        assert!(c < 0.2, "copies {c}");
        assert!((0.2..0.4).contains(&s), "scenes {s}");
        assert!((0.4..0.6).contains(&t), "topics {t}");
        assert!((0.62..0.74).contains(&u), "unrelated {u}");
        // Seeded.
        assert_eq!(
            library(Shape::library(50, 16, 3)).0,
            library(Shape::library(50, 16, 3)).0
        );
    }
}
