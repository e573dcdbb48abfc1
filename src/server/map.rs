//! The map of the library: every analysed track as a point on a 2-D projection of the sound
//! space, for the page's canvas (`GET /api/v1/map`, one binary answer).
//!
//! In: a catalog snapshot's scaled feature vectors (tempo, key, energy, brightness and, for
//! full-mode tracks, the MusiCNN sound dimensions: what radio and paths measure distance in)
//! and the previous snapshot's map. Out: [`Map`], and its bytes (below).
//!
//! The projection is the vectors' first two principal components (power iteration on their
//! covariance), so neighbours on the map are mostly neighbours for the radio. Stable between
//! updates: a new snapshot's points are fitted onto the previous map (a 2-D Procrustes fit
//! over the tracks both have: rotation or reflection, scale and shift), so adding an album
//! does not flip or spin the map; the same library gives the same map after a restart (the
//! computation is deterministic).
//!
//! The answer, little-endian, columns so the page reads them as typed arrays without a copy:
//! `"PLMAP1\0\0"`, `u32` count N, `u32` length L of a JSON legend
//! (`{"genres": [...], "tags": [...]}`), the legend padded with spaces to a multiple of 4,
//! then `u32` track ids [N], `u16` x [N], `u16` y [N] (0..65535 over the points' extent),
//! `u8` genre [N] (index into the legend's genres, the most common ones; 255 other), `u8`
//! top tag [N] (index into tags; 255 none), `u8` tempo [N] (BPM, 0 unknown, capped at 255).
//! 100k tracks are 1.3 MB (gzip ~0.8 MB), fetched once per snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use crate::embedding::TAG_NAMES;
use crate::playlist::space::{DIMS, Library};

/// Genres with a colour of their own; the rest share one.
const GENRES: usize = 12;
const ITERATIONS: usize = 100;
pub const MAGIC: &[u8; 8] = b"PLMAP1\0\0";

/// Each track's place, by track id.
pub struct Map {
    pub ids: Vec<i64>,
    pub points: Vec<[f32; 2]>,
}

impl Map {
    /// Projects `lib`, fitted onto `previous` where they share tracks.
    pub fn build(lib: &Library, previous: Option<&Map>) -> Map {
        let axes = principal_axes(&lib.scaled);
        let mut points: Vec<[f32; 2]> = lib
            .scaled
            .iter()
            .map(|v| {
                let dot =
                    |a: &[f64; DIMS]| v.iter().zip(a).map(|(x, y)| *x as f64 * y).sum::<f64>();
                [dot(&axes[0]) as f32, dot(&axes[1]) as f32]
            })
            .collect();
        let ids: Vec<i64> = lib.tracks.iter().map(|t| t.id).collect();
        if let Some(prev) = previous {
            fit_onto(&ids, &mut points, prev);
        }
        Map { ids, points }
    }

    /// The answer of `/api/v1/map` (module docs).
    pub fn bytes(&self, lib: &Library) -> Vec<u8> {
        let n = self.ids.len();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for t in &lib.tracks {
            if let Some(g) = genre(t.measured.tags.genre.as_deref()) {
                *count.entry(g).or_default() += 1;
            }
        }
        let mut genres: Vec<(&str, usize)> = count.into_iter().collect();
        genres.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        genres.truncate(GENRES);
        let names: Vec<&str> = genres.iter().map(|g| g.0).collect();
        let mut legend = serde_json::json!({ "genres": names, "tags": &TAG_NAMES[..] })
            .to_string()
            .into_bytes();
        while legend.len() % 4 != 0 {
            legend.push(b' ');
        }
        let mut out = Vec::with_capacity(16 + legend.len() + n * 11);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&(legend.len() as u32).to_le_bytes());
        out.extend_from_slice(&legend);
        for &id in &self.ids {
            out.extend_from_slice(&u32::try_from(id).unwrap_or(u32::MAX).to_le_bytes());
        }
        for axis in 0..2 {
            let (lo, hi) = self
                .points
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), p| {
                    (lo.min(p[axis]), hi.max(p[axis]))
                });
            let span = (hi - lo).max(f32::EPSILON);
            for p in &self.points {
                let q = ((p[axis] - lo) / span * 65535.0).round() as u16;
                out.extend_from_slice(&q.to_le_bytes());
            }
        }
        for t in &lib.tracks {
            let g = genre(t.measured.tags.genre.as_deref())
                .and_then(|g| names.iter().position(|n| *n == g))
                .map_or(255, |p| p as u8);
            out.push(g);
        }
        for s in &lib.sound {
            out.push(s.map_or(255, |s| s.top_tags[0]));
        }
        for t in &lib.tracks {
            out.push(
                t.measured
                    .bpm
                    .map_or(0, |b| b.round().clamp(1.0, 255.0) as u8),
            );
        }
        out
    }
}

/// A track's first genre, as the genre playlists cut it ("Rock; Pop" is Rock).
fn genre(tag: Option<&str>) -> Option<&str> {
    tag.and_then(|g| g.split([';', '/', ',']).next())
        .map(str::trim)
        .filter(|g| !g.is_empty())
}

/// The two leading eigenvectors of the vectors' covariance, each with its largest component
/// positive (a fixed sign, so the same library draws the same way).
fn principal_axes(vectors: &[[f32; DIMS]]) -> [[f64; DIMS]; 2] {
    let n = vectors.len().max(1) as f64;
    let mut mean = [0f64; DIMS];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += *x as f64 / n;
        }
    }
    let mut cov = [[0f64; DIMS]; DIMS];
    for v in vectors {
        let d: [f64; DIMS] = std::array::from_fn(|a| v[a] as f64 - mean[a]);
        for (row, da) in cov.iter_mut().zip(&d) {
            for (c, db) in row.iter_mut().zip(&d) {
                *c += da * db / n;
            }
        }
    }
    let mut axes = [[0f64; DIMS]; 2];
    for k in 0..2 {
        let mut v = [1f64; DIMS];
        for (d, x) in v.iter_mut().enumerate() {
            *x += d as f64 * 0.01;
        }
        for _ in 0..ITERATIONS {
            let mut w = [0f64; DIMS];
            for a in 0..DIMS {
                w[a] = (0..DIMS).map(|b| cov[a][b] * v[b]).sum();
            }
            // Deflate: stay orthogonal to the axes found before.
            for prev in &axes[..k] {
                let d: f64 = w.iter().zip(prev).map(|(x, y)| x * y).sum();
                for (x, y) in w.iter_mut().zip(prev) {
                    *x -= d * y;
                }
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            v = w.map(|x| x / norm);
        }
        let biggest = v
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(1.0);
        if biggest < 0.0 {
            v = v.map(|x| -x);
        }
        axes[k] = v;
    }
    axes
}

/// Moves `points` (of `ids`) onto `prev` by the rotation or reflection, scale and shift that
/// best match the tracks both hold (least squares).
fn fit_onto(ids: &[i64], points: &mut [[f32; 2]], prev: &Map) {
    let old: HashMap<i64, [f32; 2]> = prev
        .ids
        .iter()
        .copied()
        .zip(prev.points.iter().copied())
        .collect();
    let pairs: Vec<([f64; 2], [f64; 2])> = ids
        .iter()
        .zip(points.iter())
        .filter_map(|(id, p)| {
            let q = old.get(id)?;
            Some(([p[0] as f64, p[1] as f64], [q[0] as f64, q[1] as f64]))
        })
        .collect();
    if pairs.len() < 3 {
        return;
    }
    let n = pairs.len() as f64;
    let (mut mp, mut mq) = ([0.0; 2], [0.0; 2]);
    for (p, q) in &pairs {
        for k in 0..2 {
            mp[k] += p[k] / n;
            mq[k] += q[k] / n;
        }
    }
    // For each handedness, the best rotation angle and how well it fits.
    let fit = |flip: f64| {
        let (mut a, mut b, mut norm) = (0.0, 0.0, 0.0);
        for (p, q) in &pairs {
            let (px, py) = (p[0] - mp[0], flip * (p[1] - mp[1]));
            let (qx, qy) = (q[0] - mq[0], q[1] - mq[1]);
            a += qx * px + qy * py;
            b += qy * px - qx * py;
            norm += px * px + py * py;
        }
        (b.atan2(a), (a * a + b * b).sqrt(), norm)
    };
    let (keep, flipped) = (fit(1.0), fit(-1.0));
    let (flip, (angle, score, norm)) = if flipped.1 > keep.1 {
        (-1.0, flipped)
    } else {
        (1.0, keep)
    };
    if norm <= 0.0 {
        return;
    }
    let scale = score / norm;
    let (sin, cos) = angle.sin_cos();
    for p in points.iter_mut() {
        let (x, y) = (p[0] as f64 - mp[0], flip * (p[1] as f64 - mp[1]));
        *p = [
            (mq[0] + scale * (cos * x - sin * y)) as f32,
            (mq[1] + scale * (sin * x + cos * y)) as f32,
        ];
    }
}

/// The map a new snapshot is fitted onto: the old snapshot's, or the one it was to be fitted
/// onto when it never drew one.
pub type Anchor = Option<Arc<Map>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    fn library(n: i64) -> Library {
        let tracks = (1..=n)
            .map(|id| {
                let mut t = stored(
                    id,
                    Some(60.0 + id as f64 * 7.0 % 90.0),
                    ["C", "G", "D"][id as usize % 3],
                    id % 2 == 0,
                    (id % 5) as f64 * 0.3,
                );
                t.measured.tags.genre = Some(if id % 3 == 0 { "Jazz" } else { "Rock; Pop" }.into());
                t
            })
            .collect();
        Library::new(tracks, &[])
    }

    #[test]
    fn a_grown_library_keeps_its_old_points_in_place() {
        let small = library(40);
        let first = Map::build(&small, None);
        let big = library(44);
        let second = Map::build(&big, Some(&first));
        // The library's scaling moves a little with new tracks; the fit keeps the old points
        // close to where they were, relative to the map's size.
        let span = first
            .points
            .iter()
            .fold(0f32, |m, p| m.max(p[0].abs()).max(p[1].abs()));
        let moved = first
            .points
            .iter()
            .zip(&second.points)
            .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
            .fold(0f32, f32::max);
        assert!(moved < 0.2 * span, "moved {moved} of {span}");
        // A mirrored previous map is matched by a reflection.
        let mirrored = Map {
            ids: first.ids.clone(),
            points: first.points.iter().map(|p| [p[0], -p[1]]).collect(),
        };
        let again = Map::build(&small, Some(&mirrored));
        for (a, b) in again.points.iter().zip(&mirrored.points) {
            assert!(
                (a[0] - b[0]).abs() < 1e-3 * span.max(1.0)
                    && (a[1] - b[1]).abs() < 1e-3 * span.max(1.0)
            );
        }
    }

    #[test]
    fn the_answer_has_its_columns_and_legend() {
        let lib = library(10);
        let map = Map::build(&lib, None);
        let bytes = map.bytes(&lib);
        assert_eq!(&bytes[..8], MAGIC);
        let n = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let l = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        assert_eq!(n, 10);
        assert_eq!(l % 4, 0);
        let legend: serde_json::Value = serde_json::from_slice(&bytes[16..16 + l]).unwrap();
        assert_eq!(legend["genres"], serde_json::json!(["Rock", "Jazz"]));
        assert_eq!(bytes.len(), 16 + l + n * (4 + 2 + 2 + 1 + 1 + 1));
        let genres = &bytes[16 + l + n * 8..16 + l + n * 9];
        assert_eq!(genres[2], 1, "track 3 is jazz");
        assert_eq!(genres[0], 0);
        let xs: Vec<u16> = (0..n)
            .map(|i| u16::from_le_bytes(bytes[16 + l + n * 4 + 2 * i..][..2].try_into().unwrap()))
            .collect();
        assert_eq!(xs.iter().min(), Some(&0));
        assert_eq!(xs.iter().max(), Some(&65535));
    }
}
