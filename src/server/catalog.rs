//! What the server shows: an immutable snapshot of the database (analysed tracks, stored
//! playlists, counts), shared by every request and swapped whole after each change.
//!
//! In: the database file. Out: [`Catalog`] (look-ups by track and playlist id, the feature
//! space for radio and paths) and [`TrackView`], the one JSON shape of a track that every API
//! uses. Requests never touch SQLite: they read the current `Arc<Catalog>`, so a slow disk or a
//! running analysis never stalls a page, and a snapshot is consistent within a request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::Result;
use serde::Serialize;

use super::index::Index;
use super::map::{Anchor, Map};
use super::rendered::Rendered;
use super::search::Search;
use crate::features::{PitchClass, Scale};
use crate::playlist::space::Library;
use crate::playlist::{self, display_name};
use crate::store::{Status, Store, Tuning, now_s};

/// One stored playlist, its tracks as indices into [`Catalog::lib`].
pub struct StoredList {
    pub id: i64,
    pub method: String,
    pub name: String,
    pub rule: String,
    pub updated_at: i64,
    /// `(track index, why)` in play order.
    pub tracks: Vec<(usize, String)>,
    pub duration_s: f64,
}

/// The database as of one moment.
pub struct Catalog {
    pub lib: Library,
    pub playlists: Vec<StoredList>,
    /// Unix seconds when this snapshot was read.
    pub loaded_at: i64,
    /// Bodies rendered from this snapshot, sent again as they are.
    pub rendered: Rendered,
    by_track: HashMap<i64, usize>,
    by_playlist: HashMap<i64, usize>,
    /// Artists, albums, genres and folders, built by the first request that browses.
    index: OnceLock<Index>,
    /// The word index, built by the first search.
    search: OnceLock<Search>,
    /// The map, built by the first request for it, fitted onto `anchor`.
    map: OnceLock<Arc<Map>>,
    anchor: Anchor,
}

impl Catalog {
    /// Reads the whole snapshot (blocking: call from a blocking thread); its map will be
    /// fitted onto `anchor`, the previous snapshot's.
    pub fn load(store: &Store, anchor: Anchor) -> Result<Catalog> {
        let lib = playlist::load(store)?;
        let by_track: HashMap<i64, usize> = lib
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        let playlists: Vec<StoredList> = store
            .all_playlists()?
            .into_iter()
            .map(|p| {
                let tracks: Vec<(usize, String)> = p
                    .tracks
                    .into_iter()
                    .filter_map(|(id, why)| by_track.get(&id).map(|&i| (i, why)))
                    .collect();
                let duration_s = tracks
                    .iter()
                    .map(|&(i, _)| lib.tracks[i].measured.duration_s)
                    .sum();
                StoredList {
                    id: p.id,
                    method: p.method,
                    name: p.name,
                    rule: p.rule,
                    updated_at: p.updated_at,
                    tracks,
                    duration_s,
                }
            })
            .collect();
        let by_playlist = playlists
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        Ok(Catalog {
            lib,
            playlists,
            loaded_at: now_s(),
            rendered: Rendered::default(),
            by_track,
            by_playlist,
            index: OnceLock::new(),
            search: OnceLock::new(),
            map: OnceLock::new(),
            anchor,
        })
    }

    /// The index of track `id`, if it is analysed.
    pub fn track(&self, id: i64) -> Option<usize> {
        self.by_track.get(&id).copied()
    }

    pub fn playlist(&self, id: i64) -> Option<&StoredList> {
        self.by_playlist.get(&id).map(|&i| &self.playlists[i])
    }

    /// The file of track `id`: the only way a request reaches the filesystem.
    pub fn file(&self, id: i64) -> Option<&Path> {
        self.track(id).map(|i| Path::new(&self.lib.tracks[i].path))
    }

    /// Track `i`'s title: its tag, else the name made from its file.
    pub fn title(&self, i: usize) -> String {
        track_title(&self.lib, i)
    }

    /// The snapshot's artist/album index (built here by the first request that needs it).
    pub fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(&self.lib))
    }

    /// The snapshot's word index (built here by the first search).
    pub fn search(&self) -> &Search {
        self.search
            .get_or_init(|| Search::build(&self.lib, self.index()))
    }

    /// The snapshot's map (built here by the first request for it).
    pub fn map(&self) -> &Arc<Map> {
        self.map
            .get_or_init(|| Arc::new(Map::build(&self.lib, self.anchor.as_deref())))
    }

    /// What the next snapshot's map is fitted onto.
    fn next_anchor(&self) -> Anchor {
        self.map.get().cloned().or_else(|| self.anchor.clone())
    }

    pub fn view(&self, i: usize) -> TrackView<'_> {
        TrackView::new(&self.lib, i)
    }
}

fn track_title(lib: &Library, i: usize) -> String {
    match lib.tracks[i].measured.tags.title.as_deref() {
        Some(title) => title.to_string(),
        None => display_name(lib, i),
    }
}

/// A track as every JSON API shows it.
#[derive(Debug, Serialize)]
pub struct TrackView<'a> {
    pub id: i64,
    pub title: String,
    pub artist: Option<&'a str>,
    pub album: Option<&'a str>,
    pub genre: Option<&'a str>,
    pub year: Option<u32>,
    pub duration_s: f64,
    pub bpm: Option<f64>,
    pub key: Option<&'a str>,
    pub scale: Option<&'a str>,
    /// Camelot wheel position (`8A`), for DJs.
    pub camelot: Option<String>,
    pub danceability: Option<f64>,
    pub loudness_lufs: Option<f64>,
    /// Full mode: the three most probable MusiCNN tags ("rock", "guitar", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sounds_like: Option<Vec<&'static str>>,
    /// The extension of what `stream` sends (`wav` for a track cut from an album).
    pub format: String,
    /// Where the audio is: `/stream/{id}`.
    pub stream: String,
}

impl<'a> TrackView<'a> {
    pub fn new(lib: &'a Library, i: usize) -> TrackView<'a> {
        let t = &lib.tracks[i];
        let m = &t.measured;
        TrackView {
            id: t.id,
            title: track_title(lib, i),
            artist: m.tags.artist.as_deref(),
            album: m.tags.album.as_deref(),
            genre: m.tags.genre.as_deref(),
            year: m.tags.year,
            duration_s: m.duration_s,
            bpm: m.bpm,
            key: m.key.map(PitchClass::name),
            scale: m.scale.map(Scale::name),
            camelot: lib.camelot[i].map(|c| c.to_string()),
            danceability: m.danceability,
            loudness_lufs: m.loudness_lufs,
            sounds_like: lib.sound[i].map(|s| s.tag_names().collect()),
            format: t.served_format(),
            stream: format!("/stream/{}", t.id),
        }
    }
}

/// The current snapshot and how to read a new one. The counts (`Status`) are kept apart: they
/// change with every batch of a run and are cheap to read, while the catalog is re-read only
/// when tracks or playlists changed.
pub struct Shared {
    current: RwLock<Arc<Catalog>>,
    status: RwLock<Arc<Status>>,
    db: PathBuf,
    tuning: Tuning,
    /// How the library is analysed, for the tiers' time left: (workers, full mode).
    plan: (usize, bool),
}

impl Shared {
    pub fn open(db: PathBuf, tuning: Tuning, plan: (usize, bool)) -> Result<Shared> {
        let store = Store::open(&db, tuning)?;
        let shared = Shared {
            current: RwLock::new(Arc::new(Catalog::load(&store, None)?)),
            status: RwLock::new(Arc::new(Status::default())),
            db,
            tuning,
            plan,
        };
        write(&shared.status, Arc::new(shared.planned(&store)?));
        Ok(shared)
    }

    fn planned(&self, store: &Store) -> Result<Status> {
        let mut status = store.status()?;
        status.plan(self.plan.0, self.plan.1);
        Ok(status)
    }

    pub fn get(&self) -> Arc<Catalog> {
        read(&self.current)
    }

    /// The library's counts as of the last batch.
    pub fn status(&self) -> Arc<Status> {
        read(&self.status)
    }

    /// Re-reads the counts (blocking).
    pub fn refresh_status(&self) -> Result<()> {
        let store = Store::open_read(&self.db, self.tuning)?;
        write(&self.status, Arc::new(self.planned(&store)?));
        Ok(())
    }

    /// Reads the database again and swaps the snapshot and the counts (blocking).
    pub fn reload(&self) -> Result<()> {
        let store = Store::open_read(&self.db, self.tuning)?;
        let anchor = self.get().next_anchor();
        write(&self.current, Arc::new(Catalog::load(&store, anchor)?));
        write(&self.status, Arc::new(self.planned(&store)?));
        Ok(())
    }
}

fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    match lock.read() {
        Ok(c) => c.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write<T>(lock: &RwLock<Arc<T>>, value: Arc<T>) {
    match lock.write() {
        Ok(mut c) => *c = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}
