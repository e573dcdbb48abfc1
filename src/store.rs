//! The SQLite database: schema, migrations, pragmas, batched writes and the queries the rest of
//! playlista asks.
//!
//! In: file facts from [`crate::library`], measurements from [`crate::analysis`] (as
//! [`Measured`]), playlists. Out: what is known about each track, for the scanner (has it
//! changed?), `--status`, playlists and the server.
//!
//! One file (`playlista.db`), WAL, `synchronous=NORMAL`: a crash or `kill -9` loses at most the
//! open transaction, never what was committed. The schema version lives in
//! `pragma user_version`; [`MIGRATIONS`] brings any older file up to date, one transaction per
//! step. Exactly one connection writes (the pipeline's batch writer, through [`Batch`]); readers
//! open their own connections.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::embedding::{EMBEDDING_DIM, N_TAGS};
use crate::features::timbre::Timbre;
use crate::library::FileEntry;
use crate::metadata::tags::Tags;
use crate::report::InspectLine;

/// Schema steps; step `i` takes a database from `user_version = i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tracks (
    id            INTEGER PRIMARY KEY,
    path          TEXT    NOT NULL UNIQUE,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    fingerprint   INTEGER,
    format        TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'analyzed', 'failed')),
    fail_kind     TEXT,
    fail_reason   TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_attempt  INTEGER,
    title         TEXT,
    artist        TEXT,
    album         TEXT,
    album_artist  TEXT,
    genre         TEXT,
    year          INTEGER,
    track_number  INTEGER,
    added_at      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX tracks_status ON tracks (status);
CREATE INDEX tracks_fingerprint ON tracks (fingerprint);

CREATE TABLE features (
    track_id          INTEGER PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    analysis_version  INTEGER NOT NULL,
    mode              TEXT    NOT NULL,
    duration_s        REAL    NOT NULL,
    sample_rate       INTEGER NOT NULL,
    channels          INTEGER NOT NULL,
    codec             TEXT    NOT NULL,
    bpm               REAL,
    bpm_confidence    REAL,
    key               TEXT,
    scale             TEXT,
    key_strength      REAL,
    loudness_lufs     REAL,
    loudness_rms_db   REAL,
    danceability      REAL,
    onset_rate        REAL,
    zcr               REAL,
    spectral_centroid REAL,
    analysis_ms       REAL,
    analyzed_at       INTEGER NOT NULL
);

CREATE TABLE playlists (
    id          INTEGER PRIMARY KEY,
    method      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (method, name)
);
CREATE TABLE playlist_tracks (
    playlist_id INTEGER NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);
CREATE INDEX playlist_tracks_track ON playlist_tracks (track_id);

CREATE TABLE lookup_cache (
    source      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    fetched_at  INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    mode         TEXT    NOT NULL,
    workers      INTEGER NOT NULL,
    files        INTEGER NOT NULL DEFAULT 0,
    analyzed     INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    kept         INTEGER NOT NULL DEFAULT 0,
    removed      INTEGER NOT NULL DEFAULT 0,
    audio_s      REAL    NOT NULL DEFAULT 0,
    wall_s       REAL    NOT NULL DEFAULT 0,
    peak_rss_kb  INTEGER NOT NULL DEFAULT 0,
    interrupted  INTEGER NOT NULL DEFAULT 0
);
"#,
    // 2: playlists say which rule and settings made them; each place says why it is there.
    r#"
ALTER TABLE playlists ADD COLUMN rule TEXT NOT NULL DEFAULT '';
ALTER TABLE playlists ADD COLUMN settings TEXT NOT NULL DEFAULT '';
ALTER TABLE playlist_tracks ADD COLUMN why TEXT NOT NULL DEFAULT '';
"#,
    // 3: full mode: timbre summary (JSON), MusiCNN embedding mean (200 × f32 LE) and tag
    // probabilities (50 × f32 LE). NULL for tracks analysed in fast mode.
    r#"
ALTER TABLE features ADD COLUMN timbre TEXT;
ALTER TABLE features ADD COLUMN embedding BLOB;
ALTER TABLE features ADD COLUMN musicnn_tags BLOB;
"#,
    // 4: the identifiers on-line look-ups ask by (see `crate::lookups`), from the file's tags.
    r#"
ALTER TABLE tracks ADD COLUMN recording_mbid TEXT;
ALTER TABLE tracks ADD COLUMN isrc TEXT;
"#,
];

/// How much memory SQLite may use for its page cache.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub cache_kib: u32,
}

/// What one analysis measured, as stored and as sent from a worker process to the writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub duration_s: f64,
    pub sample_rate: u32,
    pub channels: u32,
    pub codec: String,
    pub bpm: Option<f64>,
    pub bpm_confidence: Option<f64>,
    pub key: Option<String>,
    pub scale: Option<String>,
    pub key_strength: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub loudness_rms_db: Option<f64>,
    pub danceability: Option<f64>,
    pub onset_rate: Option<f64>,
    pub zcr: Option<f64>,
    pub spectral_centroid: Option<f64>,
    pub tags: Tags,
    /// Full mode only. Not read back by [`Store::analysed`] (see [`Store::embeddings`]).
    /// Boxed: 1.7 KB inline would triple the size of every stored track in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timbre: Option<Box<Timbre>>,
    /// Full mode only: [`crate::embedding::EMBEDDING_DIM`] values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// Full mode only: [`crate::embedding::N_TAGS`] probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub musicnn_tags: Option<Vec<f32>>,
}

impl Measured {
    /// Takes the values `inspect` shows (same rounding), or `None` for a failed line.
    pub fn from_line(line: &InspectLine) -> Option<Measured> {
        if !line.ok {
            return None;
        }
        Some(Measured {
            duration_s: line.duration_s.unwrap_or(0.0),
            sample_rate: line.sample_rate.unwrap_or(0),
            channels: line.channels.unwrap_or(0) as u32,
            codec: line.codec.unwrap_or("").to_string(),
            bpm: line.bpm,
            bpm_confidence: line.bpm_confidence,
            key: line.key.map(str::to_string),
            scale: line.scale.map(str::to_string),
            key_strength: line.key_strength,
            loudness_lufs: line.loudness_lufs,
            loudness_rms_db: line.loudness_rms_db,
            danceability: line.danceability,
            onset_rate: line.onset_rate,
            zcr: line.zcr,
            spectral_centroid: line.spectral_centroid,
            tags: line.tags.clone(),
            timbre: line.timbre.cloned().map(Box::new),
            embedding: line.embedding.map(|e| e.to_vec()),
            musicnn_tags: line.musicnn_tags.map(|t| t.0.to_vec()),
        })
    }
}

/// An analysed track as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrack {
    pub id: i64,
    pub path: String,
    pub measured: Measured,
}

/// What the store knows of one path, for deciding whether it needs work.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub id: i64,
    pub size: u64,
    pub mtime_ns: i64,
    pub status: String,
    pub attempts: u32,
    /// The analysis version and mode of the stored features, if any.
    pub analysis: Option<(i64, String)>,
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
    pub failed_by_kind: Vec<(String, u64)>,
    /// `(format, tracks, analyzed, failed)`.
    pub by_format: Vec<(String, u64, u64, u64)>,
    pub playlists: u64,
    pub last_run: Option<RunSummary>,
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

/// Little-endian `f32`s: how the embedding and tag columns hold their vectors.
fn f32_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Reads an [`f32_blob`] into `out`; false (and `out` untouched) when the blob is not
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

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database for writing and brings its schema up to date.
    pub fn open(path: &Path, tuning: Tuning) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn =
            Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let store = Store { conn };
        store.pragmas(tuning)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database for reading only (the scanner, `--status`, the server).
    pub fn open_read(path: &Path, tuning: Tuning) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {}", path.display()))?;
        let store = Store { conn };
        store
            .conn
            .execute_batch(&format!("PRAGMA cache_size = -{};", tuning.cache_kib))?;
        store
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        anyhow::ensure!(
            version as usize == MIGRATIONS.len(),
            "{} has schema version {version}; this playlista reads version {}",
            path.display(),
            MIGRATIONS.len()
        );
        Ok(store)
    }

    fn pragmas(&self, tuning: Tuning) -> Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10))?;
        self.conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -{};",
            tuning.cache_kib
        ))?;
        Ok(())
    }

    fn migrate(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        anyhow::ensure!(
            version as usize <= MIGRATIONS.len(),
            "the database has schema version {version}, newer than this playlista ({}): \
             upgrade playlista",
            MIGRATIONS.len()
        );
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.unchecked_transaction()?;
            tx.execute_batch(step)
                .with_context(|| format!("schema migration {} failed", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// What is stored for `path`, if anything.
    pub fn lookup(&self, path: &str) -> Result<Option<Known>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, t.size, t.mtime_ns, t.status, t.attempts, f.analysis_version, f.mode
             FROM tracks t LEFT JOIN features f ON f.track_id = t.id WHERE t.path = ?1",
        )?;
        Ok(stmt
            .query_row([path], |r| {
                let version: Option<i64> = r.get(5)?;
                let mode: Option<String> = r.get(6)?;
                Ok(Known {
                    id: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get::<_, i64>(4)? as u32,
                    analysis: version.zip(mode),
                })
            })
            .optional()?)
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

    /// Every analysed track with its measurements, in path order.
    pub fn analysed(&self) -> Result<Vec<StoredTrack>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.path, f.duration_s, f.sample_rate, f.channels, f.codec, f.bpm,
                    f.bpm_confidence, f.key, f.scale, f.key_strength, f.loudness_lufs,
                    f.loudness_rms_db, f.danceability, f.onset_rate, f.zcr, f.spectral_centroid,
                    t.title, t.artist, t.album, t.album_artist, t.genre, t.year, t.track_number
             FROM tracks t JOIN features f ON f.track_id = t.id
             WHERE t.status = 'analyzed' ORDER BY t.path",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredTrack {
                id: r.get(0)?,
                path: r.get(1)?,
                measured: Measured {
                    duration_s: r.get(2)?,
                    sample_rate: r.get(3)?,
                    channels: r.get(4)?,
                    codec: r.get(5)?,
                    bpm: r.get(6)?,
                    bpm_confidence: r.get(7)?,
                    key: r.get(8)?,
                    scale: r.get(9)?,
                    key_strength: r.get(10)?,
                    loudness_lufs: r.get(11)?,
                    loudness_rms_db: r.get(12)?,
                    danceability: r.get(13)?,
                    onset_rate: r.get(14)?,
                    zcr: r.get(15)?,
                    spectral_centroid: r.get(16)?,
                    tags: Tags {
                        title: r.get(17)?,
                        artist: r.get(18)?,
                        album: r.get(19)?,
                        album_artist: r.get(20)?,
                        genre: r.get(21)?,
                        year: r.get(22)?,
                        track_number: r.get(23)?,
                        ..Tags::EMPTY
                    },
                    timbre: None,
                    embedding: None,
                    musicnn_tags: None,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Failed tracks and why: `(path, kind, reason)`.
    pub fn failures(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, coalesce(fail_kind, ''), coalesce(fail_reason, '') FROM tracks
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
                [crate::analysis::ANALYSIS_VERSION],
                |r| r.get::<_, i64>(0),
            )? as u64,
            audio_hours: c.query_row(
                "SELECT coalesce(sum(duration_s), 0) / 3600.0 FROM features",
                [],
                |r| r.get(0),
            )?,
            playlists: count("SELECT count(*) FROM playlists")?,
            ..Status::default()
        };
        let mut stmt = c.prepare(
            "SELECT coalesce(fail_kind, 'unknown'), count(*) FROM tracks WHERE status = 'failed'
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

    /// Opens the one write transaction of a batch.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        Ok(Batch {
            tx: self.conn.transaction()?,
        })
    }

    pub fn integrity_ok(&self) -> Result<bool> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(r == "ok")
    }
}

/// What a finished run adds to its row in `runs`.
#[derive(Debug, Clone, Default)]
pub struct RunTotals {
    pub files: u64,
    pub analyzed: u64,
    pub failed: u64,
    pub kept: u64,
    pub removed: u64,
    pub audio_s: f64,
    pub peak_rss_kb: u64,
}

/// One write transaction: every change of one batch commits together or not at all.
pub struct Batch<'a> {
    tx: Transaction<'a>,
}

impl Batch<'_> {
    /// Inserts or refreshes a track's file facts and tags, keeping its id; returns the id.
    fn upsert_track(
        &self,
        entry: &FileEntry,
        fingerprint: Option<i64>,
        status: &str,
        tags: Option<&Tags>,
    ) -> Result<i64> {
        let path = path_text(&entry.path)?;
        let format = entry
            .path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let now = now_s();
        let t = tags.cloned().unwrap_or_default();
        let id = self.tx.prepare_cached(
            "INSERT INTO tracks (path, size, mtime_ns, fingerprint, format, status, title, artist,
                                 album, album_artist, genre, year, track_number, added_at, updated_at,
                                 recording_mbid, isrc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?16)
             ON CONFLICT (path) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns,
                 fingerprint = coalesce(excluded.fingerprint, fingerprint),
                 status = excluded.status,
                 title = coalesce(excluded.title, title), artist = coalesce(excluded.artist, artist),
                 album = coalesce(excluded.album, album),
                 album_artist = coalesce(excluded.album_artist, album_artist),
                 genre = coalesce(excluded.genre, genre), year = coalesce(excluded.year, year),
                 track_number = coalesce(excluded.track_number, track_number),
                 recording_mbid = coalesce(excluded.recording_mbid, recording_mbid),
                 isrc = coalesce(excluded.isrc, isrc),
                 updated_at = excluded.updated_at
             RETURNING id",
        )?
        .query_row(
            params![
                path,
                entry.size as i64,
                entry.mtime_ns,
                fingerprint,
                format,
                status,
                t.title,
                t.artist,
                t.album,
                t.album_artist,
                t.genre,
                t.year,
                t.track_number,
                now,
                t.musicbrainz_recording_id,
                t.isrc
            ],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    /// A file found that needs analysis: known to `--status` as pending until its result lands.
    pub fn pending(&self, entry: &FileEntry, fingerprint: Option<i64>) -> Result<()> {
        let id = self.upsert_track(entry, fingerprint, "pending", None)?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = NULL, fail_reason = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Stores a finished analysis; replaces older features of the same track.
    pub fn analyzed(
        &self,
        entry: &FileEntry,
        fingerprint: Option<i64>,
        m: &Measured,
        mode: &str,
        analysis_ms: f64,
    ) -> Result<i64> {
        let id = self.upsert_track(entry, fingerprint, "analyzed", Some(&m.tags))?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = NULL, fail_reason = NULL, attempts = attempts + 1,
                               last_attempt = ?2 WHERE id = ?1",
            params![id, now_s()],
        )?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO features (track_id, analysis_version, mode, duration_s,
                 sample_rate, channels, codec, bpm, bpm_confidence, key, scale, key_strength,
                 loudness_lufs, loudness_rms_db, danceability, onset_rate, zcr, spectral_centroid,
                 analysis_ms, analyzed_at, timbre, embedding, musicnn_tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, ?21, ?22, ?23)",
            )?
            .execute(params![
                id,
                crate::analysis::ANALYSIS_VERSION,
                mode,
                m.duration_s,
                m.sample_rate,
                m.channels,
                m.codec,
                m.bpm,
                m.bpm_confidence,
                m.key,
                m.scale,
                m.key_strength,
                m.loudness_lufs,
                m.loudness_rms_db,
                m.danceability,
                m.onset_rate,
                m.zcr,
                m.spectral_centroid,
                analysis_ms,
                now_s(),
                m.timbre.as_ref().map(serde_json::to_string).transpose()?,
                m.embedding.as_deref().map(f32_blob),
                m.musicnn_tags.as_deref().map(f32_blob),
            ])?;
        Ok(id)
    }

    /// Stores a failure: the track stays out of playlists, with its reason, until it changes
    /// or a retry succeeds.
    pub fn failed(
        &self,
        entry: &FileEntry,
        fingerprint: Option<i64>,
        kind: &str,
        reason: &str,
    ) -> Result<()> {
        let id = self.upsert_track(entry, fingerprint, "failed", None)?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = ?2, fail_reason = ?3, attempts = attempts + 1,
                               last_attempt = ?4 WHERE id = ?1",
            params![id, kind, reason, now_s()],
        )?;
        self.tx
            .execute("DELETE FROM features WHERE track_id = ?1", [id])?;
        Ok(())
    }

    /// A file that moved: the track (its analysis and playlist places) follows it.
    pub fn moved(&self, id: i64, entry: &FileEntry) -> Result<()> {
        self.tx.execute(
            "UPDATE tracks SET path = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5 WHERE id = ?1",
            params![
                id,
                path_text(&entry.path)?,
                entry.size as i64,
                entry.mtime_ns,
                now_s()
            ],
        )?;
        Ok(())
    }

    /// A second copy of an analysed file: a new track with the same analysis.
    pub fn copied(&self, from: i64, entry: &FileEntry, fingerprint: i64) -> Result<()> {
        let id = self.upsert_track(entry, Some(fingerprint), "analyzed", None)?;
        self.tx.execute(
            "UPDATE tracks SET (title, artist, album, album_artist, genre, year, track_number,
                                attempts, last_attempt, recording_mbid, isrc) =
                 (SELECT title, artist, album, album_artist, genre, year, track_number, 0,
                         last_attempt, recording_mbid, isrc FROM tracks WHERE id = ?2)
             WHERE id = ?1",
            params![id, from],
        )?;
        self.tx.execute(
            "INSERT OR REPLACE INTO features
             SELECT ?1, analysis_version, mode, duration_s, sample_rate, channels, codec, bpm,
                    bpm_confidence, key, scale, key_strength, loudness_lufs, loudness_rms_db,
                    danceability, onset_rate, zcr, spectral_centroid, analysis_ms, analyzed_at,
                    timbre, embedding, musicnn_tags
             FROM features WHERE track_id = ?2",
            params![id, from],
        )?;
        Ok(())
    }

    /// A file gone from the library: the track leaves, and with it its playlist places.
    pub fn removed(&self, id: i64) -> Result<()> {
        self.tx.execute("DELETE FROM tracks WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn finish_run(
        &self,
        run: i64,
        t: &RunTotals,
        wall_s: f64,
        interrupted: bool,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE runs SET finished_at = ?2, files = ?3, analyzed = ?4, failed = ?5, kept = ?6,
                             removed = ?7, audio_s = ?8, wall_s = ?9, peak_rss_kb = ?10,
                             interrupted = ?11
             WHERE id = ?1",
            params![
                run,
                now_s(),
                t.files as i64,
                t.analyzed as i64,
                t.failed as i64,
                t.kept as i64,
                t.removed as i64,
                t.audio_s,
                wall_s,
                t.peak_rss_kb as i64,
                interrupted
            ],
        )?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }
}

/// Paths are stored as text; a name that is not UTF-8 cannot be stored faithfully.
pub fn path_text(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("file name is not UTF-8: {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Playlists: what the `playlist` module stores and reads back.
// ---------------------------------------------------------------------------------------------

/// A playlist to store: its tracks in order, each with the reason it is there.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistRow<'a> {
    pub name: &'a str,
    pub rule: &'a str,
    /// The settings that made it: an update with other settings regenerates.
    pub settings: &'a str,
    /// `(track id, why)` in play order.
    pub tracks: Vec<(i64, &'a str)>,
}

/// A stored playlist as read back (tracks that were deleted are gone).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedPlaylist {
    pub id: i64,
    pub method: String,
    pub name: String,
    pub rule: String,
    pub settings: String,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// `(track id, why)` in play order.
    pub tracks: Vec<(i64, String)>,
}

impl Store {
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

    /// The stored playlists of `method`, in the order they were stored.
    pub fn saved_playlists(&self, method: &str) -> Result<Vec<SavedPlaylist>> {
        self.playlists_where(Some(method))
    }

    /// Every stored playlist of every method, by id (what the server shows).
    pub fn all_playlists(&self) -> Result<Vec<SavedPlaylist>> {
        self.playlists_where(None)
    }

    fn playlists_where(&self, method: Option<&str>) -> Result<Vec<SavedPlaylist>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.method, p.name, p.rule, p.settings, p.updated_at, pt.track_id, pt.why
             FROM playlists p LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.id
             WHERE ?1 IS NULL OR p.method = ?1 ORDER BY p.id, pt.position",
        )?;
        let mut rows = stmt.query([method])?;
        let mut out: Vec<SavedPlaylist> = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if out.last().map(|p| p.id) != Some(id) {
                out.push(SavedPlaylist {
                    id,
                    method: r.get(1)?,
                    name: r.get(2)?,
                    rule: r.get(3)?,
                    settings: r.get(4)?,
                    updated_at: r.get(5)?,
                    tracks: Vec::new(),
                });
            }
            let track: Option<i64> = r.get(6)?;
            if let (Some(t), Some(p)) = (track, out.last_mut()) {
                p.tracks
                    .push((t, r.get::<_, Option<String>>(7)?.unwrap_or_default()));
            }
        }
        Ok(out)
    }

    /// Stores playlists of `method` in one transaction: each replaces the stored playlist of
    /// its name (keeping its creation time); with `replace_method`, the method's other
    /// playlists are deleted. Stored order (`id`) follows `lists` for new playlists.
    pub fn save_playlists(
        &self,
        method: &str,
        lists: &[PlaylistRow<'_>],
        replace_method: bool,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        let now = now_s();
        if replace_method {
            let names: std::collections::HashSet<&str> = lists.iter().map(|p| p.name).collect();
            let mut stmt = tx.prepare("SELECT id, name FROM playlists WHERE method = ?1")?;
            let stale: Vec<i64> = stmt
                .query_map([method], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .filter_map(|r| match r {
                    Ok((id, name)) if !names.contains(name.as_str()) => Some(Ok(id)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<rusqlite::Result<_>>()?;
            drop(stmt);
            for id in stale {
                tx.execute("DELETE FROM playlists WHERE id = ?1", [id])?;
            }
        }
        {
            let mut upsert = tx.prepare(
                "INSERT INTO playlists (method, name, created_at, updated_at, rule, settings)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)
                 ON CONFLICT (method, name) DO UPDATE SET
                     updated_at = excluded.updated_at, rule = excluded.rule,
                     settings = excluded.settings
                 RETURNING id",
            )?;
            let mut clear = tx.prepare("DELETE FROM playlist_tracks WHERE playlist_id = ?1")?;
            let mut place = tx.prepare(
                "INSERT INTO playlist_tracks (playlist_id, position, track_id, why)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in lists {
                let id: i64 = upsert
                    .query_row(params![method, p.name, now, p.rule, p.settings], |r| {
                        r.get(0)
                    })?;
                clear.execute([id])?;
                for (pos, (track, why)) in p.tracks.iter().enumerate() {
                    place.execute(params![id, pos as i64, track, why])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
