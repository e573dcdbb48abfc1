//! The schema: opening a database file, its pragmas, and the append-only steps that bring any
//! older file up to date.
//!
//! The version lives in `pragma user_version`. Steps `1..=MIGRATIONS.len()` are hand-written
//! ([`MIGRATIONS`]); each further step adds the column of one scalar appended to
//! [`FIELDS`] after the ones those migrations made ([`MIGRATED_FIELDS`]), so a new measured
//! value needs no hand-written migration, except the steps [`LATER_MIGRATIONS`] names by
//! number: hand-written ones that came after generated ones. A file newer than this
//! playlista is refused.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{Store, Tuning};
use crate::features::record::FIELDS;

/// Hand-written steps; step `i` takes a database from `user_version = i` to `i + 1`.
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
    // 5: the disc number tag; what listeners do, per account (the Subsonic API's stars,
    // ratings, plays, skips, queue, bookmarks and own playlists). These tables are apart from
    // the analysis: re-analysis, a move (same track id) and playlist regeneration leave them,
    // a deleted track takes its rows with it (ON DELETE CASCADE).
    r#"
ALTER TABLE tracks ADD COLUMN disc_number INTEGER;

CREATE TABLE song_marks (
    account      TEXT    NOT NULL,
    track_id     INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    starred_at   INTEGER,
    rating       INTEGER,
    plays        INTEGER NOT NULL DEFAULT 0,
    last_played  INTEGER,
    skips        INTEGER NOT NULL DEFAULT 0,
    skip_after_s REAL,
    PRIMARY KEY (account, track_id)
);
CREATE INDEX song_marks_track ON song_marks (track_id);

CREATE TABLE item_marks (
    account     TEXT    NOT NULL,
    item        TEXT    NOT NULL,
    starred_at  INTEGER,
    rating      INTEGER,
    PRIMARY KEY (account, item)
);

CREATE TABLE skipped_after (
    account     TEXT    NOT NULL,
    from_track  INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    to_track    INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    skips       INTEGER NOT NULL,
    PRIMARY KEY (account, from_track, to_track)
);
CREATE INDEX skipped_after_to ON skipped_after (to_track);

CREATE TABLE play_queues (
    account     TEXT    PRIMARY KEY,
    current     INTEGER,
    position_ms INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL,
    changed_by  TEXT    NOT NULL DEFAULT '',
    tracks      TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE bookmarks (
    account     TEXT    NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    position_ms INTEGER NOT NULL,
    comment     TEXT    NOT NULL DEFAULT '',
    created     INTEGER NOT NULL,
    changed     INTEGER NOT NULL,
    PRIMARY KEY (account, track_id)
);
CREATE INDEX bookmarks_track ON bookmarks (track_id);

CREATE TABLE own_playlists (
    id          INTEGER PRIMARY KEY,
    account     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    comment     TEXT    NOT NULL DEFAULT '',
    public      INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    changed     INTEGER NOT NULL
);
CREATE TABLE own_playlist_tracks (
    playlist_id INTEGER NOT NULL REFERENCES own_playlists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);
CREATE INDEX own_playlist_tracks_track ON own_playlist_tracks (track_id);
"#,
    // 6: the file's device and inode at its scan (the server streams a file only while they
    // match; NULL until the next scan of an older row).
    r#"
ALTER TABLE tracks ADD COLUMN dev INTEGER;
ALTER TABLE tracks ADD COLUMN inode INTEGER;
"#,
];

/// The first rows of [`FIELDS`], whose `features` columns [`MIGRATIONS`] creates. Every row
/// after them is one generated schema step, after all of [`MIGRATIONS`]: so a hand-written
/// step may be appended only while no row has been (as now). Never change this number.
const MIGRATED_FIELDS: usize = 15;

/// Hand-written steps among the generated ones, by their step number `i` (from
/// `user_version = i`). A new one takes the number after the last step of the schema at the
/// time; the generated steps after it shift past it.
const LATER_MIGRATIONS: &[(usize, &str)] = &[
    // 7: CUE sheets. A track of a single-file album is a row of its own, its path the
    // album file's with `#` and its number ([`crate::library::part_path`]); these say
    // which sheet made it (its path, '' for a sheet embedded in the file) and when that
    // sheet last changed, and where in the file the track lies. NULL for whole files.
    (
        7,
        r#"
ALTER TABLE tracks ADD COLUMN cue_sheet TEXT;
ALTER TABLE tracks ADD COLUMN cue_mtime_ns INTEGER;
ALTER TABLE tracks ADD COLUMN start_s REAL;
ALTER TABLE tracks ADD COLUMN end_s REAL;
"#,
    ),
];

/// The schema version this playlista writes and reads.
pub fn version() -> usize {
    MIGRATIONS.len() + FIELDS.len().saturating_sub(MIGRATED_FIELDS) + LATER_MIGRATIONS.len()
}

/// Step `i` (from `user_version = i`): a hand-written migration or a generated column.
fn step(i: usize) -> String {
    if let Some((_, sql)) = LATER_MIGRATIONS.iter().find(|(n, _)| *n == i) {
        return sql.to_string();
    }
    match MIGRATIONS.get(i) {
        Some(sql) => sql.to_string(),
        None => {
            let later_before = LATER_MIGRATIONS.iter().filter(|(n, _)| *n < i).count();
            let f = &FIELDS[MIGRATED_FIELDS + i - MIGRATIONS.len() - later_before];
            format!(
                "ALTER TABLE features ADD COLUMN {} {};",
                f.name,
                f.kind.sql_type()
            )
        }
    }
}

/// Whether `e` is SQLite's "database is locked" (another connection holds what this one needs).
fn busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    || f.code == rusqlite::ErrorCode::DatabaseLocked
        )
    })
}

fn user_version(conn: &Connection) -> Result<usize> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

impl Store {
    /// Opens (creating if needed) the database for writing and brings its schema up to date.
    /// A failure names its cause and the folder ([`super::explain`]): a full disk, a
    /// read-only mount, a damaged file.
    pub fn open(path: &Path, tuning: Tuning) -> Result<Store> {
        Self::open_write(path, tuning).map_err(|e| super::explain(e, path))
    }

    fn open_write(path: &Path, tuning: Tuning) -> Result<Store> {
        super::create_folder(path)?;
        let conn =
            Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut store = Store { conn };
        // A new file's switch to WAL (and the first migration) may find another process doing
        // the same: SQLite then answers "locked" at once instead of calling the busy handler,
        // to avoid a deadlock. Trying again shortly after finds the work done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match store.pragmas(tuning).and_then(|()| store.migrate()) {
                Err(e) if busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                done => return done.map(|()| store),
            }
        }
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
        let found = user_version(&store.conn)?;
        anyhow::ensure!(
            found == version(),
            "{} has schema version {found}; this playlista reads version {}",
            path.display(),
            version()
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

    /// Brings the schema up to date. Each step runs in a `BEGIN IMMEDIATE` transaction that
    /// reads the version again once it holds the write lock: two processes opening a new or
    /// older file at once never both run a step (the second waits, then finds it done).
    fn migrate(&mut self) -> Result<()> {
        if user_version(&self.conn)? == version() {
            return Ok(()); // the common case, without taking the write lock
        }
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found = user_version(&tx)?;
            anyhow::ensure!(
                found <= version(),
                "the database has schema version {found}, newer than this playlista ({}): \
                 upgrade playlista",
                version()
            );
            if found == version() {
                return Ok(());
            }
            tx.execute_batch(&step(found))
                .with_context(|| format!("schema migration {} failed", found + 1))?;
            tx.pragma_update(None, "user_version", (found + 1) as i64)?;
            tx.commit()?;
        }
    }

    pub fn integrity_ok(&self) -> Result<bool> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(r == "ok")
    }
}
