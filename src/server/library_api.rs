//! The page's library API: search, browse (artists, albums, genres, folders), a track's
//! analysis in words and numbers, and cover art.
//!
//! In: requests and the current catalog with its [`Index`] and [`Search`]. Out: JSON (tracks
//! as [`TrackView`], albums as [`AlbumView`], artists as [`ArtistView`]); a 4xx with a reason
//! for a bad or unknown id. Nothing here touches the filesystem but cover art, which goes
//! through [`cover`]; folder paths are matched against the snapshot's own paths only.
//!
//! - `GET /api/v1/search?q=TEXT&count=N`: `{tracks, albums, artists, genres}`, ranked.
//! - `GET /api/v1/artists`, `/api/v1/artists/{id}` (its albums and similar artists).
//! - `GET /api/v1/albums?sort=name|newest|year|artist&offset=&count=`: `{total, albums}`.
//! - `GET /api/v1/albums/{id}`: the album and its tracks in disc and track order.
//! - `GET /api/v1/genres`, `/api/v1/genres/{name}` (its albums).
//! - `GET /api/v1/folders?path=DIR`: `{path, parent, folders: [{name, path, tracks}], tracks}`.
//! - `GET /api/v1/tracks/{id}/about`: the track, its analysis in words, its album and artist
//!   ids, its nearest tracks and the playlists it is in with why.
//! - `GET /api/v1/cover/{id}`: the embedded picture of a track, album or artist (a neutral
//!   SVG when it has none).
//! - `GET /api/v1/map`: every track's place on the map ([`super::map`]'s binary answer),
//!   rendered once per snapshot.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{ApiError, compute, track_index};
use super::catalog::{Catalog, TrackView};
use super::index::Index;
use super::rendered::Key;
use super::search;
use super::{AppState, cover};
use crate::playlist::{flow, vocab};

/// Most entries of one kind a list or search answers with.
const MAX_COUNT: usize = 500;
/// Nearest tracks shown with a track.
const SOUNDS_LIKE: usize = 5;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/search", get(search))
        .route("/api/v1/artists", get(artists))
        .route("/api/v1/artists/{id}", get(artist))
        .route("/api/v1/albums", get(albums))
        .route("/api/v1/albums/{id}", get(album))
        .route("/api/v1/genres", get(genres))
        .route("/api/v1/genres/{name}", get(genre))
        .route("/api/v1/folders", get(folders))
        .route("/api/v1/tracks/{id}/about", get(about))
        .route("/api/v1/cover/{id}", get(cover_art))
        .route("/api/v1/map", get(map))
}

/// An album as lists show it.
#[derive(Serialize)]
pub struct AlbumView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub artist: &'a str,
    pub artist_id: &'a str,
    pub year: Option<u32>,
    pub genre: Option<&'a str>,
    pub track_count: usize,
    pub duration_s: f64,
    pub cover: String,
}

pub fn album_view(ix: &Index, a: usize) -> AlbumView<'_> {
    let album = &ix.albums[a];
    let artist = &ix.artists[album.artist];
    AlbumView {
        id: &album.id,
        name: &album.name,
        artist: &artist.name,
        artist_id: &artist.id,
        year: album.year,
        genre: album.genre.as_deref(),
        track_count: album.tracks.len(),
        duration_s: album.duration_s,
        cover: format!("/api/v1/cover/{}", album.id),
    }
}

#[derive(Serialize)]
pub struct ArtistView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub album_count: usize,
    pub cover: String,
}

pub fn artist_view(ix: &Index, a: usize) -> ArtistView<'_> {
    let artist = &ix.artists[a];
    ArtistView {
        id: &artist.id,
        name: &artist.name,
        album_count: artist.albums.len(),
        cover: format!("/api/v1/cover/{}", artist.id),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    count: Option<usize>,
}

async fn search(
    State(s): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let Some(text) = q.q else {
        return Err(ApiError::bad("q is the text to search for"));
    };
    let words = search::query_words(&text).map_err(ApiError::bad)?;
    let count = q.count.unwrap_or(20).clamp(1, MAX_COUNT);
    let c = s.catalog.get();
    compute(move || {
        let ix = c.index();
        let found = c.search().find(ix, &words, count);
        let tracks: Vec<TrackView> = found.tracks.iter().map(|&i| c.view(i)).collect();
        let albums: Vec<AlbumView> = found.albums.iter().map(|&a| album_view(ix, a)).collect();
        let artists: Vec<ArtistView> = found.artists.iter().map(|&a| artist_view(ix, a)).collect();
        let genres: Vec<_> = found
            .genres
            .iter()
            .map(|&g| json!({"name": ix.genres[g].name, "songs": ix.genres[g].songs}))
            .collect();
        Json(json!({ "tracks": tracks, "albums": albums, "artists": artists, "genres": genres }))
            .into_response()
    })
    .await
}

async fn artists(State(s): State<AppState>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    compute(move || {
        let ix = c.index();
        let all: Vec<ArtistView> = (0..ix.artists.len()).map(|a| artist_view(ix, a)).collect();
        Json(all).into_response()
    })
    .await
}

async fn artist(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let a = c.index().artist(&id).ok_or(ApiError::not_found("artist"))?;
    compute(move || {
        let ix = c.index();
        let albums: Vec<AlbumView> = ix.artists[a]
            .albums
            .iter()
            .map(|&al| album_view(ix, al))
            .collect();
        let similar: Vec<ArtistView> = ix
            .similar_artists(&c.lib, a, 8)
            .into_iter()
            .map(|b| artist_view(ix, b))
            .collect();
        Json(json!({ "artist": artist_view(ix, a), "albums": albums, "similar": similar }))
            .into_response()
    })
    .await
}

#[derive(Deserialize)]
struct AlbumsQuery {
    sort: Option<String>,
    offset: Option<usize>,
    count: Option<usize>,
}

async fn albums(
    State(s): State<AppState>,
    Query(q): Query<AlbumsQuery>,
) -> Result<Response, ApiError> {
    let sort = q.sort.unwrap_or_else(|| "name".into());
    if !["name", "newest", "year", "artist"].contains(&sort.as_str()) {
        return Err(ApiError::bad("sort is one of name, newest, year, artist"));
    }
    let offset = q.offset.unwrap_or(0);
    let count = q.count.unwrap_or(60).clamp(1, MAX_COUNT);
    let c = s.catalog.get();
    compute(move || {
        let ix = c.index();
        let mut order: Vec<usize> = (0..ix.albums.len()).collect();
        match sort.as_str() {
            "newest" => order.sort_by_key(|&a| std::cmp::Reverse(ix.albums[a].newest_track)),
            "year" => order.sort_by_key(|&a| (std::cmp::Reverse(ix.albums[a].year), a)),
            "artist" => order.sort_by_key(|&a| (ix.albums[a].artist, a)),
            _ => {}
        }
        let page: Vec<AlbumView> = order
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|a| album_view(ix, a))
            .collect();
        Json(json!({ "total": ix.albums.len(), "albums": page })).into_response()
    })
    .await
}

async fn album(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let a = c.index().album(&id).ok_or(ApiError::not_found("album"))?;
    compute(move || {
        let ix = c.index();
        let tracks: Vec<_> = ix.albums[a]
            .tracks
            .iter()
            .map(|&i| {
                let tags = &c.lib.tracks[i].measured.tags;
                json!({ "disc": tags.disc_number, "number": tags.track_number, "track": c.view(i) })
            })
            .collect();
        Json(json!({ "album": album_view(ix, a), "tracks": tracks })).into_response()
    })
    .await
}

async fn genres(State(s): State<AppState>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let ix = c.index();
    let all: Vec<_> = ix
        .genres
        .iter()
        .map(|g| json!({ "name": g.name, "songs": g.songs, "albums": g.albums }))
        .collect();
    Ok(Json(all).into_response())
}

async fn genre(State(s): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let wanted = name.trim().to_lowercase();
    if !c
        .index()
        .genres
        .iter()
        .any(|g| g.name.to_lowercase() == wanted)
    {
        return Err(ApiError::not_found("genre"));
    }
    compute(move || {
        let ix = c.index();
        let albums: Vec<AlbumView> = (0..ix.albums.len())
            .filter(|&a| {
                ix.albums[a].tracks.iter().any(|&i| {
                    c.lib.tracks[i]
                        .measured
                        .tags
                        .genre
                        .as_deref()
                        .is_some_and(|g| g.trim().to_lowercase() == wanted)
                })
            })
            .map(|a| album_view(ix, a))
            .collect();
        Json(json!({ "name": name, "albums": albums })).into_response()
    })
    .await
}

#[derive(Deserialize)]
struct FolderQuery {
    path: Option<String>,
}

/// The folder all tracks share (`/` when they share none).
fn common_folder(c: &Catalog) -> String {
    let mut files = c.lib.tracks.iter().map(|t| t.file());
    let Some(first) = files.next() else {
        return "/".into();
    };
    let mut common = first
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir)
        .to_string();
    for f in files {
        while !(f.starts_with(&common) && f[common.len()..].starts_with('/')) {
            match common.rsplit_once('/') {
                Some((up, _)) => common = up.to_string(),
                None => return "/".into(),
            }
        }
    }
    if common.is_empty() {
        "/".into()
    } else {
        common
    }
}

async fn folders(
    State(s): State<AppState>,
    Query(q): Query<FolderQuery>,
) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    compute(move || {
        let root = common_folder(&c);
        let path = q.path.filter(|p| !p.is_empty()).unwrap_or_else(|| root.clone());
        let dir = path.trim_end_matches('/');
        let mut sub: BTreeMap<&str, usize> = BTreeMap::new();
        let mut here: Vec<usize> = Vec::new();
        for (i, t) in c.lib.tracks.iter().enumerate() {
            let Some(rest) = t.file().strip_prefix(dir).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            match rest.split_once('/') {
                Some((folder, _)) => *sub.entry(folder).or_default() += 1,
                None => here.push(i),
            }
        }
        if sub.is_empty() && here.is_empty() {
            return ApiError::not_found("folder").into_response();
        }
        let ix = c.index();
        here.sort_by_key(|&i| (ix.album_of[i], c.lib.tracks[i].path.as_str()));
        let folders: Vec<_> = sub
            .into_iter()
            .map(|(name, tracks)| json!({ "name": name, "path": format!("{dir}/{name}"), "tracks": tracks }))
            .collect();
        let tracks: Vec<TrackView> = here.iter().map(|&i| c.view(i)).collect();
        let parent = (path != root)
            .then(|| dir.rsplit_once('/').map(|(up, _)| if up.is_empty() { "/" } else { up }))
            .flatten();
        Json(json!({ "path": path, "root": root, "parent": parent, "folders": folders, "tracks": tracks }))
            .into_response()
    })
    .await
}

async fn about(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let i = track_index(&c, id)?;
    compute(move || {
        let ix = c.index();
        let m = &c.lib.tracks[i].measured;
        let album = ix.album_of[i];
        let words = json!({
            "tempo": m.bpm.map(vocab::tempo_word),
            "energy": m.danceability.map(vocab::energy_word),
            "brightness": m.spectral_centroid.map(vocab::brightness_word),
        });
        let numbers = json!({
            "bpm": m.bpm,
            "bpm_confidence": m.bpm_confidence,
            "key_strength": m.key_strength,
            "loudness_lufs": m.loudness_lufs,
            "danceability": m.danceability,
            "energy": c.lib.energy[i],
            "onset_rate": m.onset_rate,
            "spectral_centroid": m.spectral_centroid,
            "sample_rate": m.sample_rate,
            "channels": m.channels,
            "codec": m.codec,
        });
        let near = flow::radio(&c.lib, i, SOUNDS_LIKE + 1, &Default::default());
        let sounds_like: Vec<_> = near
            .entries
            .iter()
            .filter(|e| e.track != i)
            .map(|e| json!({ "track": c.view(e.track), "why": flow::relation(&c.lib, i, e.track, "this track") }))
            .collect();
        let lists: Vec<_> = c
            .playlists
            .iter()
            .filter_map(|p| {
                let (_, why) = p.tracks.iter().find(|(t, _)| *t == i)?;
                Some(json!({ "id": p.id, "name": p.name, "method": p.method, "why": why }))
            })
            .collect();
        Json(json!({
            "track": c.view(i),
            "album_id": ix.albums[album].id,
            "artist_id": ix.artists[ix.albums[album].artist].id,
            "full": c.lib.sound[i].is_some(),
            "words": words,
            "numbers": numbers,
            "sounds_like": sounds_like,
            "playlists": lists,
        }))
        .into_response()
    })
    .await
}

async fn cover_art(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog.get();
    let Some(tracks) = cover::tracks_for(&c, &id) else {
        return ApiError::not_found("track, album or artist").into_response();
    };
    match cover::send(&s, c, tracks).await {
        Some(r) => r,
        None => cover::placeholder(),
    }
}

async fn map(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    compute(move || {
        let body = c.rendered.get_or_render(Key::Map, || {
            Ok::<_, std::convert::Infallible>(Bytes::from(c.map().bytes(&c.lib)))
        });
        match body {
            Ok(body) => body.respond(
                &headers,
                [(header::CONTENT_TYPE, "application/octet-stream")],
            ),
            Err(never) => match never {},
        }
    })
    .await
}
