//! The look-up cache (`lookup_cache`): one row per service and recording, written and read by
//! [`crate::lookups`].
//!
//! A row is `source` (the service), `key` ([`cache_key`] of artist and title), `value` (a JSON
//! object whose `outcome` member says `hit`, `miss` or otherwise; the rest is the look-ups'
//! business) and `fetched_at`.

use anyhow::Result;
use rusqlite::params;

use super::{Store, now_s};

/// The cache key of a recording: artist and title, ASCII-lower-cased, joined by U+001F.
/// [`KEY_SQL`] computes the same from the `tracks` columns (SQLite's `lower` is ASCII-only).
pub fn cache_key(artist: &str, title: &str) -> String {
    format!(
        "{}\u{1f}{}",
        artist.to_ascii_lowercase(),
        title.to_ascii_lowercase()
    )
}

const KEY_SQL: &str = "lower(artist) || char(31) || lower(title)";

/// A recording the library holds (analysed tracks with an artist and a title), as the
/// look-ups ask for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub key: String,
    pub artist: String,
    pub title: String,
    pub mbid: Option<String>,
    pub isrc: Option<String>,
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedRow {
    pub key: String,
    /// The value's `outcome` member, if it has one.
    pub outcome: Option<String>,
    pub value: String,
    pub fetched_at: i64,
}

impl Store {
    /// Every analysed recording with an artist and a title, oldest first; copies of one
    /// recording (same [`cache_key`]) are one.
    pub fn recordings(&self) -> Result<Vec<Recording>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {KEY_SQL} AS k, min(artist), min(title), max(recording_mbid), max(isrc)
             FROM tracks
             WHERE status = 'analyzed' AND artist IS NOT NULL AND title IS NOT NULL
             GROUP BY k ORDER BY min(id)"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(Recording {
                key: r.get(0)?,
                artist: r.get(1)?,
                title: r.get(2)?,
                mbid: r.get(3)?,
                isrc: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The cached answers of `source`; only those whose outcome is `outcome` if given.
    pub fn cached(&self, source: &str, outcome: Option<&str>) -> Result<Vec<CachedRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, json_extract(value, '$.outcome'), value, fetched_at FROM lookup_cache
             WHERE source = ?1 AND (?2 IS NULL OR json_extract(value, '$.outcome') = ?2)",
        )?;
        let rows = stmt.query_map(params![source, outcome], |r| {
            Ok(CachedRow {
                key: r.get(0)?,
                outcome: r.get(1)?,
                value: r.get(2)?,
                fetched_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores (replacing) `source`'s answer for `key`, fetched now.
    pub fn cache_answer(&self, source: &str, key: &str, value: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO lookup_cache (source, key, value, fetched_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![source, key, value, now_s()])?;
        Ok(())
    }

    /// [`KEY_SQL`] of an artist and a title, as SQLite computes it (for the tests that hold
    /// it to [`cache_key`]).
    #[cfg(test)]
    pub(super) fn sql_cache_key(&self, artist: &str, title: &str) -> Result<String> {
        Ok(self.conn.query_row(
            &format!("SELECT {KEY_SQL} FROM (SELECT ?1 AS artist, ?2 AS title)"),
            [artist, title],
            |r| r.get(0),
        )?)
    }
}
