//! The one write transaction of a batch ([`Batch`]): what the pipeline's writer records of
//! the files it found, analysed, lost or saw move, and of its run.

use std::sync::LazyLock;

use anyhow::Result;
use rusqlite::{OptionalExtension, ToSql, Transaction, TransactionBehavior, params};

use super::{FIELD_COLUMNS, FailKind, Store, TrackStatus, now_s, path_text};
use crate::features::record::{FIELDS, Value};
use crate::features::{ANALYSIS_VERSION, Record};
use crate::library::FileEntry;
use crate::tags::Tags;

/// The columns of `features` besides the scalars of [`FIELDS`], in the order
/// [`Batch::analyzed`] binds them.
const OTHER_COLUMNS: &str =
    "track_id, analysis_version, mode, analysis_ms, analyzed_at, timbre, embedding, musicnn_tags";

static INSERT_FEATURES: LazyLock<String> = LazyLock::new(|| {
    let n = OTHER_COLUMNS.split(',').count() + FIELDS.len();
    let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT OR REPLACE INTO features ({OTHER_COLUMNS}, {}) VALUES ({})",
        *FIELD_COLUMNS,
        marks.join(", ")
    )
});

/// A copy of track `?2`'s features for track `?1`.
static COPY_FEATURES: LazyLock<String> = LazyLock::new(|| {
    let rest = OTHER_COLUMNS.trim_start_matches("track_id, ");
    format!(
        "INSERT OR REPLACE INTO features ({OTHER_COLUMNS}, {fields})
         SELECT ?1, {rest}, {fields} FROM features WHERE track_id = ?2",
        fields = *FIELD_COLUMNS
    )
});

/// Little-endian `f32`s: how the embedding and tag columns hold their vectors.
fn f32_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl Store {
    /// Opens the one write transaction of a batch, holding the write lock from its start
    /// (`BEGIN IMMEDIATE`: another writer is waited for, never met half-way).
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        Ok(Batch {
            tx: self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?,
        })
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
        status: TrackStatus,
        tags: Option<&Tags>,
    ) -> Result<i64> {
        let path = path_text(&entry.path)?;
        // A track of an album has its file's format.
        let file = crate::library::split_part(path).map_or(path, |(file, _)| file);
        let format = std::path::Path::new(file)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let now = now_s();
        let t = tags.cloned().unwrap_or_default();
        let id = self.tx.prepare_cached(
            "INSERT INTO tracks (path, size, mtime_ns, fingerprint, format, status, title, artist,
                                 album, album_artist, genre, year, track_number, added_at, updated_at,
                                 recording_mbid, isrc, disc_number, dev, inode)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?16, ?17,
                     ?18, ?19)
             ON CONFLICT (path) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns,
                 dev = excluded.dev, inode = excluded.inode,
                 fingerprint = coalesce(excluded.fingerprint, fingerprint),
                 status = excluded.status,
                 title = coalesce(excluded.title, title), artist = coalesce(excluded.artist, artist),
                 album = coalesce(excluded.album, album),
                 album_artist = coalesce(excluded.album_artist, album_artist),
                 genre = coalesce(excluded.genre, genre), year = coalesce(excluded.year, year),
                 track_number = coalesce(excluded.track_number, track_number),
                 disc_number = coalesce(excluded.disc_number, disc_number),
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
                t.isrc,
                t.disc_number,
                entry.dev as i64,
                entry.inode as i64
            ],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    /// A file found that needs analysis: known to `--status` as pending until its result lands.
    pub fn pending(&self, entry: &FileEntry, fingerprint: Option<i64>) -> Result<()> {
        let id = self.upsert_track(entry, fingerprint, TrackStatus::Pending, None)?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = NULL, fail_reason = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Stores a finished analysis, at full precision; replaces older features of the same
    /// track.
    pub fn analyzed(
        &self,
        entry: &FileEntry,
        fingerprint: Option<i64>,
        m: &Record,
        mode: &str,
        analysis_ms: f64,
    ) -> Result<i64> {
        let id = self.upsert_track(entry, fingerprint, TrackStatus::Analyzed, Some(&m.tags))?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = NULL, fail_reason = NULL, attempts = attempts + 1,
                               last_attempt = ?2 WHERE id = ?1",
            params![id, now_s()],
        )?;
        let timbre = m.timbre.as_ref().map(serde_json::to_string).transpose()?;
        let embedding = m.embedding.as_deref().map(f32_blob);
        let tags = m.musicnn_tags.as_deref().map(f32_blob);
        let now = now_s();
        let fields: Vec<Value> = FIELDS.iter().map(|f| (f.get)(m)).collect();
        let mut values: Vec<&dyn ToSql> = vec![
            &id,
            &ANALYSIS_VERSION,
            &mode,
            &analysis_ms,
            &now,
            &timbre,
            &embedding,
            &tags,
        ];
        values.extend(fields.iter().map(|v| v as &dyn ToSql));
        self.tx
            .prepare_cached(&INSERT_FEATURES)?
            .execute(values.as_slice())?;
        Ok(id)
    }

    /// Adds what full mode measures (timbre, embedding, tags) to the fast row of `path`,
    /// which becomes a full one; its fast features stay as they are. False when no analysed
    /// row has that path (it changed or went meanwhile).
    pub fn full_adds(&self, path: &str, m: &Record, analysis_ms: f64) -> Result<bool> {
        let timbre = m.timbre.as_ref().map(serde_json::to_string).transpose()?;
        let embedding = m.embedding.as_deref().map(f32_blob);
        let tags = m.musicnn_tags.as_deref().map(f32_blob);
        let Some(id) = self
            .tx
            .prepare_cached("SELECT id FROM tracks WHERE path = ?1 AND status = 'analyzed'")?
            .query_row([path], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            return Ok(false);
        };
        self.tx.execute(
            "UPDATE features SET mode = 'full', timbre = ?2, embedding = ?3, musicnn_tags = ?4,
                                 analysis_ms = analysis_ms + ?5, analyzed_at = ?6
             WHERE track_id = ?1",
            params![id, timbre, embedding, tags, analysis_ms, now_s()],
        )?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = NULL, fail_reason = NULL, last_attempt = ?2
             WHERE id = ?1",
            params![id, now_s()],
        )?;
        Ok(true)
    }

    /// Records that what full mode adds to the fast row of file `path` (or of each track of
    /// the single-file album it is) failed: the tracks keep their fast features and their
    /// place in playlists; the failure is tried again when due.
    pub fn full_adds_failed(&self, path: &str, kind: FailKind, reason: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE tracks SET fail_kind = ?2, fail_reason = ?3, attempts = attempts + 1,
                               last_attempt = ?4
             WHERE (path = ?1 OR substr(path, 1, length(?1) + 1) = ?1 || '#')
               AND status = 'analyzed'",
            params![path, kind.name(), reason, now_s()],
        )?;
        Ok(())
    }

    /// Stores a failure: the track stays out of playlists, with its reason, until it changes
    /// or a retry succeeds.
    pub fn failed(
        &self,
        entry: &FileEntry,
        fingerprint: Option<i64>,
        kind: FailKind,
        reason: &str,
    ) -> Result<i64> {
        let id = self.upsert_track(entry, fingerprint, TrackStatus::Failed, None)?;
        self.tx.execute(
            "UPDATE tracks SET fail_kind = ?2, fail_reason = ?3, attempts = attempts + 1,
                               last_attempt = ?4 WHERE id = ?1",
            params![id, kind, reason, now_s()],
        )?;
        self.tx
            .execute("DELETE FROM features WHERE track_id = ?1", [id])?;
        Ok(id)
    }

    /// A file that moved, or whose stored device and inode are missing or stale: the track
    /// (its analysis and playlist places) takes the file's new facts.
    pub fn moved(&self, id: i64, entry: &FileEntry) -> Result<()> {
        self.tx.execute(
            "UPDATE tracks SET path = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5, dev = ?6,
                               inode = ?7
             WHERE id = ?1",
            params![
                id,
                path_text(&entry.path)?,
                entry.size as i64,
                entry.mtime_ns,
                now_s(),
                entry.dev as i64,
                entry.inode as i64
            ],
        )?;
        Ok(())
    }

    /// A second copy of an analysed file: a new track with the same analysis.
    pub fn copied(&self, from: i64, entry: &FileEntry, fingerprint: i64) -> Result<()> {
        let id = self.upsert_track(entry, Some(fingerprint), TrackStatus::Analyzed, None)?;
        self.tx.execute(
            "UPDATE tracks SET (title, artist, album, album_artist, genre, year, track_number,
                                disc_number, attempts, last_attempt, recording_mbid, isrc) =
                 (SELECT title, artist, album, album_artist, genre, year, track_number,
                         disc_number, 0, last_attempt, recording_mbid, isrc
                  FROM tracks WHERE id = ?2)
             WHERE id = ?1",
            params![id, from],
        )?;
        self.tx
            .prepare_cached(&COPY_FEATURES)?
            .execute(params![id, from])?;
        Ok(())
    }

    /// Where track `id` came from when a CUE sheet made its file an album (or a sheet that
    /// failed it): the sheet's path ('' for one inside the file) and modification time, and
    /// the track's span in the file in seconds. `None`s clear them (a whole file).
    pub fn cue(
        &self,
        id: i64,
        sheet: Option<(&str, Option<i64>)>,
        span: Option<(f64, f64)>,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE tracks SET cue_sheet = ?2, cue_mtime_ns = ?3, start_s = ?4, end_s = ?5
             WHERE id = ?1",
            params![
                id,
                sheet.map(|s| s.0),
                sheet.and_then(|s| s.1),
                span.map(|s| s.0),
                span.map(|s| s.1)
            ],
        )?;
        Ok(())
    }

    /// Drops the rows of `file` (its own, and its album tracks' `file#NN`) other than the
    /// paths in `keep`: the file's row once a sheet made it an album, its tracks once it is a
    /// whole file again, a track the sheet no longer has.
    pub fn forget_other_rows(&self, file: &str, keep: &[String]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, path FROM tracks
             WHERE path = ?1 OR (path > ?1 || '#' AND path < ?1 || '$')",
        )?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([file], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, path) in rows {
            let ours =
                path == file || crate::library::split_part(&path).is_some_and(|(f, _)| f == file);
            if ours && !keep.contains(&path) {
                self.removed(id)?;
            }
        }
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
