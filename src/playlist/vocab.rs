//! The words and orderings every rule method shares: tempo and energy words, the brightness
//! threshold, the `Mixed_Collection` name, and the tempo order with smooth key steps.
//!
//! In: a [`Library`] and raw playlists. Out: names and orderings. Used by [`super::buckets`],
//! [`super::kmeans`] and [`super::finishing`]; it uses only [`super::space`] and the
//! [`Playlist`] type, so those three never import each other for it.

use super::Playlist;
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

/// How many of the next tracks in tempo order [`by_tempo`] may choose from.
const FLOW_WINDOW: usize = 6;

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
