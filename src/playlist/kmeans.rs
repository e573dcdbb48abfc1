//! The original's `kmeans`: k-means++ (a fixed seed, so the same library gives the same
//! playlists) on the scaled, weighted features of [`super::space`], then Lloyd iterations.
//!
//! In: a [`Library`] and k (`--num_playlists`). Out: one raw playlist per cluster, named from
//! the cluster's median tempo, energy and brightness (`_VariationN` when two clusters earn the
//! same name), ordered by tempo.

use std::collections::HashMap;

use super::Playlist;
use super::rng::Rng;
use super::space::{DIMS, Library, dist2};
use super::vocab::{brightness_word, by_tempo, energy_word, median, tempo_word};

const MAX_ITERATIONS: usize = 50;

/// Cluster index of every point and the centres.
pub fn kmeans(points: &[[f32; DIMS]], k: usize, seed: u64) -> (Vec<usize>, Vec<[f32; DIMS]>) {
    let n = points.len();
    let k = k.clamp(1, n.max(1));
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut rng = Rng::new(seed);
    let mut centres = Vec::with_capacity(k);
    centres.push(points[(rng.next_u64() % n as u64) as usize]);
    let mut d2: Vec<f32> = points.iter().map(|p| dist2(p, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = d2.iter().map(|&d| d as f64).sum();
        if total <= 0.0 {
            break; // fewer distinct points than k
        }
        let mut target = rng.unit() * total;
        let mut chosen = n - 1;
        for (i, &d) in d2.iter().enumerate() {
            target -= d as f64;
            if target < 0.0 {
                chosen = i;
                break;
            }
        }
        let c = points[chosen];
        centres.push(c);
        for (d, p) in d2.iter_mut().zip(points) {
            *d = d.min(dist2(p, &c));
        }
    }
    let k = centres.len();
    let mut assign = vec![usize::MAX; n];
    let mut sums = vec![[0f64; DIMS]; k];
    let mut counts = vec![0usize; k];
    for _ in 0..MAX_ITERATIONS {
        let mut changed = false;
        for (a, p) in assign.iter_mut().zip(points) {
            let best = nearest(&centres, p);
            if *a != best {
                *a = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        sums.iter_mut().for_each(|s| *s = [0.0; DIMS]);
        counts.iter_mut().for_each(|c| *c = 0);
        for (&a, p) in assign.iter().zip(points) {
            counts[a] += 1;
            for d in 0..DIMS {
                sums[a][d] += p[d] as f64;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for d in 0..DIMS {
                    centres[c][d] = (sums[c][d] / counts[c] as f64) as f32;
                }
            }
        }
    }
    (assign, centres)
}

fn nearest(centres: &[[f32; DIMS]], p: &[f32; DIMS]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (c, centre) in centres.iter().enumerate() {
        let d = dist2(p, centre);
        if d < best.0 {
            best = (d, c);
        }
    }
    best.1
}

/// `kmeans`: `k` clusters of the library, named from their medians.
pub fn clusters(lib: &Library, k: usize) -> Vec<Playlist> {
    let (assign, centres) = kmeans(&lib.scaled, k, 0x005E_ED0F_91A7);
    let mut members = vec![Vec::new(); centres.len()];
    for (i, &c) in assign.iter().enumerate() {
        members[c].push(i);
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (c, tracks) in members.into_iter().enumerate() {
        if tracks.is_empty() {
            continue;
        }
        let m = |f: fn(&crate::features::Record) -> Option<f64>| {
            median(
                tracks
                    .iter()
                    .filter_map(|&i| f(&lib.tracks[i].measured))
                    .collect(),
            )
        };
        let bpm = m(|m| m.bpm);
        let dance = m(|m| m.danceability);
        let centroid = m(|m| m.spectral_centroid);
        let mut name = [
            bpm.map(tempo_word),
            dance.map(energy_word),
            centroid.map(brightness_word),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("_");
        if name.is_empty() {
            name = "Cluster".into();
        }
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            name = format!("{name}_Variation{n}");
        }
        let rule = format!(
            "k-means cluster {} of {}: median {} BPM, danceability {}, centroid {} Hz",
            c + 1,
            centres.len(),
            bpm.map_or("-".into(), |v| format!("{v:.0}")),
            dance.map_or("-".into(), |v| format!("{v:.2}")),
            centroid.map_or("-".into(), |v| format!("{v:.0}")),
        );
        let mut p = Playlist::new(name, rule);
        for i in tracks {
            let d = dist2(&lib.scaled[i], &centres[c]).sqrt();
            p.push(
                i,
                format!(
                    "nearest cluster centre {} (distance {d:.2}); {} BPM",
                    c + 1,
                    lib.bpm(i).map_or("-".into(), |v| format!("{v:.0}"))
                ),
            );
        }
        by_tempo(lib, &mut p);
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    #[test]
    fn two_obvious_groups_are_found_and_named_from_their_medians() {
        let mut tracks = Vec::new();
        for i in 0..10 {
            let mut t = stored(i + 1, Some(70.0 + i as f64 * 0.5), "C", false, 0.5);
            t.measured.spectral_centroid = Some(800.0);
            tracks.push(t);
        }
        for i in 0..10 {
            let mut t = stored(i + 11, Some(150.0 + i as f64 * 0.5), "C", false, 2.0);
            t.measured.spectral_centroid = Some(3500.0);
            tracks.push(t);
        }
        let lib = Library::new(tracks, &[]);
        let lists = clusters(&lib, 2);
        let mut got: Vec<(String, Vec<usize>)> = lists
            .iter()
            .map(|p| (p.name.clone(), p.entries.iter().map(|e| e.track).collect()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("Slow_Chill_Warm".to_string(), (0..10).collect()),
                ("VeryFast_Intense_Bright".to_string(), (10..20).collect()),
            ]
        );
        // Deterministic: the same input gives the same playlists.
        assert_eq!(clusters(&lib, 2), lists);
        // Three clusters over two groups: one group splits and a name repeats.
        let three = clusters(&lib, 3);
        assert_eq!(three.len(), 3);
        assert!(
            three.iter().any(|p| p.name.ends_with("_Variation2")),
            "{:?}",
            three.iter().map(|p| &p.name).collect::<Vec<_>>()
        );
    }
}
