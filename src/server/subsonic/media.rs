//! Files: `stream` and `download` (the original file, never transcoded, with Range, through
//! [`crate::server::stream::send`]) and `getCoverArt` (the picture embedded in the file).
//!
//! In: an id (a song's; for cover art also an album's or artist's) and the request headers.
//! Out: the bytes, or a Subsonic error (10 without an id, 70 for an unknown id or a file
//! without a picture).
//!
//! Cover art is read from the file on each request, opened only while it is the file analysed
//! ([`files::open_track`]): the container's metadata is probed (no audio is decoded, pictures
//! over [`crate::audio::MAX_PICTURE_BYTES`] skipped) through the same guarded mapping and
//! length checks as the analysis, so a file that changes or lies under us fails alone. Only
//! JPEG, PNG, GIF and WebP are served, with `nosniff`. `size` is ignored: the picture is sent
//! as stored. A few reads at a time ([`Work::Cover`]), so a grid of covers cannot crowd out
//! the disk.

use std::path::Path;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::protocol::{Error, Params};
use super::{Ctx, song_index};
use crate::audio::cover::{embedded_in, raster_type};
use crate::server::blocking::{self, Work};
use crate::server::{AppState, Credentials, files};

/// Tracks of an album (or albums of an artist) tried before giving up on a picture.
const COVER_TRIES: usize = 4;

pub async fn stream(
    s: &AppState,
    p: &Params,
    request: &Parts,
    download: bool,
) -> Result<Response, Error> {
    let catalog = s.catalog.get();
    let i = song_index(&catalog, p.required("id")?)?;
    let id = catalog.lib.tracks[i].id;
    Ok(crate::server::stream::send(s, id, request, download).await)
}

pub async fn cover_art(s: &AppState, p: &Params, account: Credentials) -> Result<Response, Error> {
    let id = p.required("id")?.to_string();
    let state = s.clone();
    let catalog = s.catalog.get();
    let (catalog, tracks) = blocking::run(Work::Subsonic, move || {
        let x = Ctx {
            server: &state,
            catalog: &catalog,
            account: &account,
        };
        let tracks = cover_tracks(&x, &id);
        (catalog, tracks)
    })
    .await
    .ok_or_else(|| Error::generic("internal error"))?;
    let tracks = tracks?;
    let roots = s.library.clone();
    let picture = blocking::run(Work::Cover, move || {
        tracks.iter().find_map(|&i| {
            let track = &catalog.lib.tracks[i];
            let (file, _) = files::open_track(&roots, track).ok()?;
            let picture = embedded_in(&file, Path::new(track.file()))?;
            let head = &picture.data[..picture.data.len().min(12)];
            Some((raster_type(&picture.media_type, head)?, picture.data))
        })
    })
    .await
    .flatten();
    let (content_type, data) = picture.ok_or_else(|| Error::not_found("Cover art"))?;
    let mut response = Response::new(Body::from(Vec::from(data)));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(response)
}

/// The tracks that may hold the picture for `id`: a song's own, else the first tracks of an
/// album, else the first track of each of an artist's albums.
fn cover_tracks(x: &Ctx, id: &str) -> Result<Vec<usize>, Error> {
    let ix = x.index();
    Ok(if let Some(a) = ix.album(id) {
        ix.albums[a]
            .tracks
            .iter()
            .copied()
            .take(COVER_TRIES)
            .collect()
    } else if let Some(a) = ix.artist(id) {
        ix.artists[a]
            .albums
            .iter()
            .filter_map(|&al| ix.albums[al].tracks.first().copied())
            .take(COVER_TRIES)
            .collect()
    } else {
        vec![x.song(id).map_err(|_| Error::not_found("Cover art"))?]
    })
}
