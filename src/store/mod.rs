//! The SQLite database: what playlista knows of every track, its playlists and its look-up
//! cache. Nothing outside this module writes SQL.
//!
//! In: file facts from [`crate::library`], measurements from [`crate::analysis`] (as
//! [`Record`]s), failures ([`FailKind`]), playlists, look-up answers. Out: what is known about
//! each track, for the scanner (has it changed?), `--status`, playlists, look-ups and the
//! server.
//!
//! Layout, by job:
//! - [`schema`]: opening, pragmas, migrations (hand-written, then one generated step per
//!   scalar appended to [`FIELDS`]);
//! - [`tracks`]: what is known of each track: status, failures, counts, the analysed tracks
//!   and their embeddings;
//! - [`batch`]: the one write transaction of a batch of the pipeline;
//! - [`playlists`]: stored playlists;
//! - [`listening`]: what listeners do, per account (stars, ratings, plays, skips, queue,
//!   bookmarks, own playlists), apart from the analysis;
//! - [`lookup_cache`]: the on-line look-ups' answers;
//! - [`lock`]: one analysis run at a time per database (a lock file beside it);
//! - [`fault`]: what a failed open or write means, in words, with the folder named.
//!
//! One file (`playlista.db`), WAL, `synchronous=NORMAL`: a crash or `kill -9` loses at most the
//! open transaction, never what was committed. The pipeline's batch writer (through [`Batch`])
//! writes the analysis, the server's listening writer ([`Store::apply`]) the listening
//! tables; readers open their own connections. The `features`
//! columns of the scalars are built from [`FIELDS`], at full precision.

mod batch;
mod fault;
mod listening;
mod lock;
mod lookup_cache;
mod playlists;
mod schema;
#[cfg(test)]
mod tests;
mod tracks;

use std::path::Path;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::features::Record;
use crate::features::record::{FIELDS, Kind, Value};

pub use crate::analysis::FailKind;
pub use batch::{Batch, RunTotals};
pub use fault::explain;
pub use listening::{Bookmark, ItemMark, Listened, OwnPlaylist, PlayQueue, SongMark, Write};
pub use lock::{Held, Holder, RunLock, WhenBusy};
pub use lookup_cache::{CachedRow, Recording, cache_key};
pub use playlists::{PlaylistRow, SavedPlaylist};
pub use tracks::{Known, RunSummary, Status, Tier, TrackStatus};

/// How much memory SQLite may use for its page cache.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub cache_kib: u32,
}

/// An analysed track as stored. Its record holds the scalars and tags; the vectors are read
/// apart ([`Store::embeddings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrack {
    pub id: i64,
    pub path: String,
    /// The file's size in bytes, modification time (ns since the epoch), device and inode
    /// when it was scanned (the last two `None` in a row from before they were kept).
    pub size: u64,
    pub mtime_ns: i64,
    pub identity: Option<(u64, u64)>,
    /// For a track of a single-file album (its path a [`crate::library::part_path`]): where
    /// it lies in the file, `(start, end)` in seconds.
    pub span: Option<(f64, f64)>,
    pub measured: Record,
}

impl StoredTrack {
    /// The file that holds the track's audio: its path, or for a track of a single-file album
    /// the album's file.
    pub fn file(&self) -> &str {
        crate::library::split_part(&self.path).map_or(&self.path, |(file, _)| file)
    }

    /// The part of its file the server sends as a WAV decoded on the fly
    /// ([`crate::audio::cut`]), in seconds: a track of an album's span, or the whole of a
    /// file in a codec browsers and phone apps do not play (ALAC, big-endian PCM as in AIFF,
    /// DSD, and whatever needed ffmpeg: WMA, WavPack, APE, ...). `None`: the file as it is.
    pub fn sent_as_wav(&self) -> Option<(f64, f64)> {
        let codec = self.measured.codec.as_str();
        let unplayable = codec == "alac"
            || codec.starts_with("dsd")
            || (codec.starts_with("pcm_") && codec.ends_with("be"))
            || codec.starts_with(crate::audio::ffmpeg::CODEC_PREFIX);
        self.span
            .or_else(|| unplayable.then_some((0.0, self.measured.duration_s)))
    }

    /// The extension of what the server sends for the track: its file's, or `wav` for one
    /// it [sends as a WAV](Self::sent_as_wav).
    pub fn served_format(&self) -> String {
        if self.sent_as_wav().is_some() {
            return "wav".into();
        }
        std::path::Path::new(self.file())
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The modification time in Unix seconds.
    pub fn mtime_s(&self) -> i64 {
        self.mtime_ns.div_euclid(1_000_000_000)
    }
}

pub struct Store {
    conn: Connection,
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Creates the folder that holds the database file `db` (and its lock file).
fn create_folder(db: &Path) -> Result<()> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Paths are stored as text; a name that is not UTF-8 cannot be stored faithfully.
pub fn path_text(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("file name is not UTF-8: {}", path.display()))
}

/// The `features` columns of every scalar, in [`FIELDS`] order: `a, b, c`, each prefixed by
/// `prefix` (`f.` in a join).
fn field_columns(prefix: &str) -> String {
    FIELDS
        .iter()
        .map(|f| format!("{prefix}{}", f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`field_columns`] without a prefix, built once.
static FIELD_COLUMNS: LazyLock<String> = LazyLock::new(|| field_columns(""));

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Real(Some(x)) => ValueRef::Real(x),
            Value::Integer(Some(i)) => ValueRef::Integer(i),
            Value::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Value::Real(None) | Value::Integer(None) | Value::Text(None) => ValueRef::Null,
        }))
    }
}

/// A stored scalar as a [`Value`] of `kind`; anything else (NULL, a value of another type)
/// reads as empty.
fn value_of(v: ValueRef<'_>, kind: Kind) -> Value<'_> {
    match (kind, v) {
        (Kind::Real, ValueRef::Real(x)) => Value::Real(Some(x)),
        (Kind::Real, ValueRef::Integer(i)) => Value::Real(Some(i as f64)),
        (Kind::Real, _) => Value::Real(None),
        (Kind::Integer, ValueRef::Integer(i)) => Value::Integer(Some(i)),
        (Kind::Integer, _) => Value::Integer(None),
        (Kind::Text, ValueRef::Text(t)) => Value::Text(std::str::from_utf8(t).ok()),
        (Kind::Text, _) => Value::Text(None),
    }
}

/// Fills `record`'s scalars from the row's columns `first..first + FIELDS.len()` (as selected
/// with [`field_columns`]).
fn read_fields(row: &rusqlite::Row<'_>, first: usize, record: &mut Record) -> rusqlite::Result<()> {
    for (i, f) in FIELDS.iter().enumerate() {
        (f.set)(record, value_of(row.get_ref(first + i)?, f.kind));
    }
    Ok(())
}
