//! The JSON API (`/api/v1/*`), playlists as M3U8 for any player (`/playlists/{id}.m3u8`),
//! `/stream/{id}` and `/metrics`.
//!
//! In: requests and the current catalog. Out: JSON in the shapes below; errors as
//! `{"error": "..."}` with a 4xx status. Tracks are addressed by id only. The playlist list,
//! playlists and M3U8 are rendered once per snapshot ([`super::rendered`]) and sent gzipped
//! to clients whose `Accept-Encoding` allows it.
//!
//! - `GET /api/v1/status`: counts, the background analysis, this server.
//! - `GET /api/v1/playlists`: `[{id, name, method, rule, track_count, duration_s, updated_at}]`.
//! - `GET /api/v1/playlists/{id}`: the same fields plus `tracks` (each a track with `why`).
//! - `GET /api/v1/tracks/{id}`: one track.
//! - `GET /api/v1/tracks/{id}/similar?count=N`: `{seed, tracks}`, a radio from the track.
//!
//! The page's library and builders (`path` among them) are [`super::library_api`] and
//! [`super::builders`].

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::catalog::{Catalog, StoredList, TrackView};
use super::metrics::{counter, gauge};
use super::rendered::{Body, Key};
use super::{AppState, blocking};
use crate::playlist::flow;

/// Most tracks one similar/path request may ask for.
pub const MAX_LENGTH: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/playlists", get(playlists))
        .route("/api/v1/playlists/{id}", get(playlist))
        .route("/api/v1/tracks/{id}", get(track))
        .route("/api/v1/tracks/{id}/similar", get(similar))
        .route("/playlists/{file}", get(m3u8))
        .route("/stream/{id}", get(stream))
}

/// A 4xx answer with a reason.
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub fn not_found(what: &str) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, format!("no such {what}"))
    }

    pub fn bad(reason: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, reason.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// A playlist without its tracks.
#[derive(Serialize)]
struct ListSummary<'a> {
    id: i64,
    name: &'a str,
    method: &'a str,
    rule: &'a str,
    track_count: usize,
    duration_s: f64,
    updated_at: i64,
}

impl<'a> From<&'a StoredList> for ListSummary<'a> {
    fn from(p: &'a StoredList) -> Self {
        ListSummary {
            id: p.id,
            name: &p.name,
            method: &p.method,
            rule: &p.rule,
            track_count: p.tracks.len(),
            duration_s: p.duration_s,
            updated_at: p.updated_at,
        }
    }
}

/// A track in a playlist: the track and why it is there.
#[derive(Serialize)]
pub struct Placed<'a> {
    #[serde(flatten)]
    pub track: TrackView<'a>,
    pub why: &'a str,
}

async fn status(State(s): State<AppState>) -> Json<serde_json::Value> {
    let c = s.catalog.get();
    Json(json!({
        "name": s.name,
        "id": s.id,
        "version": env!("CARGO_PKG_VERSION"),
        "library": *s.catalog.status(),
        "playlists": c.playlists.len(),
        "snapshot_at": c.loaded_at,
        "analysis": s.activity.view(),
    }))
}

/// A playlist with its tracks.
#[derive(Serialize)]
struct ListDetail<'a> {
    #[serde(flatten)]
    summary: ListSummary<'a>,
    tracks: Vec<Placed<'a>>,
}

/// JSON serialised straight into one buffer of about the right size. The big answers (the
/// playlist list of a 100k-track library is ~350 KB, a 500-track playlist ~190 KB) took
/// several times longer through a `serde_json::Value` or `axum::Json`'s growing buffer.
fn json_body(value: &impl Serialize, capacity: usize) -> Result<Bytes, ApiError> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, value)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Bytes::from(buf))
}

/// A rendered JSON answer, gzipped if the request allows it.
fn json_response(body: Body, request: &HeaderMap) -> Response {
    body.respond(request, [(header::CONTENT_TYPE, "application/json")])
}

async fn playlists(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let body = c.rendered.get_or_render(Key::Playlists, || {
        let lists: Vec<ListSummary> = c.playlists.iter().map(ListSummary::from).collect();
        json_body(&lists, 200 * lists.len() + 2)
    })?;
    Ok(json_response(body, &headers))
}

async fn playlist(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let p = c
        .playlist(id)
        .ok_or_else(|| ApiError::not_found("playlist"))?;
    let body = c.rendered.get_or_render(Key::Playlist(id), || {
        let tracks: Vec<Placed> = p
            .tracks
            .iter()
            .map(|(i, why)| Placed {
                track: c.view(*i),
                why,
            })
            .collect();
        let capacity = 400 * tracks.len() + 512;
        let detail = ListDetail {
            summary: ListSummary::from(p),
            tracks,
        };
        json_body(&detail, capacity)
    })?;
    Ok(json_response(body, &headers))
}

pub fn track_index(c: &Catalog, id: i64) -> Result<usize, ApiError> {
    c.track(id).ok_or_else(|| ApiError::not_found("track"))
}

async fn track(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let c = s.catalog.get();
    let i = track_index(&c, id)?;
    Ok(Json(c.view(i)).into_response())
}

#[derive(Deserialize)]
struct SimilarQuery {
    count: Option<usize>,
}

async fn similar(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<SimilarQuery>,
) -> Result<Response, ApiError> {
    let count = q.count.unwrap_or(20).clamp(1, MAX_LENGTH);
    let c = s.catalog.get();
    let seed = track_index(&c, id)?;
    compute(move || {
        let radio = flow::radio(&c.lib, seed, count + 1, &Default::default());
        let tracks: Vec<TrackView> = radio
            .entries
            .iter()
            .filter(|e| e.track != seed)
            .map(|e| c.view(e.track))
            .collect();
        Json(json!({ "seed": c.view(seed), "tracks": tracks })).into_response()
    })
    .await
}

/// Runs a radio or path computation on a blocking thread once a computing slot is free
/// ([`blocking::Work::Compute`], one per core). One costs milliseconds of CPU over the whole
/// library (~5 ms at 100k tracks); run on the async workers, 100 clients asking for similar
/// tracks stalled every other request (`/api/v1/status` went from 0.3 ms to 900 ms at the
/// median; off them, 0.3 ms / 13 ms p99).
pub async fn compute(f: impl FnOnce() -> Response + Send + 'static) -> Result<Response, ApiError> {
    blocking::run(blocking::Work::Compute, f)
        .await
        .ok_or_else(|| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the computation failed".into(),
            )
        })
}

/// `scheme://host` for absolute URLs: the request's `Host` when it is a plausible host name
/// or address, else the address the server listens on.
pub fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    match host {
        Some(h) => format!("http://{h}"),
        None => format!("http://{}", s.local),
    }
}

/// `/playlists/{id}.m3u8`: extended M3U with absolute stream URLs.
async fn m3u8(
    State(s): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: i64 = file
        .strip_suffix(".m3u8")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::not_found("playlist (ask for /playlists/ID.m3u8)"))?;
    let c = s.catalog.get();
    let p = c
        .playlist(id)
        .ok_or_else(|| ApiError::not_found("playlist"))?;
    let base = base_url(&s, &headers);
    let expires = s
        .private
        .as_ref()
        .map_or(0, |_| super::private::signed_url_expiry());
    let body = c.rendered.get_or_render(
        Key::M3u8(id, base.clone(), expires),
        || -> Result<Bytes, ApiError> {
            let mut out = String::with_capacity(32 + 96 * p.tracks.len());
            out.push_str("#EXTM3U\n#PLAYLIST:");
            one_line(&mut out, &p.name);
            for (i, _) in &p.tracks {
                let v = c.view(*i);
                let _ = write!(out, "\n#EXTINF:{},", v.duration_s.round() as i64);
                if let Some(a) = v.artist {
                    one_line(&mut out, a);
                    out.push_str(" - ");
                }
                one_line(&mut out, &v.title);
                let _ = write!(out, "\n{base}{}", v.stream);
                if let Some(keys) = &s.private {
                    let _ = write!(out, "?{}", keys.signed_query_until(&v.stream, expires));
                }
            }
            out.push('\n');
            Ok(Bytes::from(out))
        },
    )?;
    Ok(body.respond(
        &headers,
        [
            (
                header::CONTENT_TYPE,
                "audio/x-mpegurl; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"playlist-{id}.m3u8\""),
            ),
        ],
    ))
}

/// Appends tag text on one line (a newline in a tag would start a new M3U entry).
fn one_line(out: &mut String, text: &str) {
    if text.contains(['\r', '\n']) {
        out.push_str(&text.replace(['\r', '\n'], " "));
    } else {
        out.push_str(text);
    }
}

async fn stream(State(s): State<AppState>, Path(id): Path<i64>, req: Request) -> Response {
    super::stream::send(&s, id, &req.into_parts().0, false).await
}

/// `/metrics`: Prometheus text.
pub async fn metrics(State(s): State<AppState>) -> Response {
    let c = s.catalog.get();
    let mut out = String::with_capacity(8 << 10);
    let st = s.catalog.status();
    counter(
        &mut out,
        "playlista_login_failures_total",
        "Wrong Subsonic logins.",
        s.logins.failures.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "playlista_logins_refused_total",
        "Logins refused unchecked: the address had guessed too often.",
        s.logins.refused.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "playlista_tracks",
        "Tracks in the library.",
        st.tracks as f64,
    );
    gauge(
        &mut out,
        "playlista_tracks_analyzed",
        "Tracks analysed.",
        st.analyzed as f64,
    );
    gauge(
        &mut out,
        "playlista_tracks_failed",
        "Tracks that could not be analysed.",
        st.failed as f64,
    );
    gauge(
        &mut out,
        "playlista_tracks_pending",
        "Tracks waiting for analysis.",
        st.pending as f64,
    );
    gauge(
        &mut out,
        "playlista_playlists",
        "Stored playlists.",
        c.playlists.len() as f64,
    );
    s.activity.render(&mut out, &st);
    s.metrics.render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
