//! On-line look-ups of the analysed tracks (MusicBrainz, then Last.fm), their cache in the
//! database, and what playlists take from it.
//!
//! In: the [`Settings`] (`[musicbrainz]`, `[lastfm]`, `[lookups]`, full mode), the analysed tracks'
//! artist, title, recording id and ISRC from the store, the stop flag. Out: one answer per
//! service and recording in the store's look-up cache (keyed by [`key`] = lower-cased artist
//! and title, the value a JSON [`Cached`]); [`Counts`] for `--status`; genres, years and
//! fallback BPMs filled into [`StoredTrack`]s by [`fill_from_cache`].
//!
//! Rules:
//! - Off unless enabled: MusicBrainz with `[musicbrainz] enabled = true`, Last.fm with an API
//!   key; and only in full mode. No enabled service: nothing here touches the network.
//! - A separate, low-priority step after analysis ([`run`]): `playlista -a` runs it after the
//!   analysis has committed, within `[lookups] max_minutes`; `serve` runs it on its own
//!   thread after each background analysis. It never holds up a worker, and a playlist never
//!   waits for it: playlists read whatever the cache holds.
//! - Answers (found or not known) are kept `ttl_days`; a failure (time-out, 5xx, malformed
//!   answer) is recorded as an error and asked again on the next run; a service that cannot
//!   be reached or refuses us is left alone for the rest of the run (three time-outs in a row
//!   count as unreachable), and its tracks stay pending. `--no_cache` asks again regardless.
//! - The file's own tags win: a looked-up genre or year fills only what the tags lack; a
//!   looked-up BPM (60-200) replaces ours only when ours is missing or its confidence is
//!   below [`LOW_BPM_CONFIDENCE`].
//!
//! - [`answer`]: the query and answer types the clients share;
//! - [`http`]: the one HTTP client (spacing, retries, time-outs, offline detection);
//! - [`musicbrainz`], [`lastfm`]: the two services' clients. They know nothing of the
//!   database: which tracks are asked, and the cache of answers (SQL in
//!   [`crate::store`]), belong to this module.

pub mod answer;
pub mod http;
pub mod lastfm;
pub mod musicbrainz;
pub mod settings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use answer::{BPM_RANGE, Found, Outcome, Query};
use http::Failure;
use lastfm::LastFm;
use musicbrainz::MusicBrainz;
pub use settings::Settings;

use crate::store::{Store, StoredTrack, cache_key as key, now_s};

pub const MUSICBRAINZ: &str = "musicbrainz";
pub const LASTFM: &str = "lastfm";
const DEFAULT_TTL_DAYS: f64 = 30.0;
const DEFAULT_TIMEOUT_S: f64 = 10.0;
const DEFAULT_MAX_MINUTES: f64 = 10.0;
/// Time-outs in a row after which a service counts as unreachable for the run.
const TIMEOUTS_IN_A_ROW: u32 = 3;
/// Our BPM with less confidence than this gives way to a looked-up one. The confidence is
/// the onset envelope's autocorrelation at the beat period: clear beats score above 0.5.
pub const LOW_BPM_CONFIDENCE: f64 = 0.3;
/// Sent to MusicBrainz in the User-Agent when `[musicbrainz] contact` is not set.
const DEFAULT_CONTACT: &str = match option_env!("CARGO_PKG_REPOSITORY") {
    Some(r) if !r.is_empty() => r,
    _ => "no contact configured",
};

/// One row's `value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Cached {
    Hit(Found),
    Miss,
    Error { error: String },
}

enum Service {
    MusicBrainz(MusicBrainz),
    LastFm(LastFm),
}

impl Service {
    fn name(&self) -> &'static str {
        match self {
            Service::MusicBrainz(_) => MUSICBRAINZ,
            Service::LastFm(_) => LASTFM,
        }
    }

    fn look_up(&self, q: &Query, stop: &AtomicBool) -> Result<Outcome, Failure> {
        match self {
            Service::MusicBrainz(c) => c.look_up(q, stop),
            Service::LastFm(c) => c.look_up(q, stop),
        }
    }
}

/// The services these settings enable, in the order they are asked (none in fast mode).
pub fn enabled(config: &Settings) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !config.full_mode {
        return out;
    }
    if config.musicbrainz.enabled {
        out.push(MUSICBRAINZ);
    }
    if config
        .lastfm
        .api_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty())
    {
        out.push(LASTFM);
    }
    out
}

fn services(config: &Settings) -> Vec<Service> {
    let timeout = Duration::from_secs_f64(
        config
            .lookups
            .timeout_seconds
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(DEFAULT_TIMEOUT_S),
    );
    let contact = config
        .musicbrainz
        .contact
        .as_deref()
        .unwrap_or(DEFAULT_CONTACT);
    enabled(config)
        .into_iter()
        .map(|name| match name {
            MUSICBRAINZ => Service::MusicBrainz(MusicBrainz::new(
                config
                    .musicbrainz
                    .base_url
                    .as_deref()
                    .unwrap_or(musicbrainz::DEFAULT_BASE_URL),
                contact,
                timeout,
            )),
            _ => Service::LastFm(LastFm::new(
                config
                    .lastfm
                    .base_url
                    .as_deref()
                    .unwrap_or(lastfm::DEFAULT_BASE_URL),
                config.lastfm.api_key.as_deref().unwrap_or(""),
                contact,
                timeout,
            )),
        })
        .collect()
}

fn ttl_s(config: &Settings) -> i64 {
    let days = config
        .lookups
        .ttl_days
        .filter(|d| d.is_finite() && *d >= 0.0)
        .unwrap_or(DEFAULT_TTL_DAYS);
    (days * 86_400.0) as i64
}

/// The time `playlista -a` gives look-ups per run.
pub fn cli_budget(config: &Settings) -> Duration {
    Duration::from_secs_f64(
        60.0 * config
            .lookups
            .max_minutes
            .filter(|m| m.is_finite() && *m >= 0.0)
            .unwrap_or(DEFAULT_MAX_MINUTES),
    )
}

/// A recording the library holds, as the look-ups ask for it.
struct Wanted {
    key: String,
    query: Query,
}

/// Every analysed recording with an artist and a title, oldest first.
fn wanted(store: &Store) -> Result<Vec<Wanted>> {
    Ok(store
        .recordings()?
        .into_iter()
        .map(|r| Wanted {
            key: r.key,
            query: Query {
                artist: r.artist,
                title: r.title,
                mbid: r.mbid,
                isrc: r.isrc,
            },
        })
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hit,
    Miss,
    Error,
}

/// `key -> (kind, fetched_at)` of one service's rows.
fn cached_kinds(store: &Store, source: &str) -> Result<HashMap<String, (Kind, i64)>> {
    Ok(store
        .cached(source, None)?
        .into_iter()
        .map(|row| {
            let kind = match row.outcome.as_deref() {
                Some("hit") => Kind::Hit,
                Some("miss") => Kind::Miss,
                _ => Kind::Error,
            };
            (row.key, (kind, row.fetched_at))
        })
        .collect())
}

fn store_answer(store: &Store, source: &str, key: &str, value: &Cached) -> Result<()> {
    store.cache_answer(source, key, &serde_json::to_string(value)?)
}

/// What one [`run`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Look-ups answered (one per service and recording).
    pub asked: u64,
    pub found: u64,
    pub unknown: u64,
    pub errors: u64,
    /// Look-ups still due when the run ended (budget, stop, services unreachable).
    pub left: u64,
    /// `(service, why)` for each service given up for this run.
    pub unreachable: Vec<(&'static str, String)>,
    pub interrupted: bool,
    pub wall_s: f64,
}

impl Report {
    pub fn text(&self) -> String {
        let mut s = format!(
            "look-ups: {} in {:.1} s: {} found, {} not known, {} failed (asked again next run)",
            self.asked, self.wall_s, self.found, self.unknown, self.errors
        );
        if self.left > 0 {
            s += &format!("; {} left for the next run", self.left);
        }
        for (service, why) in &self.unreachable {
            s += &format!("; {service} not asked further: {why}");
        }
        s
    }
}

/// Looks up what is due (never asked, expired, or failed last time) until done, `budget` is
/// spent or `stop` is set. `None` when no service is enabled.
pub fn run(
    config: &Settings,
    stop: &AtomicBool,
    budget: Option<Duration>,
) -> Result<Option<Report>> {
    let services = services(config);
    if services.is_empty() {
        return Ok(None);
    }
    let started = Instant::now();
    let store = Store::open(&config.db, config.tuning)?;
    let stale_before = now_s() - ttl_s(config);
    let mut due: Vec<(Wanted, Vec<usize>)> = Vec::new();
    {
        let known: Vec<HashMap<String, (Kind, i64)>> = services
            .iter()
            .map(|s| cached_kinds(&store, s.name()))
            .collect::<Result<_>>()?;
        for w in wanted(&store)? {
            let which: Vec<usize> = (0..services.len())
                .filter(|&i| {
                    config.no_cache
                        || match known[i].get(&w.key) {
                            None | Some((Kind::Error, _)) => true,
                            Some((_, at)) => *at <= stale_before,
                        }
                })
                .collect();
            if !which.is_empty() {
                due.push((w, which));
            }
        }
    }
    let mut report = Report::default();
    let mut down: Vec<Option<String>> = vec![None; services.len()];
    let mut timeouts = vec![0u32; services.len()];
    'tracks: for (w, which) in &due {
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        if budget.is_some_and(|b| started.elapsed() >= b) || down.iter().all(Option::is_some) {
            break;
        }
        for &i in which {
            if down[i].is_some() {
                continue;
            }
            let service = &services[i];
            let answer = match service.look_up(&w.query, stop) {
                Ok(Outcome::Found(found)) => {
                    report.found += 1;
                    Cached::Hit(found)
                }
                Ok(Outcome::Unknown) => {
                    report.unknown += 1;
                    Cached::Miss
                }
                Err(Failure::Stopped) => {
                    report.interrupted = true;
                    break 'tracks;
                }
                Err(e @ (Failure::Offline(_) | Failure::Refused(_))) => {
                    tracing::warn!("{}: {e}; not asked again in this run", service.name());
                    down[i] = Some(e.to_string());
                    continue;
                }
                Err(e) => {
                    tracing::info!(
                        "{} look-up of {} - {} failed: {e}",
                        service.name(),
                        w.query.artist,
                        w.query.title
                    );
                    report.errors += 1;
                    if matches!(e, Failure::Timeout(_)) {
                        timeouts[i] += 1;
                        if timeouts[i] >= TIMEOUTS_IN_A_ROW {
                            tracing::warn!(
                                "{}: {e} {} times in a row; not asked again in this run",
                                service.name(),
                                timeouts[i]
                            );
                            down[i] = Some(format!("{e}, {} times in a row", timeouts[i]));
                        }
                    }
                    Cached::Error {
                        error: e.to_string(),
                    }
                }
            };
            if !matches!(answer, Cached::Error { .. }) {
                timeouts[i] = 0;
            }
            report.asked += 1;
            store_answer(&store, service.name(), &w.key, &answer)?;
        }
    }
    let total: usize = due.iter().map(|(_, which)| which.len()).sum();
    report.left = total as u64 - report.asked;
    report.unreachable = services
        .iter()
        .zip(down)
        .filter_map(|(s, d)| Some((s.name(), d?)))
        .collect();
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(Some(report))
}

/// Look-up counts for `--status`, over the recordings the library holds now (one per
/// service and recording).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// The service knew the recording.
    pub hits: u64,
    /// The service does not know it (kept as a negative answer for the TTL).
    pub misses: u64,
    /// The last try failed; asked again on the next run.
    pub errors: u64,
    /// Never asked, or the answer expired, by an enabled service.
    pub pending: u64,
    /// The services enabled (in full mode only).
    pub services: Vec<&'static str>,
}

pub fn counts(store: &Store, config: &Settings) -> Result<Counts> {
    let active = enabled(config);
    let wanted = wanted(store)?;
    let stale_before = now_s() - ttl_s(config);
    let mut c = Counts {
        services: active.clone(),
        ..Counts::default()
    };
    for source in [MUSICBRAINZ, LASTFM] {
        let on = active.contains(&source);
        let known = cached_kinds(store, source)?;
        for w in &wanted {
            match known.get(&w.key) {
                Some((Kind::Error, _)) => c.errors += 1,
                Some((_, at)) if on && *at <= stale_before => c.pending += 1,
                Some((Kind::Hit, _)) => c.hits += 1,
                Some((Kind::Miss, _)) => c.misses += 1,
                None if on => c.pending += 1,
                None => {}
            }
        }
    }
    Ok(c)
}

/// One line for `--status`.
pub fn counts_text(c: &Counts) -> String {
    let services = if c.services.is_empty() {
        "off".to_string()
    } else {
        c.services.join(" + ")
    };
    format!(
        "look-ups   {services}: {} found, {} not known, {} failed, {} pending\n",
        c.hits, c.misses, c.errors, c.pending
    )
}

/// Found answers of one service, by key.
fn hits(store: &Store, source: &str) -> Result<HashMap<String, Found>> {
    let mut out = HashMap::new();
    for row in store.cached(source, Some("hit"))? {
        if let Ok(Cached::Hit(found)) = serde_json::from_str(&row.value) {
            out.insert(row.key, found);
        }
    }
    Ok(out)
}

/// Fills what the tags lack (genre, year) and a weak BPM from the cached answers,
/// MusicBrainz before Last.fm. Old answers count too: they are still the best we know.
pub fn fill_from_cache(store: &Store, tracks: &mut [StoredTrack]) -> Result<()> {
    let sources = [hits(store, MUSICBRAINZ)?, hits(store, LASTFM)?];
    if sources.iter().all(HashMap::is_empty) {
        return Ok(());
    }
    for t in tracks {
        let m = &mut t.measured;
        let (Some(artist), Some(title)) = (&m.tags.artist, &m.tags.title) else {
            continue;
        };
        let k = key(artist, title);
        let answers: Vec<&Found> = sources.iter().filter_map(|s| s.get(&k)).collect();
        if m.tags.genre.is_none() {
            m.tags.genre = answers
                .iter()
                .find_map(|f| f.genres.first())
                .map(|g| title_case(g));
        }
        if m.tags.year.is_none() {
            m.tags.year = answers.iter().find_map(|f| f.year);
        }
        let weak = m.bpm.is_none() || m.bpm_confidence.is_none_or(|c| c < LOW_BPM_CONFIDENCE);
        if weak {
            if let Some(bpm) = answers
                .iter()
                .filter_map(|f| f.bpm)
                .find(|b| BPM_RANGE.contains(b))
            {
                m.bpm = Some(bpm);
            }
        }
    }
    Ok(())
}

/// "hard bop" -> "Hard Bop", "r&b" -> "R&B".
fn title_case(genre: &str) -> String {
    genre
        .split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(_) if w.len() <= 3 && w.contains('&') => w.to_uppercase(),
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;
    use crate::store::Tuning;

    #[test]
    fn cached_answers_fill_gaps_and_weak_bpms_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), Tuning { cache_kib: 1024 }).unwrap();
        let mut tracks = Vec::new();
        for (i, (artist, title, genre, confidence)) in [
            ("Ann", "One", None, 0.9),
            ("ANN", "one", Some("Tagged"), 0.1),
            ("Bob", "Two", None, 0.1),
        ]
        .into_iter()
        .enumerate()
        {
            let mut t = stored(i as i64 + 1, Some(100.0), "C", false, 1.0);
            t.measured.tags.artist = Some(artist.into());
            t.measured.tags.title = Some(title.into());
            t.measured.tags.genre = genre.map(String::from);
            t.measured.bpm_confidence = Some(confidence);
            tracks.push(t);
        }
        let found = Found {
            genres: vec!["hard bop".into()],
            year: Some(1994),
            bpm: Some(72.0),
            mbid: None,
        };
        store_answer(&store, MUSICBRAINZ, &key("ann", "ONE"), &Cached::Hit(found)).unwrap();
        let lastfm = Found {
            genres: vec!["r&b".into()],
            ..Found::default()
        };
        store_answer(&store, LASTFM, &key("Ann", "One"), &Cached::Hit(lastfm)).unwrap();
        store_answer(&store, MUSICBRAINZ, &key("Bob", "Two"), &Cached::Miss).unwrap();
        fill_from_cache(&store, &mut tracks).unwrap();
        let got: Vec<(Option<&str>, Option<u32>, Option<f64>)> = tracks
            .iter()
            .map(|t| {
                let m = &t.measured;
                (m.tags.genre.as_deref(), m.tags.year, m.bpm)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("Hard Bop"), Some(1994), Some(100.0)),
                (Some("Tagged"), Some(1994), Some(72.0)),
                (None, None, Some(100.0)),
            ]
        );
        assert_eq!(title_case("r&b"), "R&B");
    }
}
