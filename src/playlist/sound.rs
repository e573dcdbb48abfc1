//! The MusiCNN embedding's share of the playlist feature space.
//!
//! In: the stored full-mode embeddings and tag probabilities, streamed twice from
//! [`Store::embeddings`]. Out: a [`Sound`] per track id: the embedding projected on the
//! library's first [`SOUND_DIMS`] principal components, scaled so that the mean squared length
//! is [`SOUND_WEIGHT`]², and the track's three most probable tags. [`super::space::Library`]
//! appends the projection to its scaled features, so radio, path and k-means hear it; tracks
//! analysed in fast mode have none and sit at the library's mean sound.
//!
//! Why a projection and not the whole embedding: 200 floats per track are 80 MB for 100,000
//! tracks, and every radio step scans them all. On the corpus's real tracks the first 12
//! components keep what tells albums apart: radio precision@5 by album was 0.28 with the DSP
//! features alone, 0.42 with the whole embedding, 0.42 with features plus these 12 dimensions
//! at weight 3 (`playlista bench CORPUS --playlists` measures it).
//!
//! The principal components come from at most [`SAMPLE`] embeddings (a seeded reservoir
//! sample, so the same library gives the same space) by orthogonal iteration on their
//! covariance; a second pass projects every track.

use std::collections::HashMap;

use anyhow::Result;

use super::rng::Rng;
use crate::embedding::{EMBEDDING_DIM, N_TAGS, TAG_NAMES};
use crate::store::Store;

/// Principal components of the embedding kept in the feature space.
pub const SOUND_DIMS: usize = 12;
/// Root mean squared length of the projected sound: against the DSP features' weights (bpm 2,
/// danceability 1.5, ...) the embedding weighs about as much as all of them together.
pub const SOUND_WEIGHT: f32 = 3.0;
/// Embeddings the components are estimated from, at most.
const SAMPLE: usize = 4096;
/// Orthogonal-iteration steps; the leading components of MusiCNN embeddings settle in ~20.
const ITERATIONS: usize = 60;
/// Tags remembered per track for explanations.
pub const TOP_TAGS: usize = 3;

/// One track's sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sound {
    /// Scaled principal-component coordinates.
    pub coords: [f32; SOUND_DIMS],
    /// Indices into [`TAG_NAMES`], most probable first.
    pub top_tags: [u8; TOP_TAGS],
}

impl Sound {
    pub fn tag_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.top_tags.iter().map(|&t| TAG_NAMES[t as usize])
    }
}

/// Every analysed track's sound, by track id; empty when fewer than two tracks have an
/// embedding (no space to project into).
pub fn load(store: &Store) -> Result<HashMap<i64, Sound>> {
    let mut sample = Reservoir::new(SAMPLE, 0x50_07D5);
    store.embeddings(|_, e, _| sample.offer(e))?;
    let Some(basis) = Basis::fit(&sample.kept) else {
        return Ok(HashMap::new());
    };
    drop(sample);
    let mut sounds = HashMap::new();
    let mut sum_sq = 0.0f64;
    store.embeddings(|id, e, tags| {
        let coords = basis.project(e);
        sum_sq += coords.iter().map(|&c| (c * c) as f64).sum::<f64>();
        sounds.insert(
            id,
            Sound {
                coords,
                top_tags: top_tags(tags),
            },
        );
    })?;
    let rms = (sum_sq / sounds.len().max(1) as f64).sqrt() as f32;
    if rms > 0.0 {
        let k = SOUND_WEIGHT / rms;
        for s in sounds.values_mut() {
            s.coords.iter_mut().for_each(|c| *c *= k);
        }
    }
    Ok(sounds)
}

fn top_tags(tags: &[f32; N_TAGS]) -> [u8; TOP_TAGS] {
    let mut order: [u8; N_TAGS] = std::array::from_fn(|i| i as u8);
    order.sort_by(|&a, &b| tags[b as usize].total_cmp(&tags[a as usize]));
    std::array::from_fn(|i| order[i])
}

/// A seeded uniform sample of a stream of unknown length (Algorithm R).
struct Reservoir {
    capacity: usize,
    seen: u64,
    rng: Rng,
    kept: Vec<[f32; EMBEDDING_DIM]>,
}

impl Reservoir {
    fn new(capacity: usize, seed: u64) -> Self {
        Reservoir {
            capacity,
            seen: 0,
            rng: Rng::new(seed),
            kept: Vec::new(),
        }
    }

    fn offer(&mut self, e: &[f32; EMBEDDING_DIM]) {
        self.seen += 1;
        if self.kept.len() < self.capacity {
            self.kept.push(*e);
        } else {
            let j = (self.rng.unit() * self.seen as f64) as usize;
            if j < self.capacity {
                self.kept[j] = *e;
            }
        }
    }
}

/// The mean and leading principal directions of a set of embeddings.
struct Basis {
    mean: [f64; EMBEDDING_DIM],
    /// `SOUND_DIMS` orthonormal directions.
    axes: Vec<[f64; EMBEDDING_DIM]>,
}

impl Basis {
    fn fit(points: &[[f32; EMBEDDING_DIM]]) -> Option<Basis> {
        if points.len() < 2 {
            return None;
        }
        const D: usize = EMBEDDING_DIM;
        let n = points.len() as f64;
        let mut mean = [0f64; D];
        for p in points {
            for (m, &v) in mean.iter_mut().zip(p) {
                *m += v as f64 / n;
            }
        }
        // Upper triangle of the covariance, then mirrored.
        let mut cov = vec![[0f64; D]; D];
        let mut centred = [0f64; D];
        for p in points {
            for (c, (&v, &m)) in centred.iter_mut().zip(p.iter().zip(&mean)) {
                *c = v as f64 - m;
            }
            for i in 0..D {
                let ci = centred[i];
                for j in i..D {
                    cov[i][j] += ci * centred[j];
                }
            }
        }
        for i in 1..D {
            let (above, below) = cov.split_at_mut(i);
            for (j, row) in above.iter().enumerate() {
                below[0][j] = row[i];
            }
        }
        let mut rng = Rng::new(0xA1E5);
        let mut axes: Vec<[f64; D]> = (0..SOUND_DIMS)
            .map(|_| std::array::from_fn(|_| rng.unit() - 0.5))
            .collect();
        orthonormalise(&mut axes);
        for _ in 0..ITERATIONS {
            for a in axes.iter_mut() {
                let next: [f64; D] =
                    std::array::from_fn(|i| cov[i].iter().zip(a.iter()).map(|(c, x)| c * x).sum());
                *a = next;
            }
            orthonormalise(&mut axes);
        }
        Some(Basis { mean, axes })
    }

    fn project(&self, e: &[f32; EMBEDDING_DIM]) -> [f32; SOUND_DIMS] {
        std::array::from_fn(|k| {
            self.axes[k]
                .iter()
                .zip(e.iter().zip(&self.mean))
                .map(|(a, (&v, m))| a * (v as f64 - m))
                .sum::<f64>() as f32
        })
    }
}

/// Modified Gram–Schmidt, in order: each vector loses its parts along the earlier ones and is
/// scaled to length 1 (a vector with nothing left becomes zero).
fn orthonormalise<const D: usize>(vectors: &mut [[f64; D]]) {
    for k in 0..vectors.len() {
        let (done, rest) = vectors.split_at_mut(k);
        let v = &mut rest[0];
        for u in done.iter() {
            let dot: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(x, a)| *x -= dot * a);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let inv = if norm > 1e-12 { 1.0 / norm } else { 0.0 };
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points spread mostly along two known directions: the first two axes found are those
    /// directions, in order of spread.
    #[test]
    fn principal_axes_of_a_known_spread() {
        let mut rng = Rng::new(7);
        let (mut u, mut w) = ([0f32; EMBEDDING_DIM], [0f32; EMBEDDING_DIM]);
        u[3] = 0.6;
        u[10] = 0.8;
        w[50] = 1.0;
        let points: Vec<[f32; EMBEDDING_DIM]> = (0..500)
            .map(|_| {
                let (a, b) = (rng.unit() as f32 - 0.5, rng.unit() as f32 - 0.5);
                std::array::from_fn(|i| {
                    5.0 * a * u[i] + 2.0 * b * w[i] + 0.05 * (rng.unit() as f32 - 0.5)
                })
            })
            .collect();
        let basis = Basis::fit(&points).expect("enough points");
        let along = |axis: &[f64; EMBEDDING_DIM], dir: &[f32; EMBEDDING_DIM]| {
            axis.iter()
                .zip(dir)
                .map(|(a, &d)| a * d as f64)
                .sum::<f64>()
                .abs()
        };
        assert!(along(&basis.axes[0], &u) > 0.99, "first axis");
        assert!(along(&basis.axes[1], &w) > 0.99, "second axis");
        for (i, a) in basis.axes.iter().enumerate() {
            for (j, b) in basis.axes.iter().enumerate() {
                let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let expect = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expect).abs() < 1e-9, "axes {i},{j}: {dot}");
            }
        }
    }

    #[test]
    fn reservoir_keeps_a_bounded_spread_sample() {
        let mut r = Reservoir::new(100, 1);
        for i in 0..10_000 {
            r.offer(&[i as f32; EMBEDDING_DIM]);
        }
        assert_eq!(r.kept.len(), 100);
        let late = r.kept.iter().filter(|e| e[0] >= 5000.0).count();
        assert!(
            (30..=70).contains(&late),
            "{late} of 100 from the second half"
        );
    }

    #[test]
    fn top_tags_are_the_most_probable() {
        let mut tags = [0.1f32; N_TAGS];
        tags[9] = 0.9; // jazz
        tags[0] = 0.5; // rock
        tags[32] = 0.7; // guitar
        assert_eq!(top_tags(&tags), [9, 32, 0]);
    }
}
