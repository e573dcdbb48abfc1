//! The look-ups' settings: the config file's `[musicbrainz]`, `[lastfm]` and `[lookups]`
//! sections (read by [`crate::config`]) and the [`Settings`] a run is given, so the
//! look-ups need nothing else of the config.

use std::path::PathBuf;

use serde::Deserialize;

use crate::store::Tuning;

/// What a look-up run and `--status` need: the database, whether analysis is in full mode
/// (look-ups run only then), `--no_cache`, and the three sections.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db: PathBuf,
    pub tuning: Tuning,
    pub full_mode: bool,
    /// Ask again whatever the cache holds.
    pub no_cache: bool,
    pub musicbrainz: MusicBrainzSection,
    /// With the key from `LASTFM_API_KEY` when that is set.
    pub lastfm: LastFmSection,
    pub lookups: LookupsSection,
}

/// `[musicbrainz]`: genre, year (and sometimes BPM) from MusicBrainz, in full mode only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MusicBrainzSection {
    /// Off unless `true`: look-ups send artist and title of the library's tracks out.
    #[serde(default)]
    pub enabled: bool,
    /// The web service root (default `https://musicbrainz.org/ws/2`; a mirror works too).
    pub base_url: Option<String>,
    /// A URL or `mailto:` the service can reach the operator at, sent in the User-Agent.
    pub contact: Option<String>,
}

/// `[lastfm]`: top tags as genres from Last.fm; on when an API key is given here or in
/// `LASTFM_API_KEY`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastFmSection {
    pub api_key: Option<String>,
    /// The API root (default `https://ws.audioscrobbler.com/2.0/`).
    pub base_url: Option<String>,
}

impl std::fmt::Debug for LastFmSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastFmSection")
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// `[lookups]`: settings shared by the look-up services.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupsSection {
    /// Days an answer (found or not found) is kept before it is asked again (default 30).
    pub ttl_days: Option<f64>,
    /// Seconds one request may take (default 10).
    pub timeout_seconds: Option<f64>,
    /// Minutes of look-ups at most per `playlista -a` run (default 10; the rest waits for
    /// the next run). `serve` looks up in the background without a limit.
    pub max_minutes: Option<f64>,
}
