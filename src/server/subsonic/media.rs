//! Files: `stream` and `download` (the original file, never transcoded, with Range, through
//! [`crate::server::stream::send`]) and `getCoverArt` (the picture embedded in the file).
//!
//! In: an id (a song's; for cover art also an album's or artist's) and the request headers.
//! Out: the bytes, or a Subsonic error (10 without an id, 70 for an unknown id or a file
//! without a picture).
//!
//! Cover art is [`crate::server::cover`]'s, the same as the web page's.

use axum::http::request::Parts;
use axum::response::Response;

use super::protocol::{Error, Params};
use super::song_index;
use crate::server::blocking::{self, Work};
use crate::server::{AppState, cover};

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

pub async fn cover_art(s: &AppState, p: &Params) -> Result<Response, Error> {
    let id = p.required("id")?.to_string();
    let catalog = s.catalog.get();
    let (catalog, tracks) = blocking::run(Work::Subsonic, move || {
        let tracks = cover::tracks_for(&catalog, &id);
        (catalog, tracks)
    })
    .await
    .ok_or_else(|| Error::generic("internal error"))?;
    let tracks = tracks.ok_or_else(|| Error::not_found("Cover art"))?;
    cover::send(s, catalog, tracks)
        .await
        .ok_or_else(|| Error::not_found("Cover art"))
}
