//! The MusicBrainz web service (`/ws/2`, JSON): from artist + title (or the recording id or
//! ISRC in the tags) to genres and the year of first release.
//!
//! In: a [`Query`]. Out: an [`Outcome`], or a [`Failure`]. Requests: the recording id from
//! the tags, else the ISRC (`/isrc/{isrc}`), else a search (`/recording?query=...`, best match
//! scoring 90 or more); then the recording itself (`/recording/{id}?inc=releases+
//! release-groups+artists+tags+genres`). Genres come from the recording, else its release
//! groups, else its artists (genres before free tags at each level); the year from its first
//! release date. One request per second ([`GAP`]) with the User-Agent the service asks for.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::Value;

use super::answer::{Found, Outcome, Query, sort_tags, year_of};
use super::http::{Answer, Client, Failure, user_agent};

pub const DEFAULT_BASE_URL: &str = "https://musicbrainz.org/ws/2";
/// The service's limit is one request per second per client; 50 ms to spare, so that network
/// jitter never lets the service see two requests within one second.
pub const GAP: Duration = Duration::from_millis(1_050);
/// Search hits scoring less are other songs.
const MIN_SCORE: i64 = 90;

pub struct MusicBrainz {
    http: Client,
    base: String,
}

impl MusicBrainz {
    pub fn new(base_url: &str, contact: &str, timeout: Duration) -> MusicBrainz {
        MusicBrainz {
            http: Client::new(&user_agent(contact), timeout, GAP),
            base: base_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn look_up(&self, q: &Query, stop: &AtomicBool) -> Result<Outcome, Failure> {
        let mut id = q.mbid.clone();
        if id.is_none() {
            if let Some(isrc) = &q.isrc {
                id = self.by_isrc(isrc, stop)?;
            }
        }
        if let Some(id) = &id {
            if let Some(found) = self.recording(id, stop)? {
                return Ok(Outcome::Found(found));
            }
            // A stale id in the tags: fall back to the names.
        }
        if q.artist.is_empty() || q.title.is_empty() {
            return Ok(Outcome::Unknown);
        }
        match self.search(&q.artist, &q.title, stop)? {
            Some(id) => Ok(self
                .recording(&id, stop)?
                .map_or(Outcome::Unknown, Outcome::Found)),
            None => Ok(Outcome::Unknown),
        }
    }

    fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        stop: &AtomicBool,
    ) -> Result<Option<Value>, Failure> {
        let url = format!("{}/{path}", self.base);
        let mut q = query.to_vec();
        q.push(("fmt", "json"));
        let answer = self.http.get(&url, &q, stop)?;
        answer_json(&answer)
    }

    fn by_isrc(&self, isrc: &str, stop: &AtomicBool) -> Result<Option<String>, Failure> {
        Ok(self
            .get(&format!("isrc/{isrc}"), &[], stop)?
            .and_then(|v| first_id(&v["recordings"])))
    }

    fn search(
        &self,
        artist: &str,
        title: &str,
        stop: &AtomicBool,
    ) -> Result<Option<String>, Failure> {
        let query = format!(
            "recording:\"{}\" AND artist:\"{}\"",
            lucene_escape(title),
            lucene_escape(artist)
        );
        match self.get("recording", &[("query", &query), ("limit", "5")], stop)? {
            Some(v) => parse_search(&v),
            None => Ok(None),
        }
    }

    fn recording(&self, id: &str, stop: &AtomicBool) -> Result<Option<Found>, Failure> {
        let inc = "releases+release-groups+artists+tags+genres";
        match self.get(&format!("recording/{id}"), &[("inc", inc)], stop)? {
            Some(v) => parse_recording(&v).map(Some),
            None => Ok(None),
        }
    }
}

/// 200: the JSON; 404 and 400 (an id the service does not know or accept): `None`; other
/// statuses: a failure (401/403: the service refuses this client).
fn answer_json(a: &Answer) -> Result<Option<Value>, Failure> {
    match a.status {
        200 => a.json().map(Some),
        400 | 404 => Ok(None),
        401 | 403 => Err(Failure::Refused(format!("HTTP {}", a.status))),
        s => Err(Failure::Status(s)),
    }
}

/// Quotes for a Lucene phrase: backslash and double quote escaped.
fn lucene_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn first_id(list: &Value) -> Option<String> {
    list.as_array()?
        .iter()
        .find_map(|r| r["id"].as_str().map(str::to_string))
}

/// The best search hit's id, if it scores [`MIN_SCORE`] or more.
pub fn parse_search(v: &Value) -> Result<Option<String>, Failure> {
    let list = v["recordings"]
        .as_array()
        .ok_or_else(|| Failure::Malformed("search answer without recordings".into()))?;
    Ok(list
        .iter()
        .filter_map(|r| Some((r["score"].as_i64()?, r["id"].as_str()?)))
        .filter(|(score, _)| *score >= MIN_SCORE)
        .max_by_key(|(score, _)| *score)
        .map(|(_, id)| id.to_string()))
}

/// A recording's genres, year and id.
pub fn parse_recording(v: &Value) -> Result<Found, Failure> {
    let id = v["id"]
        .as_str()
        .ok_or_else(|| Failure::Malformed("recording without id".into()))?;
    let mut found = Found {
        mbid: Some(id.to_string()),
        ..Found::default()
    };
    let releases = v["releases"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let groups = releases.iter().map(|r| &r["release-group"]);
    let artists = v["artist-credit"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|c| &c["artist"]);
    for level in [vec![v], groups.collect(), artists.collect()] {
        for entity in level {
            sort_tags(
                voted(&entity["genres"]).iter().map(String::as_str),
                &mut found,
            );
            sort_tags(
                voted(&entity["tags"]).iter().map(String::as_str),
                &mut found,
            );
        }
        if !found.genres.is_empty() {
            break;
        }
    }
    found.year = v["first-release-date"]
        .as_str()
        .and_then(year_of)
        .or_else(|| {
            releases
                .iter()
                .filter_map(|r| r["date"].as_str().and_then(year_of))
                .min()
        });
    Ok(found)
}

/// `[{"name": .., "count": ..}]`, most votes first.
fn voted(list: &Value) -> Vec<String> {
    let mut items: Vec<(i64, String)> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| {
            Some((
                t["count"].as_i64().unwrap_or(0),
                t["name"].as_str()?.to_string(),
            ))
        })
        .collect();
    items.sort_by_key(|b| std::cmp::Reverse(b.0));
    items.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::super::answer::fixture;
    use super::*;

    #[test]
    fn search_takes_the_best_hit_above_the_threshold() {
        assert_eq!(
            parse_search(&fixture("mb-search-night-walk.json"))
                .unwrap()
                .as_deref(),
            Some("5a0c2a55-4e5f-4c36-9a5e-0d1b7a3c1e01")
        );
        assert_eq!(
            parse_search(&fixture("mb-search-empty.json")).unwrap(),
            None
        );
        assert!(parse_search(&serde_json::json!({"error": "x"})).is_err());
    }

    #[test]
    fn a_recording_gives_genres_and_the_first_year() {
        let f = parse_recording(&fixture("mb-recording-night-walk.json")).unwrap();
        assert_eq!(f.genres, vec!["jazz", "hard bop"]);
        assert_eq!(f.year, Some(1994));
        assert_eq!(f.bpm, None);
        // No genre on the recording: its release group's.
        let f = parse_recording(&fixture("mb-recording-highway-song.json")).unwrap();
        assert_eq!(f.genres, vec!["rock"]);
        assert_eq!(f.year, Some(1975));
        assert_eq!(lucene_escape(r#"say "hi"\"#), r#"say \"hi\"\\"#);
    }
}
