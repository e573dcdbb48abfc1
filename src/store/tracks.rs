//! What is known of each track (`tracks`, `features`, `runs`): its status and failures for the
//! scanner and `--status`, the analysed tracks with their records for playlists and the
//! server, their embeddings.

use anyhow::Result;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, ToSql, params};
use serde::Serialize;

use super::{FailKind, Store, StoredTrack, field_columns, now_s, read_fields};
use crate::embedding::{EMBEDDING_DIM, N_TAGS};
use crate::features::{ANALYSIS_VERSION, Record};
use crate::tags::Tags;

/// Where a track stands (`tracks.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackStatus {
    /// Found, its analysis not yet landed.
    Pending,
    Analyzed,
    /// Stays out of playlists, with its [`FailKind`] and reason, until it changes or a retry
    /// succeeds.
    Failed,
}

impl TrackStatus {
    pub fn name(self) -> &'static str {
        match self {
            TrackStatus::Pending => "pending",
            TrackStatus::Analyzed => "analyzed",
            TrackStatus::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<TrackStatus> {
        [
            TrackStatus::Pending,
            TrackStatus::Analyzed,
            TrackStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

impl std::fmt::Display for TrackStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ToSql for TrackStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.name().into())
    }
}

impl FromSql for TrackStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = value.as_str()?;
        TrackStatus::from_name(name)
            .ok_or_else(|| FromSqlError::Other(format!("not a track status: {name:?}").into()))
    }
}

impl ToSql for FailKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.name().into())
    }
}

/// NULL or a kind this playlista does not know reads as [`FailKind::Unknown`].
impl FromSql for FailKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(value
            .as_str_or_null()?
            .map_or(FailKind::Unknown, FailKind::from_name))
    }
}

/// What the store knows of one path, for deciding whether it needs work.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub id: i64,
    pub size: u64,
    pub mtime_ns: i64,
    pub status: TrackStatus,
    pub attempts: u32,
    /// The analysis version and mode of the stored features, if any.
    pub analysis: Option<(i64, String)>,
    /// The device and inode at the last scan (`None` for a row older than those columns).
    pub identity: Option<(u64, u64)>,
    /// For a single-file album: its tracks' rows `(id, path)`; the fields above are then the
    /// album's as a whole (the worst status, the oldest analysis). Empty for a file.
    pub parts: Vec<(i64, String)>,
    /// The CUE sheet the rows came from: its path ('' for one inside the file) and its
    /// modification time; `None` when no sheet was involved.
    pub sheet: Option<(String, Option<i64>)>,
}

/// Counts for `--status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub tracks: u64,
    pub analyzed: u64,
    pub failed: u64,
    pub pending: u64,
    /// Analysed by an older analysis version: will be measured again.
    pub outdated: u64,
    pub audio_hours: f64,
    pub failed_by_kind: Vec<(FailKind, u64)>,
    /// `(format, tracks, analyzed, failed)`.
    pub by_format: Vec<(String, u64, u64, u64)>,
    /// Tracks decoded through an installed ffmpeg, and files that failed for want of one.
    pub through_ffmpeg: u64,
    pub need_ffmpeg: u64,
    /// Tracks that are parts of single-file albums, and those albums.
    pub album_tracks: u64,
    pub albums: u64,
    pub playlists: u64,
    pub last_run: Option<RunSummary>,
    /// The fast tier: tempo, key, loudness, ... (every analysed track has them).
    pub fast: Tier,
    /// The full tier: timbre and the embedding too; `None` when the library is not analysed
    /// in full mode ([`Status::plan`]).
    pub full: Option<Tier>,
}

/// How far one tier of the analysis has come, and how long the rest will take.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tier {
    /// Tracks with this tier's measures.
    pub tracks: u64,
    /// Tracks still without them.
    pub left: u64,
    /// CPU seconds the rest takes, at the mean of the tracks measured so far (unknown before
    /// the first).
    pub cpu_s_left: Option<f64>,
    /// Wall-clock seconds until every track has this tier's measures, with the configured
    /// workers; the full tier's count from now, after the fast tier's ([`Status::plan`]).
    pub seconds_left: Option<f64>,
}

impl Status {
    /// Completes the tiers for the way the library is analysed: `workers` at a time, in full
    /// mode or not (then there is no full tier).
    pub fn plan(&mut self, workers: usize, full_mode: bool) {
        let workers = workers.max(1) as f64;
        self.fast.seconds_left = self.fast.cpu_s_left.map(|s| s / workers);
        if !full_mode {
            self.full = None;
        }
        if let Some(full) = &mut self.full {
            full.seconds_left = full
                .cpu_s_left
                .map(|s| s / workers + self.fast.seconds_left.unwrap_or(0.0));
        }
    }
}

/// One `playlista -a` run, as recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub mode: String,
    pub workers: u32,
    pub files: u64,
    pub analyzed: u64,
    pub failed: u64,
    pub kept: u64,
    pub removed: u64,
    pub audio_s: f64,
    pub wall_s: f64,
    pub peak_rss_kb: u64,
    pub interrupted: bool,
    pub files_per_hour: f64,
}

/// Reads an `f32_blob` (see [`super::batch`]) into `out`; false (and `out` untouched) when the blob is not
/// `out.len()` values.
fn read_f32_blob(blob: &[u8], out: &mut [f32]) -> bool {
    if blob.len() != out.len() * 4 {
        return false;
    }
    for (v, b) in out.iter_mut().zip(blob.chunks_exact(4)) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    true
}

impl Store {
    /// What is stored for the file at `path`, if anything: its row, or the rows of its
    /// tracks when a CUE sheet made it an album.
    pub fn lookup(&self, path: &str) -> Result<Option<Known>> {
        const COLUMNS: &str = "t.id, t.size, t.mtime_ns, t.status, t.attempts,
            f.analysis_version, f.mode, t.dev, t.inode, t.path, t.cue_sheet, t.cue_mtime_ns";
        let read = |r: &rusqlite::Row| -> rusqlite::Result<Known> {
            let version: Option<i64> = r.get(5)?;
            let mode: Option<String> = r.get(6)?;
            let sheet: Option<String> = r.get(10)?;
            let sheet_mtime: Option<i64> = r.get(11)?;
            Ok(Known {
                id: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                mtime_ns: r.get(2)?,
                status: r.get(3)?,
                attempts: r.get::<_, i64>(4)? as u32,
                analysis: version.zip(mode),
                identity: identity(r, 7)?,
                parts: Vec::new(),
                sheet: sheet.map(|p| (p, sheet_mtime)),
            })
        };
        let mut whole = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tracks t LEFT JOIN features f ON f.track_id = t.id
             WHERE t.path = ?1"
        ))?;
        if let Some(known) = whole.query_row([path], read).optional()? {
            return Ok(Some(known));
        }
        // An album's tracks: `path#01`, `path#02`, ... ('#' sorts just before '$').
        let mut parts = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tracks t LEFT JOIN features f ON f.track_id = t.id
             WHERE t.path > ?1 || '#' AND t.path < ?1 || '$' ORDER BY t.path"
        ))?;
        let mut album: Option<Known> = None;
        let rows = parts.query_map([path], |r| Ok((read(r)?, r.get::<_, String>(9)?)))?;
        for row in rows {
            let (part, part_path) = row?;
            if crate::library::split_part(&part_path).is_none_or(|(file, _)| file != path) {
                continue;
            }
            let a = album.get_or_insert_with(|| Known {
                parts: Vec::new(),
                ..part.clone()
            });
            a.parts.push((part.id, part_path));
            // The album stands where its worst track does: failed, else pending.
            let rank = |s: TrackStatus| match s {
                TrackStatus::Analyzed => 0,
                TrackStatus::Pending => 1,
                TrackStatus::Failed => 2,
            };
            if rank(part.status) > rank(a.status) {
                a.status = part.status;
                a.id = part.id;
            }
            a.attempts = a.attempts.max(part.attempts);
            if part.analysis.as_ref().map(|(v, _)| *v) < a.analysis.as_ref().map(|(v, _)| *v)
                || part.analysis.as_ref().is_some_and(|(_, m)| m != "full")
            {
                a.analysis = part.analysis.clone();
            }
        }
        Ok(album)
    }

    /// Analysed tracks with this content fingerprint: `(id, path)`.
    pub fn analyzed_with_fingerprint(&self, fingerprint: i64) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, path FROM tracks WHERE fingerprint = ?1 AND status = 'analyzed'",
        )?;
        let rows = stmt.query_map([fingerprint], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Failed tracks that may be tried again: `(path, attempts)`, fewest attempts first.
    pub fn retryable(&self, max_attempts: u32) -> Result<Vec<(String, u32)>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, attempts FROM tracks WHERE status = 'failed' AND attempts < ?1
             ORDER BY attempts, path",
        )?;
        let rows = stmt.query_map([max_attempts], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How what full mode adds to analysed track `id` last failed, if it did (its fast
    /// features stand): the kind and when.
    pub fn adds_failure(&self, id: i64) -> Result<Option<(FailKind, Option<i64>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT fail_kind, last_attempt FROM tracks WHERE id = ?1 AND fail_kind IS NOT NULL",
        )?;
        Ok(stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// How track `id` last failed: its kind and when (Unix seconds; None if never tried).
    pub fn last_failure(&self, id: i64) -> Result<(FailKind, Option<i64>)> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fail_kind, last_attempt FROM tracks WHERE id = ?1")?;
        Ok(stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// The highest track id so far (0 for none).
    pub fn last_track_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM tracks", [], |r| r.get(0))?)
    }

    /// Every stored path under `root` (a prefix match on whole path components), in id order.
    pub fn paths_under(&self, root: &str) -> Result<Vec<(i64, String)>> {
        let prefix = format!("{}/", root.trim_end_matches('/'));
        let mut stmt = self
            .conn
            .prepare("SELECT id, path FROM tracks WHERE substr(path, 1, ?2) = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![prefix, prefix.len() as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every analysed track with its record (scalars and tags; not the vectors), in path
    /// order.
    pub fn analysed(&self) -> Result<Vec<StoredTrack>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT t.id, t.path, t.title, t.artist, t.album, t.album_artist, t.genre, t.year,
                    t.track_number, t.disc_number, t.recording_mbid, t.isrc, t.size, t.mtime_ns,
                    t.dev, t.inode, t.start_s, t.end_s, {}
             FROM tracks t JOIN features f ON f.track_id = t.id
             WHERE t.status = 'analyzed' ORDER BY t.path",
            field_columns("f.")
        ))?;
        let rows = stmt.query_map([], |r| {
            let mut measured = Record {
                tags: Tags {
                    title: r.get(2)?,
                    artist: r.get(3)?,
                    album: r.get(4)?,
                    album_artist: r.get(5)?,
                    genre: r.get(6)?,
                    year: r.get(7)?,
                    track_number: r.get(8)?,
                    disc_number: r.get(9)?,
                    musicbrainz_recording_id: r.get(10)?,
                    isrc: r.get(11)?,
                },
                ..Record::default()
            };
            read_fields(r, 18, &mut measured)?;
            let start: Option<f64> = r.get(16)?;
            let end: Option<f64> = r.get(17)?;
            Ok(StoredTrack {
                id: r.get(0)?,
                path: r.get(1)?,
                size: r.get::<_, i64>(12)?.try_into().unwrap_or(0),
                mtime_ns: r.get(13)?,
                identity: identity(r, 14)?,
                span: start.zip(end),
                measured,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Failed tracks and why: `(path, kind, reason)`.
    pub fn failures(&self) -> Result<Vec<(String, FailKind, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, fail_kind, coalesce(fail_reason, '') FROM tracks
             WHERE status = 'failed' ORDER BY path",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn status(&self) -> Result<Status> {
        let c = &self.conn;
        let count =
            |sql: &str| -> Result<u64> { Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
        let mut s = Status {
            tracks: count("SELECT count(*) FROM tracks")?,
            analyzed: count("SELECT count(*) FROM tracks WHERE status = 'analyzed'")?,
            failed: count("SELECT count(*) FROM tracks WHERE status = 'failed'")?,
            pending: count("SELECT count(*) FROM tracks WHERE status = 'pending'")?,
            outdated: c.query_row(
                "SELECT count(*) FROM features WHERE analysis_version < ?1",
                [ANALYSIS_VERSION],
                |r| r.get::<_, i64>(0),
            )? as u64,
            audio_hours: c.query_row(
                "SELECT coalesce(sum(duration_s), 0) / 3600.0 FROM features",
                [],
                |r| r.get(0),
            )?,
            playlists: count("SELECT count(*) FROM playlists")?,
            through_ffmpeg: count(&format!(
                "SELECT count(*) FROM features WHERE codec LIKE '{}%'",
                crate::audio::ffmpeg::CODEC_PREFIX
            ))?,
            need_ffmpeg: count(
                "SELECT count(*) FROM tracks WHERE status = 'failed'
                 AND fail_reason LIKE 'needs ffmpeg for %'",
            )?,
            album_tracks: count("SELECT count(*) FROM tracks WHERE start_s IS NOT NULL")?,
            // A track's path is its album file's and `#NN` (numbers run to 99).
            albums: count(
                "SELECT count(DISTINCT substr(path, 1, length(path) - 3)) FROM tracks
                 WHERE start_s IS NOT NULL",
            )?,
            ..Status::default()
        };
        // Mean CPU per track: fast rows; full rows (the fast features and what full adds).
        let (fast_ms, full_ms, full_tracks): (Option<f64>, Option<f64>, i64) = c.query_row(
            "SELECT avg(CASE WHEN f.mode = 'fast' THEN f.analysis_ms END),
                    avg(CASE WHEN f.mode = 'full' THEN f.analysis_ms END),
                    count(CASE WHEN f.mode = 'full' THEN 1 END)
             FROM features f JOIN tracks t ON t.id = f.track_id WHERE t.status = 'analyzed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        s.fast = Tier {
            tracks: s.analyzed,
            left: s.pending,
            cpu_s_left: fast_ms.or(full_ms).map(|ms| ms * s.pending as f64 / 1e3),
            seconds_left: None,
        };
        let full_tracks = full_tracks as u64;
        let fast_only = s.analyzed.saturating_sub(full_tracks);
        // What full mode adds to a fast row, and a new track in both tiers.
        let adds_ms = match (fast_ms, full_ms) {
            (Some(fast), Some(full)) => Some((full - fast).max(0.0)),
            _ => None,
        };
        s.full = Some(Tier {
            tracks: full_tracks,
            left: fast_only + s.pending,
            cpu_s_left: adds_ms.map(|ms| ms * (fast_only + s.pending) as f64 / 1e3),
            seconds_left: None,
        });
        let mut stmt = c.prepare(
            "SELECT fail_kind, count(*) FROM tracks WHERE status = 'failed'
             GROUP BY 1 ORDER BY 2 DESC, 1",
        )?;
        s.failed_by_kind = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = c.prepare(
            "SELECT format, count(*), sum(status = 'analyzed'), sum(status = 'failed')
             FROM tracks GROUP BY format ORDER BY 2 DESC, 1",
        )?;
        s.by_format = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, i64>(3)? as u64,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        s.last_run = c
            .query_row(
                "SELECT started_at, finished_at, mode, workers, files, analyzed, failed, kept,
                        removed, audio_s, wall_s, peak_rss_kb, interrupted
                 FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    let wall_s: f64 = r.get(10)?;
                    let done = r.get::<_, i64>(5)? + r.get::<_, i64>(6)?;
                    Ok(RunSummary {
                        started_at: r.get(0)?,
                        finished_at: r.get(1)?,
                        mode: r.get(2)?,
                        workers: r.get::<_, i64>(3)? as u32,
                        files: r.get::<_, i64>(4)? as u64,
                        analyzed: r.get::<_, i64>(5)? as u64,
                        failed: r.get::<_, i64>(6)? as u64,
                        kept: r.get::<_, i64>(7)? as u64,
                        removed: r.get::<_, i64>(8)? as u64,
                        audio_s: r.get(9)?,
                        wall_s,
                        peak_rss_kb: r.get::<_, i64>(11)? as u64,
                        interrupted: r.get::<_, i64>(12)? != 0,
                        files_per_hour: if wall_s > 0.0 {
                            done as f64 * 3600.0 / wall_s
                        } else {
                            0.0
                        },
                    })
                },
            )
            .optional()?;
        Ok(s)
    }

    /// Records the start of a run; returns its id for [`Batch::finish_run`].
    pub fn start_run(&self, mode: &str, workers: u32) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, mode, workers) VALUES (?1, ?2, ?3)",
            params![now_s(), mode, workers],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// `(track id, content fingerprint)` of every analysed track that has one.
    pub fn fingerprints(&self) -> Result<Vec<(i64, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, fingerprint FROM tracks
             WHERE status = 'analyzed' AND fingerprint IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Calls `each(track id, embedding, tag probabilities)` for every analysed track with a
    /// full-mode embedding, one row at a time (100,000 embeddings are 80 MB: nobody should hold
    /// them all). Rows whose blobs have the wrong size are skipped.
    pub fn embeddings(
        &self,
        mut each: impl FnMut(i64, &[f32; EMBEDDING_DIM], &[f32; N_TAGS]),
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, f.embedding, f.musicnn_tags
             FROM tracks t JOIN features f ON f.track_id = t.id
             WHERE t.status = 'analyzed' AND f.embedding IS NOT NULL
                   AND f.musicnn_tags IS NOT NULL",
        )?;
        let mut rows = stmt.query([])?;
        let mut embedding = [0f32; EMBEDDING_DIM];
        let mut tags = [0f32; N_TAGS];
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let e = row.get_ref(1)?.as_blob()?;
            let t = row.get_ref(2)?.as_blob()?;
            if read_f32_blob(e, &mut embedding) && read_f32_blob(t, &mut tags) {
                each(id, &embedding, &tags);
            }
        }
        Ok(())
    }
}

/// The `(dev, inode)` pair stored from column `at` on (both `NULL` in rows scanned before
/// those columns existed). Stored as SQLite's signed integers, bit for bit.
fn identity(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Option<(u64, u64)>> {
    let dev: Option<i64> = r.get(at)?;
    let inode: Option<i64> = r.get(at + 1)?;
    Ok(dev.zip(inode).map(|(d, i)| (d as u64, i as u64)))
}
