//! Cover art for the web page and Subsonic: the picture embedded in a track's file, for a
//! song, an album (its first tracks) or an artist (the first track of its first albums).
//!
//! In: the catalog snapshot and an id (a track id, or an index id `al-…` / `ar-…`). Out: the
//! JPEG, PNG, GIF or WebP bytes with `nosniff` and a day of private caching, or `None`; for
//! the page, [`placeholder`] stands in when a known track, album or artist has no picture.
//!
//! The picture is read from the file on each request, opened only while it is the file
//! analysed ([`files::open_track`]): the container's metadata is probed (no audio is decoded,
//! pictures over [`crate::audio::MAX_PICTURE_BYTES`] skipped) through the same guarded mapping
//! and length checks as the analysis, so a file that changes or lies under us fails alone. A
//! few reads at a time ([`Work::Cover`]), so a grid of covers cannot crowd out the disk.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::blocking::{self, Work};
use super::catalog::Catalog;
use super::{AppState, files};
use crate::audio::cover::{embedded_in, raster_type};

/// What the page shows for music without a picture: a note on a tinted square.
const PLACEHOLDER: &str = include_str!("web/no-cover.svg");

/// Tracks of an album (or albums of an artist) tried before giving up on a picture.
const COVER_TRIES: usize = 4;

/// The tracks that may hold the picture for `id`: a song's own, else the first tracks of an
/// album, else the first track of each of an artist's albums; `None` for an unknown id.
pub fn tracks_for(catalog: &Catalog, id: &str) -> Option<Vec<usize>> {
    let ix = catalog.index();
    if let Some(a) = ix.album(id) {
        return Some(
            ix.albums[a]
                .tracks
                .iter()
                .copied()
                .take(COVER_TRIES)
                .collect(),
        );
    }
    if let Some(a) = ix.artist(id) {
        return Some(
            ix.artists[a]
                .albums
                .iter()
                .filter_map(|&al| ix.albums[al].tracks.first().copied())
                .take(COVER_TRIES)
                .collect(),
        );
    }
    let track = id.trim().parse::<i64>().ok()?;
    catalog.track(track).map(|i| vec![i])
}

/// The first picture found in `tracks`, as a response.
pub async fn send(s: &AppState, catalog: Arc<Catalog>, tracks: Vec<usize>) -> Option<Response> {
    let roots = s.library.clone();
    let (content_type, data) = blocking::run(Work::Cover, move || {
        tracks.iter().find_map(|&i| {
            let track = &catalog.lib.tracks[i];
            let (file, _) = files::open_track(&roots, track).ok()?;
            let picture = embedded_in(&file, Path::new(track.file()))?;
            let head = &picture.data[..picture.data.len().min(12)];
            Some((raster_type(&picture.media_type, head)?, picture.data))
        })
    })
    .await
    .flatten()?;
    Some(picture(content_type, Body::from(Vec::from(data))))
}

/// The page's stand-in for a missing picture (a grid of albums without art shows a row of
/// these instead of broken images).
pub fn placeholder() -> Response {
    picture("image/svg+xml", Body::from(PLACEHOLDER))
}

fn picture(content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
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
    response
}
