//! The Last.fm API (2.0, JSON): a track's top tags as genres.
//!
//! In: a [`Query`] and the API key. Out: an [`Outcome`], or a [`Failure`]. Requests:
//! `track.getInfo` (artist + track, autocorrected); when Last.fm has no usable tags for the
//! track, `artist.getTopTags` for its artist. Last.fm has no release year; a "NNN bpm" tag
//! may give a BPM. At most four requests per second ([`GAP`]; the terms ask for no more than
//! five on average). Last.fm reports errors in the body (`{"error": 6, "message": ...}`):
//! 6 (not found) is [`Outcome::Unknown`], a bad or suspended key is [`Failure::Refused`].

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::Value;

use super::answer::{Found, Outcome, Query, sort_tags};
use super::http::{Client, Failure, user_agent};

pub const DEFAULT_BASE_URL: &str = "https://ws.audioscrobbler.com/2.0/";
pub const GAP: Duration = Duration::from_millis(250);

pub struct LastFm {
    http: Client,
    base: String,
    key: String,
}

impl LastFm {
    pub fn new(base_url: &str, api_key: &str, contact: &str, timeout: Duration) -> LastFm {
        LastFm {
            http: Client::new(&user_agent(contact), timeout, GAP),
            base: base_url.to_string(),
            key: api_key.trim().to_string(),
        }
    }

    pub fn look_up(&self, q: &Query, stop: &AtomicBool) -> Result<Outcome, Failure> {
        if q.artist.is_empty() {
            return Ok(Outcome::Unknown);
        }
        let mut found = Found {
            mbid: q.mbid.clone(),
            ..Found::default()
        };
        if !q.title.is_empty() {
            let track = self.call(
                "track.getInfo",
                &[("artist", &q.artist), ("track", &q.title)],
                stop,
            )?;
            if let Some(v) = track {
                sort_tags(tag_names(&v["track"]["toptags"]["tag"])?, &mut found);
            }
        }
        if found.genres.is_empty() {
            if let Some(v) = self.call("artist.getTopTags", &[("artist", &q.artist)], stop)? {
                sort_tags(tag_names(&v["toptags"]["tag"])?, &mut found);
            }
        }
        Ok(if found.genres.is_empty() && found.bpm.is_none() {
            Outcome::Unknown
        } else {
            Outcome::Found(found)
        })
    }

    /// One method call: its JSON, `None` when Last.fm does not know the track or artist.
    fn call(
        &self,
        method: &str,
        params: &[(&str, &str)],
        stop: &AtomicBool,
    ) -> Result<Option<Value>, Failure> {
        let mut q: Vec<(&str, &str)> = vec![
            ("method", method),
            ("api_key", &self.key),
            ("autocorrect", "1"),
            ("format", "json"),
        ];
        q.extend_from_slice(params);
        let answer = self.http.get(&self.base, &q, stop)?;
        let v = match answer.json() {
            Ok(v) => v,
            Err(e) if answer.status == 200 => return Err(e),
            Err(_) => return Err(Failure::Status(answer.status)),
        };
        match v["error"].as_i64() {
            None if answer.status == 200 => Ok(Some(v)),
            None => Err(Failure::Status(answer.status)),
            Some(6) => Ok(None),
            Some(code @ (4 | 10 | 26)) => Err(Failure::Refused(format!(
                "Last.fm error {code}: {}",
                v["message"].as_str().unwrap_or("")
            ))),
            Some(code) => Err(Failure::Malformed(format!(
                "Last.fm error {code}: {}",
                v["message"].as_str().unwrap_or("")
            ))),
        }
    }
}

/// The names of a `tag` list. Last.fm sends one tag as an object instead of a list, and no
/// tags as an empty list, a missing key or a string.
fn tag_names(tag: &Value) -> Result<Vec<&str>, Failure> {
    let one = std::slice::from_ref(tag);
    let list = match tag {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => one,
        Value::Null | Value::String(_) => &[],
        _ => {
            return Err(Failure::Malformed(
                "tags are neither a list nor a tag".into(),
            ));
        }
    };
    Ok(list.iter().filter_map(|t| t["name"].as_str()).collect())
}

#[cfg(test)]
mod tests {
    use super::super::answer::fixture;
    use super::*;

    #[test]
    fn top_tags_in_every_shape_last_fm_sends() {
        let v = fixture("lastfm-track-neon-steps.json");
        let tags = tag_names(&v["track"]["toptags"]["tag"]).unwrap();
        assert_eq!(tags, vec!["electronic", "synthpop", "seen live", "2010s"]);
        let v = fixture("lastfm-artist-toptags.json");
        assert_eq!(tag_names(&v["toptags"]["tag"]).unwrap()[0], "ambient");
        assert_eq!(
            tag_names(&serde_json::json!({"name": "jazz"})).unwrap(),
            vec!["jazz"]
        );
        assert!(tag_names(&Value::Null).unwrap().is_empty());
        assert!(tag_names(&serde_json::json!(3)).is_err());
    }
}
