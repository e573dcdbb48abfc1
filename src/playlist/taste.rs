//! What one listener's habits do to the radio, path and similar lists: tracks they skip sink,
//! tracks they replay, star or rate high rise, and a step they skip (B right after A) costs
//! more. Bounded and explainable: a track moves at most [`MAX_SINK`] places down or
//! [`MAX_RISE`] up in a ranking, never out of the library, and says why.
//!
//! In: per track, its skips (and when into the song), plays, star and rating; per pair, the
//! skips of the second right after the first. Out: [`Taste`], keyed by whatever names a track
//! (the server's track ids, then [`Taste::map`] to library indices for [`super::flow`]).

use std::collections::HashMap;
use std::hash::Hash;

/// Places one skip moves a track down: what a listener does now weighs more than a star or
/// a rating given once.
const SKIP_PLACES: f32 = 2.0;
/// Places one completed play moves it up (counted up to [`PLAYS_COUNTED`]).
const PLAY_PLACES: f32 = 0.5;
const PLAYS_COUNTED: u32 = 4;
/// Places a star moves it up; a rating moves it half a place per star away from 3.
const STAR_PLACES: f32 = 1.0;
const RATING_PLACES: f32 = 0.5;
pub const MAX_SINK: f32 = 15.0;
pub const MAX_RISE: f32 = 4.0;

/// How far a track moves in a ranking (positive: down), and why, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Nudge {
    pub places: f32,
    pub why: String,
}

/// `m:ss`.
fn clock(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

impl Nudge {
    /// The nudge of a track's marks, if it moves at all.
    pub fn of(
        skips: u32,
        skip_after_s: Option<f64>,
        plays: u32,
        starred: bool,
        rating: Option<u8>,
    ) -> Option<Nudge> {
        let places = (SKIP_PLACES * skips as f32
            - PLAY_PLACES * plays.min(PLAYS_COUNTED) as f32
            - if starred { STAR_PLACES } else { 0.0 }
            - rating.map_or(0.0, |r| (f32::from(r) - 3.0) * RATING_PLACES))
        .clamp(-MAX_RISE, MAX_SINK);
        if places.abs() < 0.5 {
            return None;
        }
        let mut reasons = Vec::new();
        if skips > 0 {
            reasons.push(match skip_after_s {
                Some(s) => format!(
                    "you usually skip this after {} ({skips} skip{})",
                    clock(s),
                    if skips == 1 { "" } else { "s" }
                ),
                None => format!("you skipped this {skips} times"),
            });
        }
        if plays > 0 {
            reasons.push(format!(
                "you played it {plays} time{}",
                if plays == 1 { "" } else { "s" }
            ));
        }
        if starred {
            reasons.push("you starred it".into());
        }
        if let Some(r) = rating {
            reasons.push(format!("you rated it {r}/5"));
        }
        let moved = places.round().abs();
        Some(Nudge {
            places,
            why: format!(
                "{}: {moved:.0} place{} {}",
                reasons.join(", "),
                if moved == 1.0 { "" } else { "s" },
                if places > 0.0 { "down" } else { "up" }
            ),
        })
    }
}

/// One listener's nudges.
#[derive(Debug, Clone, PartialEq)]
pub struct Taste<K: Eq + Hash> {
    pub tracks: HashMap<K, Nudge>,
    /// `(from, to)`: how often `to` was skipped right after `from`.
    pub after: HashMap<(K, K), u32>,
}

impl<K: Eq + Hash> Default for Taste<K> {
    fn default() -> Self {
        Taste {
            tracks: HashMap::new(),
            after: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> Taste<K> {
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.after.is_empty()
    }

    /// The same taste keyed by `f` of each key (keys `f` does not know are left out).
    pub fn map<J: Eq + Hash>(&self, f: impl Fn(&K) -> Option<J>) -> Taste<J> {
        Taste {
            tracks: self
                .tracks
                .iter()
                .filter_map(|(k, n)| Some((f(k)?, n.clone())))
                .collect(),
            after: self
                .after
                .iter()
                .filter_map(|((a, b), &n)| Some(((f(a)?, f(b)?), n)))
                .collect(),
        }
    }

    /// Places `k` moves down (negative: up).
    pub fn places(&self, k: &K) -> f32 {
        self.tracks.get(k).map_or(0.0, |n| n.places)
    }

    /// `ranked` (best first) reordered by each one's place plus its nudge; ties keep the
    /// original order. Returns the new order.
    pub fn rerank(&self, ranked: Vec<K>) -> Vec<K> {
        if self.tracks.is_empty() {
            return ranked;
        }
        let mut keyed: Vec<(f32, usize, K)> = ranked
            .into_iter()
            .enumerate()
            .map(|(pos, k)| (pos as f32 + self.places(&k), pos, k))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        keyed.into_iter().map(|(_, _, k)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_sink_and_plays_and_stars_lift_within_bounds() {
        assert_eq!(Nudge::of(0, None, 0, false, None), None);
        assert_eq!(Nudge::of(0, None, 0, false, Some(3)), None);
        let five = Nudge::of(5, Some(12.4), 0, false, None).unwrap();
        assert_eq!(five.places, 10.0);
        assert_eq!(
            five.why,
            "you usually skip this after 0:12 (5 skips): 10 places down"
        );
        assert_eq!(
            Nudge::of(100, Some(3.0), 0, false, None).unwrap().places,
            MAX_SINK
        );
        let loved = Nudge::of(0, None, 40, true, Some(5)).unwrap();
        assert_eq!(loved.places, -MAX_RISE);
        assert_eq!(
            Nudge::of(0, None, 40, true, Some(5)).unwrap().places,
            Nudge::of(0, None, 4, true, Some(5)).unwrap().places,
            "plays count up to a bound"
        );
        assert!(loved.why.contains("you starred it"), "{}", loved.why);
        // A replayed song that is sometimes skipped sinks less.
        assert!(Nudge::of(5, None, 4, false, None).unwrap().places < five.places);
    }

    #[test]
    fn rerank_moves_by_places_and_keeps_the_rest() {
        let mut t: Taste<u32> = Taste::default();
        t.tracks
            .insert(0, Nudge::of(5, None, 0, false, None).unwrap());
        t.tracks
            .insert(9, Nudge::of(0, None, 0, true, None).unwrap());
        let order = t.rerank((0..10).collect());
        // 0 sinks to 10, 9 rises to 8 (after 8, which was there first).
        assert_eq!(order, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
        assert_eq!(&order[..3], &[1, 2, 3]);
        let mapped = t.map(|&k| (k < 5).then_some(k as usize * 10));
        assert_eq!(mapped.tracks.len(), 1);
        assert!(mapped.tracks.contains_key(&0));
    }
}
