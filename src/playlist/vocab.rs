//! The words and orderings every rule method shares: tempo, energy and brightness words, the
//! `Mixed_Collection` name, the tempo order with smooth key steps, and the one measure of how
//! smoothly a list moves in tempo (consecutive |ΔBPM|: their median, against a shuffle's).
//!
//! In: a [`Library`] and raw playlists. Out: names, orderings and tempo steps. Used by
//! [`super::buckets`], [`super::kmeans`], [`super::finishing`], the tests of every ordered
//! method and the playlist benchmark; it uses only [`super::space`], [`super::rng`] and the
//! [`Playlist`] type, so those modules never import each other for it.

use super::Playlist;
use super::rng::Rng;
use super::space::Library;

/// What small lists are poured into by [`super::finishing::finish`].
pub const MIXED: &str = "Mixed_Collection";

pub fn tempo_word(bpm: f64) -> &'static str {
    match bpm {
        b if b < 80.0 => "Slow",
        b if b < 105.0 => "Medium",
        b if b < 125.0 => "Upbeat",
        b if b < 145.0 => "Fast",
        _ => "VeryFast",
    }
}

/// Energy from danceability. Our danceability runs 0.55..1.1 over the corpus's game and
/// film music (0.6 calm orchestral, 1.0 electronic); dance pop reaches 1.5 and more.
pub fn energy_word(danceability: f64) -> &'static str {
    match danceability {
        d if d < 0.6 => "Chill",
        d if d < 0.75 => "Mellow",
        d if d < 0.9 => "Groovy",
        d if d < 1.2 => "Energetic",
        _ => "Intense",
    }
}

/// Spectral centroid at or above this is `Bright`, below `Warm` (the corpus's median is
/// near 1,200 Hz).
pub const BRIGHT_HZ: f64 = 1500.0;

pub fn brightness_word(centroid_hz: f64) -> &'static str {
    if centroid_hz >= BRIGHT_HZ {
        "Bright"
    } else {
        "Warm"
    }
}

/// The middle value (the upper one of an even count), `None` for no values.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// |ΔBPM| between each two consecutive `tracks` that both have a tempo: what a listener hears
/// as the list's tempo steps.
pub fn tempo_steps<'a>(lib: &'a Library, tracks: &'a [usize]) -> impl Iterator<Item = f64> + 'a {
    tracks
        .windows(2)
        .filter_map(|w| Some((lib.bpm(w[1])? - lib.bpm(w[0])?).abs()))
}

/// How many of the next tracks in tempo order [`by_tempo`] may choose from.
const FLOW_WINDOW: usize = 6;

/// How smoothly `lists` move in tempo, against chance: the median of their [`tempo_steps`],
/// and the same with each list shuffled by `rng`. `None` where there is no step.
pub fn tempo_flow(lib: &Library, lists: &[Playlist], rng: &mut Rng) -> (Option<f64>, Option<f64>) {
    let (mut ours, mut shuffled) = (Vec::new(), Vec::new());
    let mut order = Vec::new();
    for p in lists {
        order.clear();
        order.extend(p.entries.iter().map(|e| e.track));
        ours.extend(tempo_steps(lib, &order));
        rng.shuffle(&mut order);
        shuffled.extend(tempo_steps(lib, &order));
    }
    (median(ours), median(shuffled))
}

/// Orders a list by tempo (then id), then lets each next track be the best of the following
/// few: a small tempo step and a Camelot-compatible key. The tempo still climbs through the
/// list; keys move smoothly where the window allows.
pub fn by_tempo(lib: &Library, p: &mut Playlist) {
    p.entries.sort_by(|a, b| {
        let ka = (lib.bpm(a.track).unwrap_or(0.0), lib.tracks[a.track].id);
        let kb = (lib.bpm(b.track).unwrap_or(0.0), lib.tracks[b.track].id);
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
    });
    let n = p.entries.len();
    for i in 1..n {
        let prev = p.entries[i - 1].track;
        let cost = |j: usize| {
            let t = p.entries[j].track;
            let step = match (lib.bpm(prev), lib.bpm(t)) {
                (Some(a), Some(b)) => (a - b).abs() / 4.0,
                _ => 0.0,
            };
            let key = match (lib.camelot[prev], lib.camelot[t]) {
                (Some(a), Some(b)) if a.compatible(b) => 0.0,
                (Some(_), Some(_)) => 1.0,
                _ => 0.5,
            };
            step + key
        };
        let best = (i..(i + FLOW_WINDOW).min(n))
            .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
            .unwrap_or(i);
        p.entries[i..=best].rotate_right(1);
    }
}
