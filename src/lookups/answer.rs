//! The vocabulary the look-up clients share: a [`Query`] (artist, title, and the recording
//! id or ISRC when the tags hold one) and its [`Outcome`]: [`Found`] (genres, year, sometimes
//! a BPM) or not known; and turning a service's folksonomy tags into genres and a BPM.
//!
//! In: what the tags say of a recording, a service's tags and dates. Out: queries and
//! answers. Knows nothing of HTTP or the database.

use serde::{Deserialize, Serialize};

/// What a look-up asks about one recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub artist: String,
    pub title: String,
    /// A MusicBrainz recording id (from the tags, or found by MusicBrainz for Last.fm).
    pub mbid: Option<String>,
    pub isrc: Option<String>,
}

/// What a service knows about a recording.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// Most voted first, as the service names them ("jazz", "hip hop").
    #[serde(default)]
    pub genres: Vec<String>,
    /// Year of the first release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<u32>,
    /// From a tag such as "120 bpm", when one is there (in 60-200 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpm: Option<f64>,
    /// The MusicBrainz recording id the answer is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbid: Option<String>,
}

/// A look-up's answer. Failures (offline, time-outs, bad answers) are [`super::http::Failure`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Found(Found),
    /// The service does not know the recording (or knows nothing useful about it).
    Unknown,
}

/// BPM outside this range from a look-up is ignored (the original's rule).
pub const BPM_RANGE: std::ops::RangeInclusive<f64> = 60.0..=200.0;

/// Folksonomy tags that say nothing about the music.
const NOT_GENRES: &[&str] = &[
    "seen live",
    "favorites",
    "favourites",
    "favorite",
    "favourite",
    "albums i own",
    "love",
    "loved",
    "awesome",
    "beautiful",
    "cover",
    "live",
    "male vocalists",
    "female vocalists",
    "spotify",
];

/// Turns a service's tags (most voted first) into genres and a BPM: tags holding digits
/// ("90s", "1994", "120 bpm") are no genres; a "NNN bpm" tag in [`BPM_RANGE`] is the BPM.
pub fn sort_tags<'a>(tags: impl IntoIterator<Item = &'a str>, found: &mut Found) {
    for tag in tags {
        let t = tag.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        if let Some(n) = t.strip_suffix("bpm").map(str::trim) {
            if let Ok(bpm) = n.parse::<f64>() {
                if found.bpm.is_none() && BPM_RANGE.contains(&bpm) {
                    found.bpm = Some(bpm);
                }
                continue;
            }
        }
        if t.chars().any(|c| c.is_ascii_digit()) || NOT_GENRES.contains(&t.as_str()) {
            continue;
        }
        if t.chars().count() <= 40 && !found.genres.contains(&t) {
            found.genres.push(t);
        }
    }
}

/// The first plausible year in a date such as `1959-08-17` or `1994`.
pub fn year_of(date: &str) -> Option<u32> {
    let y: u32 = date.get(..4)?.parse().ok()?;
    (1000..=2999).contains(&y).then_some(y)
}

/// A service answer kept under `tests/fixtures/lookups/`, for the clients' unit tests.
#[cfg(test)]
pub(super) fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/lookups/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_genres_and_a_bpm() {
        let mut f = Found::default();
        sort_tags(
            [
                "Jazz",
                "seen live",
                "90s",
                "128 BPM",
                "bebop",
                "jazz",
                "999 bpm",
            ],
            &mut f,
        );
        assert_eq!(f.genres, vec!["jazz", "bebop"]);
        assert_eq!(f.bpm, Some(128.0));
        assert_eq!(year_of("1959-08-17"), Some(1959));
        assert_eq!(year_of("19"), None);
    }
}
