//! The page's playlist builders: a radio from any track, album or artist, a path from one
//! track to another, a DJ mix with its length and energy ramp, and a list from words
//! ("relaxing piano"). Each answers `{name, rule, tracks}` (tracks with `why`), computed on a
//! [`super::blocking`] compute slot; the page plays it at once and saves it as the listener's
//! own playlist through Subsonic, or as M3U8.
//!
//! In: query parameters and the current catalog. Out: JSON; a 4xx for an unknown id, a bad
//! number or an empty query.
//!
//! - `GET /api/v1/radio?track=ID|album=al-…|artist=ar-…&count=N`: the radio of a track; of
//!   an album or artist, the radio of its most typical track (nearest its tracks' mean).
//! - `GET /api/v1/path?from=ID&to=ID&length=N`: [`flow::path`], A to B.
//! - `GET /api/v1/mix?length=N&start=0..1&end=0..1`: [`flow::mix`] with a [`Ramp`].
//! - `GET /api/v1/words?q=TEXT&count=N`: tracks whose MusiCNN tags answer the words (a tag
//!   begins with the word, or the word names a mood, [`MOODS`]), best tag rank first; other
//!   words must appear in the track's names or genre.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, MAX_LENGTH, Placed, compute, track_index};
use super::catalog::Catalog;
use super::search;
use crate::embedding::TAG_NAMES;
use crate::playlist::Playlist;
use crate::playlist::flow::{self, Ramp};
use crate::playlist::space::dist2;

/// Words people use for a mood, and the MusiCNN tags that carry it.
const MOODS: &[(&str, &[&str])] = &[
    (
        "relax",
        &["chillout", "chill", "Mellow", "easy listening", "ambient"],
    ),
    ("calm", &["chillout", "chill", "Mellow", "ambient"]),
    ("sleep", &["ambient", "Mellow", "chillout"]),
    ("quiet", &["Mellow", "acoustic", "ambient"]),
    ("upbeat", &["happy", "party", "catchy", "dance"]),
    ("energetic", &["party", "dance", "hard rock", "metal"]),
    ("workout", &["party", "dance", "electro", "House"]),
    ("sad", &["sad", "Mellow"]),
    ("melanchol", &["sad", "Mellow", "beautiful"]),
    (
        "vocal",
        &["female vocalists", "male vocalists", "female vocalist"],
    ),
    (
        "singer",
        &["female vocalists", "male vocalists", "female vocalist"],
    ),
    ("romantic", &["sexy", "beautiful", "soul", "rnb"]),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/radio", get(radio))
        .route("/api/v1/path", get(path))
        .route("/api/v1/mix", get(mix))
        .route("/api/v1/words", get(words))
}

/// A built list as the page reads it.
fn answer(c: &Catalog, p: &Playlist) -> Response {
    let tracks: Vec<Placed> = p
        .entries
        .iter()
        .map(|e| Placed {
            track: c.view(e.track),
            why: &e.why,
        })
        .collect();
    Json(json!({ "name": p.name, "rule": p.rule, "tracks": tracks })).into_response()
}

#[derive(Deserialize)]
struct RadioQuery {
    track: Option<i64>,
    album: Option<String>,
    artist: Option<String>,
    count: Option<usize>,
}

/// Of `tracks`, the one nearest their mean in the feature space.
fn most_typical(c: &Catalog, tracks: &[usize]) -> Option<usize> {
    let n = tracks.len().max(1) as f32;
    let mut mean = [0f32; crate::playlist::space::DIMS];
    for &i in tracks {
        for (m, v) in mean.iter_mut().zip(&c.lib.scaled[i]) {
            *m += v / n;
        }
    }
    tracks
        .iter()
        .copied()
        .min_by(|&a, &b| dist2(&c.lib.scaled[a], &mean).total_cmp(&dist2(&c.lib.scaled[b], &mean)))
}

async fn radio(
    State(s): State<AppState>,
    Query(q): Query<RadioQuery>,
) -> Result<Response, ApiError> {
    let count = q.count.unwrap_or(25).clamp(2, MAX_LENGTH);
    let c = s.catalog.get();
    let (seed, from) = match (q.track, q.album.as_deref(), q.artist.as_deref()) {
        (Some(id), None, None) => (track_index(&c, id)?, None),
        (None, Some(id), None) => {
            let ix = c.index();
            let a = ix.album(id).ok_or(ApiError::not_found("album"))?;
            let seed =
                most_typical(&c, &ix.albums[a].tracks).ok_or(ApiError::not_found("album"))?;
            (seed, Some(ix.albums[a].name.clone()))
        }
        (None, None, Some(id)) => {
            let ix = c.index();
            let a = ix.artist(id).ok_or(ApiError::not_found("artist"))?;
            let tracks: Vec<usize> = ix.artists[a]
                .albums
                .iter()
                .flat_map(|&al| ix.albums[al].tracks.iter().copied())
                .collect();
            let seed = most_typical(&c, &tracks).ok_or(ApiError::not_found("artist"))?;
            (seed, Some(ix.artists[a].name.clone()))
        }
        _ => return Err(ApiError::bad("give one of track, album or artist")),
    };
    compute(move || {
        let mut p = flow::radio(&c.lib, seed, count, &Default::default());
        if let Some(name) = from {
            p.rule = format!("{}; the seed is the most typical track of {name}", p.rule);
            p.name = format!("Radio_{}", crate::playlist::m3u::file_name(&name));
        }
        answer(&c, &p)
    })
    .await
}

#[derive(Deserialize)]
struct PathQuery {
    from: i64,
    to: i64,
    length: Option<usize>,
}

async fn path(State(s): State<AppState>, Query(q): Query<PathQuery>) -> Result<Response, ApiError> {
    let length = q.length.unwrap_or(25).clamp(2, MAX_LENGTH);
    let c = s.catalog.get();
    let from = track_index(&c, q.from)?;
    let to = track_index(&c, q.to)?;
    if from == to {
        return Err(ApiError::bad("from and to are the same track"));
    }
    compute(move || {
        answer(
            &c,
            &flow::path(&c.lib, from, to, length, &Default::default()),
        )
    })
    .await
}

#[derive(Deserialize)]
struct MixQuery {
    length: Option<usize>,
    start: Option<f32>,
    end: Option<f32>,
}

async fn mix(State(s): State<AppState>, Query(q): Query<MixQuery>) -> Result<Response, ApiError> {
    let length = q.length.unwrap_or(20).clamp(2, MAX_LENGTH);
    let level = |v: Option<f32>, default: f32| match v.unwrap_or(default) {
        v if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(ApiError::bad("start and end are energies from 0 to 1")),
    };
    let ramp = Ramp {
        start: level(q.start, 0.2)?,
        end: level(q.end, 0.8)?,
    };
    let c = s.catalog.get();
    compute(move || answer(&c, &flow::mix(&c.lib, length, Some(ramp)))).await
}

#[derive(Deserialize)]
struct WordsQuery {
    q: Option<String>,
    count: Option<usize>,
}

/// The tags a query word asks for: every tag with a word it begins, and a mood's tags.
fn tags_for(word: &str) -> Vec<u8> {
    let mut tags: Vec<u8> = (0..TAG_NAMES.len())
        .filter(|&t| search::words(TAG_NAMES[t]).any(|w| w.starts_with(word)))
        .map(|t| t as u8)
        .collect();
    for (mood, named) in MOODS {
        if word.starts_with(mood) || mood.starts_with(word) && word.len() >= 4 {
            tags.extend(
                named
                    .iter()
                    .filter_map(|n| TAG_NAMES.iter().position(|t| t == n))
                    .map(|t| t as u8),
            );
        }
    }
    tags.sort_unstable();
    tags.dedup();
    tags
}

async fn words(
    State(s): State<AppState>,
    Query(q): Query<WordsQuery>,
) -> Result<Response, ApiError> {
    let text = q.q.unwrap_or_default();
    let words = search::query_words(&text).map_err(ApiError::bad)?;
    if words.is_empty() {
        return Err(ApiError::bad("say what to play, e.g. q=relaxing piano"));
    }
    let count = q.count.unwrap_or(25).clamp(1, MAX_LENGTH);
    let c = s.catalog.get();
    compute(move || {
        let (tag_words, text_words): (Vec<&String>, Vec<&String>) =
            words.iter().partition(|w| !tags_for(w).is_empty());
        let wanted: Vec<Vec<u8>> = tag_words.iter().map(|w| tags_for(w)).collect();
        // Words that are no tag narrow the list by name, when any track has them.
        let name_words: Vec<String> = text_words.iter().map(|w| w.to_string()).collect();
        let named: Option<std::collections::HashSet<usize>> = (!name_words.is_empty())
            .then(|| {
                c.search()
                    .find(c.index(), &name_words, c.lib.len())
                    .tracks
                    .into_iter()
                    .collect()
            })
            .filter(|set: &std::collections::HashSet<usize>| !set.is_empty());
        let mut scored: Vec<(f32, usize)> = (0..c.lib.len())
            .filter(|i| named.as_ref().is_none_or(|n| n.contains(i)))
            .filter_map(|i| {
                if wanted.is_empty() {
                    return Some((1.0, i));
                }
                let sound = c.lib.sound[i]?;
                let mut score = 0.0;
                for tags in &wanted {
                    let best = sound
                        .top_tags
                        .iter()
                        .position(|t| tags.contains(t))
                        .map(|rank| 1.0 / (1.0 + rank as f32))?;
                    score += best;
                }
                Some((score, i))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(count);
        let said = |ws: &[&String]| ws.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(" ");
        let mut rule = match (tag_words.is_empty(), &named) {
            (false, _) => format!("tracks whose sound tags answer \"{}\"", said(&tag_words)),
            (true, _) => format!("tracks named \"{}\"", said(&text_words)),
        };
        if !text_words.is_empty() && !tag_words.is_empty() {
            rule.push_str(&match named {
                Some(_) => format!(", named \"{}\"", said(&text_words)),
                None => format!(" (no track's names or genre say \"{}\")", said(&text_words)),
            });
        }
        let mut p = Playlist::new(
            format!("Words_{}", crate::playlist::m3u::file_name(&text)),
            rule,
        );
        for (score, i) in scored {
            let tags: Vec<&str> = c.lib.sound[i]
                .map(|s| s.tag_names().collect())
                .unwrap_or_default();
            let why = if tags.is_empty() {
                "its names match".to_string()
            } else {
                format!("sounds like {} (match {score:.2})", tags.join(", "))
            };
            p.push(i, why);
        }
        answer(&c, &p)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mood_words_and_tag_prefixes_name_tags() {
        let names = |w: &str| {
            tags_for(w)
                .iter()
                .map(|&t| TAG_NAMES[t as usize])
                .collect::<Vec<_>>()
        };
        assert!(names("relaxing").contains(&"chillout"));
        assert!(names("chill").contains(&"chill"));
        assert!(names("electronic").contains(&"electronic"));
        assert!(names("piano").is_empty());
    }
}
