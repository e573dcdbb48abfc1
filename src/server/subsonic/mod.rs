//! `/rest/*`: the OpenSubsonic subset that phone apps (DSub, Symfonium, Substreamer,
//! play:Sub, Feishin…) use to browse, search, play and download the library and its
//! playlists, plus the `sonicSimilarity` extension backed by our feature space.
//!
//! In: `GET` or `POST` (form body: the `formPost` extension) to `/rest/NAME` or
//! `/rest/NAME.view`, with `u` and `t`+`s` (or `p`) and `f=xml|json|jsonp`; the account is
//! `[subsonic] user/password` (without one every call fails with error 40). Out: the
//! Subsonic response in XML or JSON ([`protocol`]), or the file for `stream`/`download`
//! (through [`super::stream::send`], with Range) and the embedded picture for `getCoverArt`.
//!
//! - [`protocol`]: parameters, authentication, errors, rendering.
//! - [`index`]: artists and albums of a snapshot, built once per snapshot.
//! - [`browse`]: folders, indexes, artists, albums, directories, songs, album lists, genres,
//!   search, random songs, the user.
//! - [`lists`]: stored playlists, similar songs (our radio), `getSonicSimilarTracks`,
//!   `findSonicPath`.
//! - [`media`]: `stream`, `download`, `getCoverArt`.
//!
//! Ids: songs are track ids, playlists their stored ids, artists `ar-…`, albums `al-…`; cover
//! art is asked for by song, album or artist id. Paths are never shown: a song's `path` is
//! `Artist/Album/file name`. Answers other than files are built on a blocking thread, so a
//! large library or a cold index never holds up the request workers.
//!
//! Read-only: no playlist editing, stars, ratings or play counts (`scrobble` is accepted and
//! ignored, the starred lists are empty), no transcoding (`stream` sends the original file
//! whatever `format`/`maxBitRate` say). An unknown method is error 0.

mod browse;
pub mod index;
mod lists;
mod marks;
mod media;
mod own;
pub mod protocol;
mod saved;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{Method, header, request::Parts};
use axum::response::Response;
use axum::routing::get;

use std::sync::RwLockReadGuard;

use super::catalog::Catalog;
use super::listening::Account;
use super::{AppState, Credentials, Server};
use crate::playlist::taste::Taste;
use index::Index;
use protocol::{Error, Format, Node, Params, Val};

/// Longest form body read (parameters only: a few hundred bytes in practice).
const MAX_FORM: usize = 64 << 10;

pub fn routes() -> Router<AppState> {
    Router::new().route("/rest/{method}", get(call).post(call))
}

/// What an endpoint reads: the server, the snapshot and who asks.
pub struct Ctx<'a> {
    pub server: &'a Server,
    pub catalog: &'a Catalog,
    pub account: &'a Credentials,
}

impl<'a> Ctx<'a> {
    /// The snapshot's artist/album index (built here if this is the first request needing it).
    pub fn index(&self) -> &'a Index {
        index_of(self.catalog)
    }

    pub fn song(&self, id: &str) -> Result<usize, Error> {
        song_index(self.catalog, id)
    }

    /// The asking account's stars, plays, queue… (a short read lock: do not hold it while
    /// changing them).
    pub fn marks(&self) -> RwLockReadGuard<'a, Account> {
        self.server.listening.account(&self.account.user)
    }

    /// What the radio learned from this listener, by track index of the snapshot.
    pub fn taste(&self) -> Taste<usize> {
        self.marks().taste().map(|id| self.catalog.track(*id))
    }

    /// Error 50 for an account that may not write.
    pub fn may_write(&self) -> Result<(), Error> {
        if self.account.read_only {
            Err(Error::not_allowed("this account may not change anything"))
        } else {
            Ok(())
        }
    }
}

/// Track index of song id `id`, or error 70.
pub fn song_index(catalog: &Catalog, id: &str) -> Result<usize, Error> {
    id.trim()
        .parse::<i64>()
        .ok()
        .and_then(|id| catalog.track(id))
        .ok_or_else(|| Error::not_found("Song"))
}

/// The artist/album index of `catalog`, built by the first request that needs it.
pub fn index_of(catalog: &Catalog) -> &Index {
    catalog.subsonic.get_or_init(|| Index::build(&catalog.lib))
}

async fn call(State(s): State<AppState>, Path(method): Path<String>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let params = read_params(&parts, body).await;
    let format = Format::of(&params);
    let account = match protocol::authenticate(&s.accounts, &params) {
        Ok(a) => a.clone(),
        Err(e) => return format.error(&e),
    };
    let name = method.strip_suffix(".view").unwrap_or(&method).to_string();
    let result = match name.as_str() {
        "stream" => media::stream(&s, &params, &parts.headers, false).await,
        "download" => media::stream(&s, &params, &parts.headers, true).await,
        "getCoverArt" => media::cover_art(&s, &params, account.clone()).await,
        _ => {
            let state = s.clone();
            let answer_format = format.clone();
            return tokio::task::spawn_blocking(move || {
                let catalog = state.catalog.get();
                let ctx = Ctx {
                    server: &state,
                    catalog: &catalog,
                    account: &account,
                };
                match answer(&ctx, &name, &params) {
                    Ok(body) => answer_format.ok(body),
                    Err(e) => answer_format.error(&e),
                }
            })
            .await
            .unwrap_or_else(|e| {
                tracing::error!("subsonic {method}: {e}");
                format.error(&Error::generic("internal error"))
            });
        }
    };
    result.unwrap_or_else(|e| format.error(&e))
}

/// The query string, and for a form `POST` the body too. A body that is too long or not
/// readable counts as empty (the call then fails on what is missing).
async fn read_params(parts: &Parts, body: axum::body::Body) -> Params {
    let is_form = parts.method == Method::POST
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        axum::body::to_bytes(body, MAX_FORM).await.ok()
    } else {
        None
    };
    Params::parse(parts.uri.query(), form.as_ref())
}

/// The answer of every endpoint that is not a file.
fn answer(x: &Ctx, method: &str, p: &Params) -> Result<Node, Error> {
    match method {
        "ping" => Ok(Node::new()),
        "getLicense" => Ok(Node::new().one(
            "license",
            Node::new()
                .attr("valid", true)
                .attr("email", "")
                .attr("licenseExpires", "2099-12-31T00:00:00Z"),
        )),
        "getOpenSubsonicExtensions" => Ok(Node::new().many(
            "openSubsonicExtensions",
            ["formPost", "sonicSimilarity"]
                .into_iter()
                .map(|name| {
                    Node::new()
                        .attr("name", name)
                        .values("versions", vec![Val::Int(1)])
                })
                .collect(),
        )),
        "getUser" => browse::user(x, p),
        "getMusicFolders" => Ok(browse::music_folders(x)),
        "getIndexes" => Ok(browse::indexes(x)),
        "getArtists" => Ok(browse::artists(x)),
        "getArtist" => browse::artist(x, p),
        "getAlbum" => browse::album(x, p),
        "getMusicDirectory" => browse::music_directory(x, p),
        "getAlbumList2" => browse::album_list(x, p, "albumList2"),
        "getAlbumList" => browse::album_list(x, p, "albumList"),
        "getSong" => Ok(Node::new().one("song", browse::song(x, x.song(p.required("id")?)?))),
        "getGenres" => Ok(browse::genres(x)),
        "search3" => browse::search(x, p, "searchResult3"),
        "search2" => browse::search(x, p, "searchResult2"),
        "getRandomSongs" => browse::random_songs(x, p),
        "getStarred" => marks::starred(x, "starred"),
        "getStarred2" => marks::starred(x, "starred2"),
        "star" => marks::star(x, p, true),
        "unstar" => marks::star(x, p, false),
        "setRating" => marks::set_rating(x, p),
        "scrobble" => marks::scrobble(x, p),
        "getNowPlaying" => Ok(marks::now_playing(x)),
        "getTopSongs" => marks::top_songs(x, p),
        "savePlayQueue" => saved::save_play_queue(x, p),
        "getPlayQueue" => Ok(saved::play_queue(x)),
        "createBookmark" => saved::create_bookmark(x, p),
        "deleteBookmark" => saved::delete_bookmark(x, p),
        "getBookmarks" => Ok(saved::bookmarks(x)),
        "getPlaylists" => lists::playlists(x, p),
        "getPlaylist" => lists::playlist(x, p),
        "createPlaylist" => own::create(x, p),
        "updatePlaylist" => own::update(x, p),
        "deletePlaylist" => own::delete(x, p),
        "getSimilarSongs" => lists::similar(x, p, "similarSongs"),
        "getSimilarSongs2" => lists::similar(x, p, "similarSongs2"),
        "getSonicSimilarTracks" => lists::sonic_similar(x, p),
        "findSonicPath" => lists::sonic_path(x, p),
        _ => Err(Error::generic(format!("Unknown method: {method}"))),
    }
}
