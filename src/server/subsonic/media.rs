//! Files: `stream` and `download` (the original file, never transcoded, with Range, through
//! [`crate::server::stream::send`]) and `getCoverArt` (the picture embedded in the file).
//!
//! In: an id (a song's; for cover art also an album's or artist's) and the request headers.
//! Out: the bytes, or a Subsonic error (10 without an id, 70 for an unknown id or a file
//! without a picture).
//!
//! Cover art is read from the file on each request: the container's metadata is probed (no
//! audio is decoded) through the same guarded mapping and length checks as the analysis, so a
//! file that changes or lies under us fails alone. `size` is ignored: the picture is sent as
//! stored. A few reads at a time, so a grid of covers cannot crowd out the disk.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use tokio::sync::Semaphore;

use super::protocol::{Error, Params};
use super::{Ctx, song_index};
use crate::audio::cover::embedded;
use crate::server::{AppState, Credentials};

/// Files probed for a picture at once.
static COVER_READS: Semaphore = Semaphore::const_new(4);
/// Tracks of an album (or albums of an artist) tried before giving up on a picture.
const COVER_TRIES: usize = 4;

pub async fn stream(
    s: &AppState,
    p: &Params,
    headers: &HeaderMap,
    download: bool,
) -> Result<Response, Error> {
    let catalog = s.catalog.get();
    let i = song_index(&catalog, p.required("id")?)?;
    let id = catalog.lib.tracks[i].id;
    Ok(crate::server::stream::send(&catalog, id, headers, download).await)
}

pub async fn cover_art(s: &AppState, p: &Params, account: Credentials) -> Result<Response, Error> {
    let id = p.required("id")?.to_string();
    let state = s.clone();
    let files = tokio::task::spawn_blocking(move || {
        let catalog = state.catalog.get();
        let x = Ctx {
            server: &state,
            catalog: &catalog,
            account: &account,
        };
        cover_files(&x, &id)
    })
    .await
    .map_err(|_| Error::generic("internal error"))??;
    let _permit = COVER_READS
        .acquire()
        .await
        .map_err(|_| Error::generic("shutting down"))?;
    let picture = tokio::task::spawn_blocking(move || files.iter().find_map(|f| embedded(f)))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Error::not_found("Cover art"))?;
    let head = &picture.data[..picture.data.len().min(12)];
    let content_type = HeaderValue::from_str(image_type(&picture.media_type, head))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = Response::new(Body::from(Vec::from(picture.data)));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(response)
}

/// The files that may hold the picture for `id`: a song's own, else the first tracks of an
/// album, else the first track of each of an artist's albums.
fn cover_files(x: &Ctx, id: &str) -> Result<Vec<PathBuf>, Error> {
    let ix = x.index();
    let tracks: Vec<usize> = if let Some(a) = ix.album(id) {
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
    };
    Ok(tracks
        .into_iter()
        .map(|i| PathBuf::from(&x.catalog.lib.tracks[i].path))
        .collect())
}

/// The picture's MIME type: from its first bytes when they say, else what the file declared
/// if it is an image type.
fn image_type<'a>(declared: &'a str, head: &[u8]) -> &'a str {
    if head.starts_with(b"\x89PNG") {
        "image/png"
    } else if head.starts_with(b"\xFF\xD8\xFF") {
        "image/jpeg"
    } else if head.starts_with(b"GIF8") {
        "image/gif"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "image/webp"
    } else if declared.starts_with("image/") {
        declared
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_types_from_their_bytes() {
        assert_eq!(image_type("image/jpeg", b"\x89PNG\r\n\x1a\n"), "image/png");
        assert_eq!(image_type("", b"\xFF\xD8\xFF\xE0"), "image/jpeg");
        assert_eq!(image_type("image/bmp", b"BM"), "image/bmp");
        assert_eq!(
            image_type("text/html", b"<html>"),
            "application/octet-stream"
        );
    }
}
