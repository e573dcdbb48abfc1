//! Ordered playlists: `radio` (the nearest tracks to a seed, in smooth order), `path` (from
//! track A to track B, step by step) and `mix` (a DJ set: Camelot-compatible key moves, small
//! tempo steps, an energy curve that rises then falls and the tempo with it).
//!
//! In: a [`Library`], track indices and a length. Out: one playlist, each track with the reason
//! it is there. Every step scans the library once (no index): `length × tracks` distance
//! computations, a few milliseconds for 100,000 tracks.

use std::collections::{HashMap, HashSet};

use super::finishing::artist_cap;
use super::sound::SOUND_WEIGHT;
use super::space::{DIMS, Library, Recordings, SOUND_RANGE, dist2};
use super::taste::{MAX_RISE, MAX_SINK, Taste};
use super::{Playlist, display_name};

/// Tempo within this many BPM of the seed counts as "the same tempo" in an explanation.
const NEAR_BPM: f64 = 6.0;

fn stem(lib: &Library, i: usize) -> String {
    display_name(lib, i).replace(' ', "_")
}

/// Why `b` follows or resembles `a`: tempo, key and timbre, in words.
pub fn relation(lib: &Library, a: usize, b: usize, who: &str) -> String {
    let mut parts = Vec::new();
    if let (Some(x), Some(y)) = (lib.bpm(a), lib.bpm(b)) {
        let d = y - x;
        parts.push(if d.abs() <= NEAR_BPM {
            format!("tempo within {NEAR_BPM:.0} BPM of {who} ({y:.0} vs {x:.0})")
        } else {
            format!("tempo {d:+.0} BPM from {who}")
        });
    }
    if let (Some(x), Some(y)) = (lib.camelot[a], lib.camelot[b]) {
        parts.push(if x.compatible(y) {
            format!("key {y} compatible with {who}'s {x}")
        } else {
            format!("key {y} not compatible with {who}'s {x}")
        });
    }
    parts.push(sound(lib, a, b));
    parts.join("; ")
}

/// Half the typical distance between two random tracks' sounds (each has mean squared length
/// `SOUND_WEIGHT²` around the library mean): closer than this sounds alike.
const SIMILAR_SOUND: f32 = SOUND_WEIGHT * std::f32::consts::SQRT_2 / 2.0;
/// The same for the three DSP timbre dimensions of fast-mode tracks.
const SIMILAR_TIMBRE: f32 = 0.25;

/// How far apart `a` and `b` sound, and the distance under which they sound alike: by the
/// embedding when both have one, else by the DSP timbre dimensions (centroid, onset rate, zcr).
fn sound_distance(lib: &Library, a: usize, b: usize) -> (f32, f32) {
    let (x, y) = (&lib.scaled[a], &lib.scaled[b]);
    let over = |dims: &mut dyn Iterator<Item = usize>| {
        dims.map(|d| (x[d] - y[d]) * (x[d] - y[d]))
            .sum::<f32>()
            .sqrt()
    };
    if lib.sound[a].is_some() && lib.sound[b].is_some() {
        (over(&mut SOUND_RANGE.clone()), SIMILAR_SOUND)
    } else {
        (over(&mut [1, 4, 5].into_iter()), SIMILAR_TIMBRE)
    }
}

/// The sound term of the mix's cost: the DSP timbre distance, or the embedding distance on
/// the same scale (relative to what counts as alike).
fn sound_cost(lib: &Library, a: usize, b: usize) -> f64 {
    let (d, limit) = sound_distance(lib, a, b);
    (d * SIMILAR_TIMBRE / limit) as f64
}

/// How `b` sounds next to `a`, in words, with `b`'s top tags when it has them.
fn sound(lib: &Library, a: usize, b: usize) -> String {
    let (d, limit) = sound_distance(lib, a, b);
    let like = if d < limit { "similar" } else { "different" };
    match (&lib.sound[a], &lib.sound[b]) {
        (Some(_), Some(s)) => {
            let tags: Vec<&str> = s.tag_names().collect();
            format!("{like} sound: {} (distance {d:.2})", tags.join(", "))
        }
        _ => format!("{like} timbre (distance {d:.2})"),
    }
}

/// Tracks per artist in a playlist being built, against the default per-artist cap of
/// [`artist_cap`]: the ordered methods choose within it, so the finishing rules need not cut.
struct ArtistShare {
    cap: usize,
    count: HashMap<u32, usize>,
}

impl ArtistShare {
    fn new(length: usize) -> Self {
        ArtistShare {
            cap: artist_cap(length, None),
            count: HashMap::new(),
        }
    }

    fn full(&self, lib: &Library, i: usize) -> bool {
        lib.artist[i].is_some_and(|a| self.count.get(&a).copied().unwrap_or(0) >= self.cap)
    }

    fn add(&mut self, lib: &Library, i: usize) {
        if let Some(a) = lib.artist[i] {
            *self.count.entry(a).or_insert(0) += 1;
        }
    }
}

/// The `want` indices nearest to `point`, nearest first, excluding `skip`, repeats of one
/// recording, and tracks of an artist who already has the playlist's share (the default
/// per-artist cap, counting the `skip` tracks): an album that sounds alike must not fill a
/// radio that the finishing rules would then cut short.
fn nearest(lib: &Library, point: &[f32; DIMS], want: usize, skip: &HashSet<usize>) -> Vec<usize> {
    let mut all: Vec<(f32, usize)> = (0..lib.len())
        .filter(|i| !skip.contains(i))
        .map(|i| (dist2(point, &lib.scaled[i]), i))
        .collect();
    let order = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let mut recordings = Recordings::default();
    let mut artists = ArtistShare::new(want + skip.len());
    for &i in skip {
        recordings.insert(lib, i);
        artists.add(lib, i);
    }
    let mut out = Vec::with_capacity(want);
    // Sort only the head of the list; look further (4× each time) when skipped tracks leave
    // it short.
    let mut start = 0;
    let mut keep = want * 4 + 8;
    while out.len() < want && start < all.len() {
        let end = keep.min(all.len());
        let rest = &mut all[start..];
        if end - start < rest.len() {
            rest.select_nth_unstable_by(end - start, order);
        }
        rest[..end - start].sort_by(order);
        for &(_, i) in &all[start..end] {
            if out.len() == want {
                break;
            }
            if artists.full(lib, i) || recordings.contains(lib, i) {
                continue;
            }
            recordings.insert(lib, i);
            artists.add(lib, i);
            out.push(i);
        }
        start = end;
        keep *= 4;
    }
    out
}

/// `radio`: the seed, then the `length - 1` tracks nearest to it, each next track the nearest
/// to the one before (so the first after the seed is its nearest neighbour).
pub fn radio(lib: &Library, seed: usize, length: usize, taste: &Taste<usize>) -> Playlist {
    let skip = HashSet::from([seed]);
    let want = length.saturating_sub(1);
    // Sunk tracks leave room for the next ones: look a little further when there is a taste.
    let extra = if taste.is_empty() {
        0
    } else {
        MAX_SINK as usize + 1
    };
    let mut chosen = taste.rerank(nearest(lib, &lib.scaled[seed], want + extra, &skip));
    chosen.truncate(want);
    let rank = |i: usize| chosen.iter().position(|&c| c == i).map_or(0, |r| r + 1);
    let mut p = Playlist::new(
        format!("Radio_{}", stem(lib, seed)),
        format!(
            "the {} tracks nearest to {}, in smooth order",
            chosen.len(),
            lib.tracks[seed].path
        ),
    );
    p.push(seed, "the seed");
    let mut left = chosen.clone();
    let mut at = seed;
    while !left.is_empty() {
        // A track that sank comes no earlier than its place in the ranking.
        let placed = p.entries.len() - 1;
        let held = |i: usize| taste.places(&i) > 0.0 && rank(i) > placed + 1;
        let all_held = left.iter().all(|&i| held(i));
        let (k, _) = left
            .iter()
            .enumerate()
            .filter(|&(_, &i)| all_held || !held(i))
            .map(|(k, &i)| {
                let skipped = taste.after.get(&(at, i)).copied().unwrap_or(0);
                (k, lib.dist2(at, i) * (1.0 + skipped as f32))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .unwrap_or((0, 0.0));
        let next = left.swap_remove(k);
        let mut why = format!(
            "neighbour {} of the seed (distance {:.2}): {}",
            rank(next),
            lib.dist2(seed, next).sqrt(),
            relation(lib, seed, next, "the seed")
        );
        if let Some(n) = taste.tracks.get(&next) {
            why.push_str("; ");
            why.push_str(&n.why);
        }
        p.push(next, why);
        at = next;
    }
    p
}

/// How far along from `a` to `b` a point lies (0 at A, 1 at B).
fn progress(a: &[f32; DIMS], b: &[f32; DIMS], x: &[f32; DIMS]) -> f32 {
    let (mut dot, mut len) = (0.0, 0.0);
    for d in 0..DIMS {
        dot += (x[d] - a[d]) * (b[d] - a[d]);
        len += (b[d] - a[d]) * (b[d] - a[d]);
    }
    if len > 0.0 { dot / len } else { 0.0 }
}

/// `path`: `length` tracks from `from` to `to`: each step takes the unused track nearest to
/// the next evenly spaced waypoint on the line from A to B, where stepping back behind the
/// previous track's progress costs extra; no track or recording twice.
pub fn path(
    lib: &Library,
    from: usize,
    to: usize,
    length: usize,
    taste: &Taste<usize>,
) -> Playlist {
    let (a, b) = (lib.scaled[from], lib.scaled[to]);
    let steps = length.max(2) - 1;
    let mut p = Playlist::new(
        format!("Path_{}_to_{}", stem(lib, from), stem(lib, to)),
        format!(
            "{} steps from {} to {}",
            steps, lib.tracks[from].path, lib.tracks[to].path
        ),
    );
    p.push(from, "the start (A)");
    let mut used: HashSet<usize> = HashSet::from([from, to]);
    let mut recordings = Recordings::default();
    let mut artists = ArtistShare::new(steps + 1);
    for end in [from, to] {
        recordings.insert(lib, end);
        artists.add(lib, end);
    }
    let mut last_progress = 0.0f32;
    let span2 = dist2(&a, &b);
    for s in 1..steps {
        let t = s as f32 / steps as f32;
        let mut way = [0f32; DIMS];
        for d in 0..DIMS {
            way[d] = a[d] + (b[d] - a[d]) * t;
        }
        let mut best: Option<(f32, f32, usize)> = None;
        for i in 0..lib.len() {
            // Stepping back (or past B) costs as much again as the distance it goes back.
            let pr = progress(&a, &b, &lib.scaled[i]);
            let back = (last_progress - pr).max(0.0) + (pr - 1.0).max(0.0);
            let d = dist2(&way, &lib.scaled[i]);
            // A sunk track costs up to twice as much, a risen one down to half.
            let nudge = taste.places(&i);
            let liking = 1.0
                + nudge
                    / if nudge > 0.0 {
                        MAX_SINK
                    } else {
                        2.0 * MAX_RISE
                    };
            let cost = (d + 4.0 * back * back * span2) * liking;
            if best.is_none_or(|(bc, _, _)| cost < bc)
                && !used.contains(&i)
                && !recordings.contains(lib, i)
                && !artists.full(lib, i)
            {
                best = Some((cost, d, i));
            }
        }
        let Some((_, d, i)) = best else { break };
        used.insert(i);
        recordings.insert(lib, i);
        artists.add(lib, i);
        last_progress = progress(&a, &b, &lib.scaled[i]);
        let mut why = format!(
            "step {s} of {steps}: {:.0}% of the way from A to B (distance to the waypoint {:.2})",
            last_progress * 100.0,
            d.sqrt()
        );
        if let Some(n) = taste.tracks.get(&i) {
            why.push_str("; ");
            why.push_str(&n.why);
        }
        p.push(i, why);
    }
    p.push(to, "the end (B)");
    p
}

/// Where in a mix (0..1 through the set) its energy peaks.
const PEAK: f32 = 0.65;

/// In a mix, a tempo step against the way the energy curve goes (down while it rises, up while
/// it falls) costs this many times a step with it: the tempo climbs with the energy and eases
/// with it instead of wandering, so consecutive steps stay small against the set's spread.
const AGAINST_THE_CURVE: f64 = 3.0;

/// The energy a mix aims for at `t` (0..1 through the set): rising to the peak at two thirds,
/// then easing down.
pub fn energy_curve(t: f32, low: f32, high: f32) -> f32 {
    let shape = if t < PEAK {
        t / PEAK
    } else {
        (1.0 - t) / (1.0 - PEAK)
    };
    low + (high - low) * shape.clamp(0.0, 1.0)
}

fn quantile(v: &[f32], q: f32) -> f32 {
    let mut s: Vec<f32> = v.to_vec();
    if s.is_empty() {
        return 0.5;
    }
    let k = ((s.len() - 1) as f32 * q) as usize;
    *s.select_nth_unstable_by(k, f32::total_cmp).1
}

/// The energy a mix asked for on the page goes from `start` to `end` in a straight line; both
/// are 0..1 of the library's energy range (its 10th to 90th percentile).
#[derive(Debug, Clone, Copy)]
pub struct Ramp {
    pub start: f32,
    pub end: f32,
}

/// `mix`: `length` tracks with a tempo, chosen one after another: a compatible key, a small
/// tempo step (with the curve: up while the energy rises, down while it falls) and the energy
/// the curve asks for weigh most; then timbre. The curve rises to a peak at two thirds and
/// eases down ([`energy_curve`]), or follows `ramp`.
pub fn mix(lib: &Library, length: usize, ramp: Option<Ramp>) -> Playlist {
    let mut p = match ramp {
        None => Playlist::new(
            "DJ_Mix",
            "a DJ set: Camelot-compatible key moves, small tempo steps, energy rising then falling",
        ),
        Some(r) => Playlist::new(
            "DJ_Mix",
            format!(
                "a DJ set: Camelot-compatible key moves, small tempo steps, energy from {:.0} % \
                 to {:.0} % of the library's range",
                r.start * 100.0,
                r.end * 100.0
            ),
        ),
    };
    let with_bpm: Vec<usize> = (0..lib.len()).filter(|&i| lib.bpm(i).is_some()).collect();
    if with_bpm.is_empty() || length == 0 {
        return p;
    }
    let energies: Vec<f32> = with_bpm.iter().map(|&i| lib.energy[i]).collect();
    let (low, high) = (quantile(&energies, 0.1), quantile(&energies, 0.9));
    let bpms: Vec<f32> = with_bpm
        .iter()
        .filter_map(|&i| lib.bpm(i))
        .map(|b| b as f32)
        .collect();
    let mid_bpm = quantile(&bpms, 0.5) as f64;
    let length = length.min(with_bpm.len());
    let t = |k: usize| k as f32 / (length.max(2) - 1) as f32;
    let want = |t: f32| match ramp {
        None => energy_curve(t, low, high),
        Some(r) => {
            let level = r.start + (r.end - r.start) * t;
            low + (high - low) * level.clamp(0.0, 1.0)
        }
    };
    let rising = |t: f32| match ramp {
        None => t <= PEAK,
        Some(r) => r.end >= r.start,
    };
    let opening = want(0.0);
    let start = with_bpm
        .iter()
        .copied()
        .min_by(|&a, &b| {
            let cost = |i: usize| {
                (lib.energy[i] - opening).abs() as f64
                    + (lib.bpm(i).unwrap_or(mid_bpm) - mid_bpm).abs() / 50.0
            };
            cost(a).total_cmp(&cost(b)).then(a.cmp(&b))
        })
        .unwrap_or(with_bpm[0]);
    p.push(
        start,
        format!(
            "opens the set: energy {:.2} near the middle tempo",
            lib.energy[start]
        ),
    );
    let mut used: HashSet<usize> = HashSet::from([start]);
    let mut recordings = Recordings::default();
    recordings.insert(lib, start);
    let mut at = start;
    for k in 1..length {
        let want = want(t(k));
        let rising = rising(t(k));
        let at_bpm = lib.bpm(at).unwrap_or(mid_bpm);
        let mut best: Option<(f64, usize)> = None;
        for &i in &with_bpm {
            let key = match (lib.camelot[at], lib.camelot[i]) {
                (Some(x), Some(y)) if x.compatible(y) => 0.0,
                (Some(_), Some(_)) => 2.0,
                _ => 1.0,
            };
            let same_artist = lib.artist[i].is_some() && lib.artist[i] == lib.artist[at];
            let step = lib.bpm(i).unwrap_or(mid_bpm) - at_bpm;
            let against = if rising { step < 0.0 } else { step > 0.0 };
            let cost = step.abs() / 6.0 * if against { AGAINST_THE_CURVE } else { 1.0 }
                + key
                + 4.0 * (lib.energy[i] - want).abs() as f64
                + 0.3 * sound_cost(lib, at, i)
                + if same_artist { 3.0 } else { 0.0 };
            // The set look-ups only for a track that would win.
            if best.is_none_or(|(c, _)| cost < c)
                && !used.contains(&i)
                && !recordings.contains(lib, i)
            {
                best = Some((cost, i));
            }
        }
        let Some((_, next)) = best else { break };
        p.push(
            next,
            format!(
                "{}; energy {:.2} (the curve asks {want:.2}, {})",
                relation(lib, at, next, "the previous track"),
                lib.energy[next],
                if rising { "rising" } else { "falling" }
            ),
        );
        used.insert(next);
        recordings.insert(lib, next);
        at = next;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    /// Tracks along a tempo line 60..=155 BPM (step 5), every key round the wheel.
    fn line() -> Library {
        let keys = [
            "C", "G", "D", "A", "E", "B", "F#", "C#", "Ab", "Eb", "Bb", "F",
        ];
        let tracks = (0..20)
            .map(|i| {
                let mut t = stored(
                    i + 1,
                    Some(60.0 + 5.0 * i as f64),
                    keys[(i as usize * 5) % 12],
                    false,
                    0.5 + i as f64 * 0.1,
                );
                t.measured.spectral_centroid = Some(1000.0 + 100.0 * i as f64);
                t
            })
            .collect();
        Library::new(tracks, &[])
    }

    #[test]
    fn radio_starts_with_the_seed_then_its_nearest_neighbour() {
        let lib = line();
        let p = radio(&lib, 10, 5, &Taste::default());
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        assert_eq!(order[0], 10);
        assert_eq!(order.len(), 5);
        // Neighbours are 9 and 11 (equally near: the lower index wins ties), then 8/12.
        assert!(order[1] == 9 || order[1] == 11, "{order:?}");
        let mut rest = order[1..].to_vec();
        rest.sort();
        assert_eq!(rest, vec![8, 9, 11, 12]);
        assert!(
            p.entries[1].why.contains("neighbour 1 of the seed"),
            "{}",
            p.entries[1].why
        );
        assert!(
            p.entries[1].why.contains("tempo within 6 BPM"),
            "{}",
            p.entries[1].why
        );
    }

    #[test]
    fn skipped_tracks_sink_in_the_radio_but_stay_in_it() {
        let lib = line();
        let plain = radio(&lib, 10, 12, &Taste::default());
        let top = plain.entries[1].track;
        let mut taste = Taste::default();
        taste.tracks.insert(
            top,
            crate::playlist::taste::Nudge::of(5, Some(20.0), 0, false, None).unwrap(),
        );
        let learnt = radio(&lib, 10, 12, &taste);
        let order: Vec<usize> = learnt.entries.iter().map(|e| e.track).collect();
        let at = order
            .iter()
            .position(|&t| t == top)
            .expect("still in the radio");
        assert!(at > 5, "{order:?}");
        assert!(
            learnt.entries[at]
                .why
                .contains("you usually skip this after 0:20")
        );
        // A skipped step: after the seed, its usual successor is not taken first.
        let mut step = Taste::default();
        step.after.insert((10, top), 3);
        let other = radio(&lib, 10, 12, &step);
        assert_ne!(other.entries[1].track, top);
    }

    #[test]
    fn path_moves_from_a_to_b_without_repeats() {
        let lib = line();
        let p = path(&lib, 2, 17, 8, &Taste::default());
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        assert_eq!(order.first(), Some(&2));
        assert_eq!(order.last(), Some(&17));
        assert_eq!(order.len(), 8);
        let unique: HashSet<_> = order.iter().collect();
        assert_eq!(unique.len(), order.len(), "{order:?}");
        // On a line, each step moves forward.
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn mix_prefers_compatible_keys_and_small_steps_and_its_energy_rises_then_falls() {
        assert!(energy_curve(0.0, 0.2, 0.8) < energy_curve(0.5, 0.2, 0.8));
        assert!((energy_curve(0.65, 0.2, 0.8) - 0.8).abs() < 1e-6);
        assert!(energy_curve(1.0, 0.2, 0.8) < energy_curve(0.8, 0.2, 0.8));
        // A library where every tempo exists in a compatible and an incompatible key.
        let mut tracks = Vec::new();
        for i in 0..30 {
            let bpm = 90.0 + (i / 2) as f64 * 3.0;
            let key = if i % 2 == 0 {
                ["C", "G", "D", "A", "E", "B"][(i / 2) % 6]
            } else {
                "F#"
            };
            tracks.push(stored(
                i as i64 + 1,
                Some(bpm),
                key,
                false,
                0.5 + (i % 10) as f64 * 0.15,
            ));
        }
        let lib = Library::new(tracks, &[]);
        let p = mix(&lib, 12, None);
        assert_eq!(p.entries.len(), 12);
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        let compatible = order
            .windows(2)
            .filter(|w| match (lib.camelot[w[0]], lib.camelot[w[1]]) {
                (Some(a), Some(b)) => a.compatible(b),
                _ => false,
            })
            .count();
        assert!(compatible >= 9, "{compatible} of 11 compatible: {order:?}");
        let steps: Vec<f64> = order
            .windows(2)
            .filter_map(|w| Some((lib.bpm(w[1])? - lib.bpm(w[0])?).abs()))
            .collect();
        let mut sorted = steps.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(sorted[sorted.len() / 2] <= 6.0, "{steps:?}");
    }
}
