//! `/rest/*`: the OpenSubsonic API that phone apps (DSub, Symfonium, Substreamer, play:Sub,
//! Feishin…) use to browse, search, play and download the library and its playlists, and to
//! keep what each listener does (stars, ratings, plays, queue, bookmarks, own playlists), plus
//! the extensions `sonicSimilarity` (backed by our feature space),
//! `songLyrics` and `formPost`.
//!
//! In: `GET` or `POST` (form body: the `formPost` extension) to `/rest/NAME` or
//! `/rest/NAME.view`, with `u` and `t`+`s` (or `p`) and `f=xml|json|jsonp`; the accounts are
//! `[subsonic]`'s (without one every call fails with error 40);
//! `getOpenSubsonicExtensions` needs no credentials, as the spec asks. `OPTIONS` is the CORS
//! preflight, and every answer allows any origin, so that web clients on their own origin
//! can log in. Out: the Subsonic response in XML or JSON ([`protocol`]), or the file for
//! `stream`/`download` (through [`super::stream::send`], with Range) and the embedded
//! picture for `getCoverArt`.
//!
//! - [`protocol`]: parameters, authentication, errors, rendering.
//! - [`index`]: artists and albums of a snapshot, built once per snapshot.
//! - [`browse`]: folders, indexes, artists, albums, directories, songs, album lists, genres,
//!   search, random songs, the user.
//! - [`lists`]: stored playlists, similar songs (our radio), `getSonicSimilarTracks`,
//!   `findSonicPath`.
//! - [`media`]: `stream`, `download`, `getCoverArt`.
//! - [`marks`]: stars, ratings, scrobbles (plays and skips), the starred lists, now playing,
//!   top songs, the album lists made of what was kept.
//! - [`saved`]: the play queue and bookmarks.
//! - [`own`]: the listeners' own playlists.
//! - [`info`]: artist info (similar artists by sound), album info, songs by genre, the
//!   scan status and `startScan` (a run of the background analysis).
//! - [`lyrics`]: `getLyrics`, `getLyricsBySongId`, from embedded tags and `.lrc` files.
//! - [`empty`]: what a library box has none of (podcasts, radio stations, shares, chat,
//!   videos): valid empty answers; and the writes to them, error 50.
//!
//! Ids: songs are track ids, playlists their stored ids, artists `ar-…`, albums `al-…`; cover
//! art is asked for by song, album or artist id. Paths are never shown: a song's `path` is
//! `Artist/Album/file name`. Answers other than files are built on a blocking thread, so a
//! large library or a cold index never holds up the request workers.
//!
//! Writes go through [`crate::server::listening`] and are stored before the answer; generated
//! playlists stay read-only, and an account with `read_only = true` may not write (error 50).
//! No transcoding (`stream` sends the original file whatever `format`/`maxBitRate` say). What
//! a library box cannot do (users, shares, podcasts, radio stations, jukebox, chat) is error
//! 50; an unknown method is error 0.

mod browse;
mod empty;
mod info;
mod lists;
mod lyrics;
mod marks;
mod media;
mod own;
pub mod protocol;
mod saved;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::Response;
use axum::routing::get;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::RwLockReadGuard;

use super::blocking::{self, Work};
use super::catalog::Catalog;
use super::index::Index;
use super::listening::Account;
use super::logins::Turn;
use super::{AppState, Credentials, Server};
use crate::playlist::taste::Taste;
use protocol::{Error, Format, Node, Params, Val};

/// Longest form body read (parameters only: a few hundred bytes in practice).
const MAX_FORM: usize = 64 << 10;

/// How long a browser may keep a preflight answer.
const PREFLIGHT_MAX_AGE_S: &str = "86400";
/// Request headers allowed when a preflight names none (or names them unreadably).
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Range, Accept";
/// The extensions served, each at version 1.
const EXTENSIONS: [&str; 3] = ["formPost", "sonicSimilarity", "songLyrics"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest/{method}", get(call).post(call).options(preflight))
        .layer(axum::middleware::map_response(any_origin))
}

/// Every answer under `/rest/` may be read by a page from any origin (web clients such as
/// Feishin or Sonixd run on their own origin): the API carries its credentials in the
/// parameters, not in cookies, so there is nothing a foreign page could borrow.
async fn any_origin(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Content-Length, Content-Range, Accept-Ranges, Content-Disposition",
        ),
    );
    response
}

/// The CORS preflight: 204 with the methods served and the headers the page asked to send.
async fn preflight(headers: HeaderMap) -> Response {
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| {
            v.len() <= 1024
                && v.as_bytes()
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b" ,-_".contains(&b))
        })
        .cloned()
        .unwrap_or(HeaderValue::from_static(ALLOWED_HEADERS));
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_S),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Access-Control-Request-Headers"),
    );
    response
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
        self.catalog.index()
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

async fn call(State(s): State<AppState>, Path(method): Path<String>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let params = read_params(&parts, body).await;
    // The spec wants the extensions readable before logging in: clients ask what to offer.
    if method.strip_suffix(".view").unwrap_or(&method) == "getOpenSubsonicExtensions" {
        return Format::of(&params).ok(extensions());
    }
    let format = Format::of(&params);
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if let Turn::Refuse(wait) = s.logins.turn(peer).await {
        return format.error(&Error::too_many_logins(wait));
    }
    let account = match protocol::authenticate(&s.accounts, &params) {
        Ok(a) => {
            s.logins.succeeded(peer);
            a.clone()
        }
        Err(e) => {
            if e.code == Error::wrong_credentials().code {
                s.logins.failed(peer);
            }
            return format.error(&e);
        }
    };
    let name = method.strip_suffix(".view").unwrap_or(&method).to_string();
    let result = match name.as_str() {
        "stream" => media::stream(&s, &params, &parts, false).await,
        "download" => media::stream(&s, &params, &parts, true).await,
        "getCoverArt" => media::cover_art(&s, &params).await,
        _ => {
            let state = s.clone();
            let answer_format = format.clone();
            return blocking::run(Work::Subsonic, move || {
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
            .unwrap_or_else(|| format.error(&Error::generic("internal error")));
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

/// `getOpenSubsonicExtensions`: the extensions served.
fn extensions() -> Node {
    Node::new().many(
        "openSubsonicExtensions",
        EXTENSIONS
            .into_iter()
            .map(|name| {
                Node::new()
                    .attr("name", name)
                    .values("versions", vec![Val::Int(1)])
            })
            .collect(),
    )
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
        "getArtistInfo" => info::artist_info(x, p, "artistInfo"),
        "getArtistInfo2" => info::artist_info(x, p, "artistInfo2"),
        "getAlbumInfo" | "getAlbumInfo2" => info::album_info(x, p),
        "getSongsByGenre" => info::songs_by_genre(x, p),
        "getScanStatus" => Ok(info::scan_status(x, x.server.activity.scanning())),
        "startScan" => info::start_scan(x),
        "getLyrics" => lyrics::by_artist_and_title(x, p),
        "getLyricsBySongId" => lyrics::by_song(x, p),
        other => empty::answer(other, p)
            .unwrap_or_else(|| Err(Error::generic(format!("Unknown method: {method}")))),
    }
}
