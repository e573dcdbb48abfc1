//! The screens an app opens next to an artist, an album or a genre, and the library's scan:
//! `getArtistInfo`/`2` (similar artists from the sound: no network), `getAlbumInfo`/`2`,
//! `getSongsByGenre`, `getScanStatus` and `startScan`.
//!
//! In: a [`Ctx`] and parameters. Out: response trees. Similar artists are the artists whose
//! tracks sit nearest in the analysed feature space ([`crate::server::index::Index::similar_artists`]);
//! every one of them is in the library, so `includeNotPresent` changes nothing. There is no
//! biography, album notes or artist picture to tell: those are empty or left out, as the spec
//! allows. The scan is the background analysis ([`crate::server::background`]): `startScan`
//! asks it for a run of what changed, and the status shows whether one is under way.

use super::Ctx;
use super::browse::{MAX_LIST, artist_node, songs};
use super::protocol::{Error, Node, Params, iso8601};

/// The artist an id names: an artist's own, an album's artist, a song's album's artist.
fn artist_of(x: &Ctx, id: &str) -> Result<usize, Error> {
    let ix = x.index();
    if let Some(a) = ix.artist(id) {
        return Ok(a);
    }
    if let Some(al) = ix.album(id) {
        return Ok(ix.albums[al].artist);
    }
    x.song(id)
        .map(|i| ix.albums[ix.album_of[i]].artist)
        .map_err(|_| Error::not_found("Artist"))
}

/// `getArtistInfo` (`artistInfo`) and `getArtistInfo2` (`artistInfo2`): `count` (20 by
/// default) similar artists.
pub fn artist_info(x: &Ctx, p: &Params, element: &'static str) -> Result<Node, Error> {
    let a = artist_of(x, p.required("id")?)?;
    let count = p.count("count", 20, MAX_LIST)?;
    let similar = x
        .index()
        .similar_artists(&x.catalog.lib, a, count)
        .into_iter()
        .map(|b| artist_node(x, b))
        .collect();
    Ok(Node::new().one(
        element,
        Node::new()
            .element("biography", "")
            .many("similarArtist", similar),
    ))
}

/// `getAlbumInfo` and `getAlbumInfo2` (both `albumInfo`), for an album or a song's album:
/// no notes to tell, and no album MusicBrainz id is kept, so it is left out.
pub fn album_info(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let id = p.required("id")?;
    let ix = x.index();
    if ix.album(id).is_none() {
        x.song(id).map_err(|_| Error::not_found("Album"))?;
    }
    Ok(Node::new().one("albumInfo", Node::new().element("notes", "")))
}

/// `getSongsByGenre`: `count` (10 by default, at most 500) songs of `genre` from `offset`,
/// in album order.
pub fn songs_by_genre(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let genre = p.required("genre")?.trim();
    let count = p.count("count", 10, MAX_LIST)?;
    let offset = p.number("offset", 0usize)?;
    let tracks = &x.catalog.lib.tracks;
    let chosen: Vec<usize> = x
        .index()
        .albums
        .iter()
        .flat_map(|a| a.tracks.iter().copied())
        .filter(|&i| tracks[i].measured.tags.genre.as_deref().map(str::trim) == Some(genre))
        .skip(offset)
        .take(count)
        .collect();
    Ok(Node::new().one("songsByGenre", Node::new().many("song", songs(x, chosen))))
}

/// `scanStatus`: whether the background analyses now, the files known, and (as Navidrome
/// adds) when the last run ended.
pub fn scan_status(x: &Ctx, scanning: bool) -> Node {
    let status = x.server.catalog.status();
    let last = status.last_run.as_ref().and_then(|r| r.finished_at);
    Node::new().one(
        "scanStatus",
        Node::new()
            .attr("scanning", scanning)
            .attr("count", status.tracks)
            .opt("lastScan", last.map(iso8601)),
    )
}

/// `startScan`: a run of the background analysis (what changed since the last), unless one
/// is under way, when the request waits its turn.
pub fn start_scan(x: &Ctx) -> Result<Node, Error> {
    if x.server.activity.request_rescan() {
        Ok(scan_status(x, true))
    } else {
        Err(Error::generic(
            "startScan: this server process runs no background analysis",
        ))
    }
}
