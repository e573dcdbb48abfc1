//! The web page: `/`, `/static/*` and its service worker `/sw.js`, a small mobile page (plain HTML, CSS and JavaScript in
//! `src/server/web/`, embedded with `include_str!`: no build step, nothing fetched from
//! elsewhere) that shows the box's analysis progress and playlists and plays them in the
//! browser, through the JSON API of [`super::api`]; signed in with a Subsonic account, it sets
//! stars and keeps that account's own playlists through `/rest/` ([`super::subsonic`]), as any
//! client does.
//!
//! In: `GET`/`HEAD` requests. Out: the embedded files with their Content-Type, an `ETag`, the
//! security headers (a Content-Security-Policy that allows nothing but this origin, `nosniff`,
//! `Referrer-Policy`) and caching: `index.html` names every asset as `/static/NAME?v=VERSION`,
//! VERSION a hash of all the files, so a request carrying the current version is cached for a
//! year and a new binary changes the URL; anything else (the page itself, an old version) is
//! revalidated with the ETag. Assets are a fixed table looked up by name: there is no
//! filesystem behind `/static/`, so no listing and no traversal; an unknown name is a 404.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: &str = include_str!("web/index.html");
/// The service worker: served at `/sw.js` (a worker's scope is its folder: at the root it may
/// keep the page), versioned like the page.
const WORKER: &str = include_str!("web/sw.js");

/// An asset of `src/server/web/`, compiled in.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("web/", $name)),
        }
    };
}

/// Everything under `/static/`.
const ASSETS: [Asset; 6] = [
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("browse.js", "text/javascript; charset=utf-8"),
    asset!("map.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("manifest.webmanifest", "application/manifest+json"),
];

/// Where `index.html` writes the version into its asset URLs.
const VERSION_MARK: &str = "{{v}}";

/// Nothing but this origin: scripts, styles, images, audio and API calls all come from here;
/// no inline script, no frames, no forms posting elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   media-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The login page of private mode ([`super::private`]): the page's policy, but its one form
/// may post to this origin.
pub const LOGIN_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                             base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The page with its asset URLs versioned, computed once.
struct Built {
    version: String,
    etag: HeaderValue,
    index: String,
    worker: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut all = INDEX.as_bytes().to_vec();
        all.extend_from_slice(WORKER.as_bytes());
        for a in &ASSETS {
            all.extend_from_slice(a.name.as_bytes());
            all.extend_from_slice(a.body.as_bytes());
        }
        let version = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&all));
        let etag = HeaderValue::from_str(&format!("\"{version}\""))
            .unwrap_or(HeaderValue::from_static("\"0\""));
        let index = INDEX.replace(VERSION_MARK, &version);
        let worker = WORKER.replace(VERSION_MARK, &version);
        Built {
            version,
            etag,
            index,
            worker,
        }
    })
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/sw.js", get(worker))
        .route("/static/{name}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    let b = built();
    send(
        &headers,
        "text/html; charset=utf-8",
        REVALIDATE,
        b.index.as_str(),
    )
}

async fn worker(headers: HeaderMap) -> Response {
    let b = built();
    send(
        &headers,
        "text/javascript; charset=utf-8",
        REVALIDATE,
        b.worker.as_str(),
    )
}

async fn asset(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let current = query
        .as_deref()
        .and_then(|q| q.strip_prefix("v="))
        .is_some_and(|v| v == built().version);
    let cache = if current { IMMUTABLE } else { REVALIDATE };
    send(&headers, a.content_type, cache, a.body)
}

/// The file, or 304 when the client holds this version.
fn send(
    request: &HeaderMap,
    content_type: &'static str,
    cache: &'static str,
    body: &'static str,
) -> Response {
    let etag = &built().etag;
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t.as_bytes() == etag.as_bytes())
        });
    let mut head = HeaderMap::new();
    head.insert(header::ETAG, etag.clone());
    head.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    for (name, value) in security_headers() {
        head.insert(name, HeaderValue::from_static(value));
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, head).into_response();
    }
    head.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (head, body).into_response()
}

pub fn security_headers() -> [(HeaderName, &'static str); 4] {
    [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ]
}
