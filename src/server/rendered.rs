//! Answers rendered once per catalog snapshot: the playlist list, playlist JSON and M3U8
//! bodies, kept as bytes so that the next request for the same thing only copies them out,
//! each with a gzip copy made at the same time for clients that send `Accept-Encoding: gzip`.
//!
//! In: a [`Key`] and the function that renders it; later the request's headers. Out: the
//! [`Body`], shared, and from it the response (plain or gzip, `Vary: Accept-Encoding` on
//! both). The cache lives in the [`Catalog`](super::catalog::Catalog) it was rendered from, so
//! a reload drops it with the old snapshot and nothing is ever stale. It holds at most
//! [`MAX_BYTES`], both copies counted; a body that does not fit empties it (simpler than LRU,
//! and the few playlists phones are looking at refill it at once). Measured by
//! `bench --serve`: a 500-track playlist costs ~0.5 ms of CPU to render, so 100 clients on a
//! 2-core box queued for far longer than the 20 ms budget; once cached, the limit was bytes
//! through the socket (190-350 KB of JSON per answer), which gzip cuts several times for
//! ~1 ms more CPU per body, paid once per snapshot. Only these bodies are compressed: streams
//! are audio, already compressed.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, IntoResponseParts, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Most bytes held per snapshot (plain and gzip copies): ~70 rendered 500-track playlists.
pub const MAX_BYTES: usize = 16 << 20;

/// Gzip level of the copies: 1 (fastest) already shrinks this JSON ~5 times; higher levels
/// cost more CPU at fill time for a few percent.
pub const GZIP_LEVEL: u32 = 1;

/// What a body is the answer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `/api/v1/playlists`.
    Playlists,
    /// `/api/v1/playlists/{id}`.
    Playlist(i64),
    /// `/playlists/{id}.m3u8` with this base URL (it comes from the request's `Host`), and
    /// in private mode the expiry of its signed stream URLs (0 otherwise).
    M3u8(i64, String, i64),
    /// `/api/v1/map`.
    Map,
}

/// One rendered answer: the bytes, and their gzip copy when it was made and is smaller.
#[derive(Debug, Clone)]
pub struct Body {
    pub plain: Bytes,
    pub gzip: Option<Bytes>,
}

impl Body {
    /// `plain` with its gzip copy.
    fn new(plain: Bytes) -> Body {
        let gzip = gzip(&plain).filter(|z| z.len() < plain.len());
        Body { plain, gzip }
    }

    fn len(&self) -> usize {
        self.plain.len() + self.gzip.as_ref().map_or(0, Bytes::len)
    }

    /// The response to a request with `request` headers: `parts` (content type and the like)
    /// and the gzip copy with `Content-Encoding: gzip` if the client accepts gzip, else the
    /// plain bytes. Both say `Vary: Accept-Encoding`, so no cache hands one to the other.
    pub fn respond(self, request: &HeaderMap, parts: impl IntoResponseParts) -> Response {
        let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
        match self.gzip {
            Some(z) if accepts_gzip(request) => {
                let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                (parts, [vary, encoding], z).into_response()
            }
            _ => (parts, [vary], self.plain).into_response(),
        }
    }
}

/// `data` gzipped at [`GZIP_LEVEL`]; None only if the encoder fails (it writes to memory).
pub fn gzip(data: &[u8]) -> Option<Bytes> {
    let mut z = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        Compression::new(GZIP_LEVEL),
    );
    z.write_all(data).ok()?;
    z.finish().ok().map(Bytes::from)
}

/// Whether `Accept-Encoding` (every such header, comma-separated codings with an optional
/// `;q=`) allows gzip: `gzip` or `x-gzip` with q > 0, or else `*` with q > 0. A q that does not
/// parse counts as 0. No header means identity only (we never guess).
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut star = None;
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut params = item.split(';');
            let coding = params.next().unwrap_or("").trim();
            let mut q = 1.0;
            for param in params {
                if let Some((name, v)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse::<f32>().unwrap_or(0.0);
                    }
                }
            }
            let ok = q > 0.0 && q <= 1.0;
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return ok;
            }
            if coding == "*" {
                star = Some(ok);
            }
        }
    }
    star.unwrap_or(false)
}

#[derive(Default)]
pub struct Rendered {
    inner: Mutex<Bodies>,
}

#[derive(Default)]
struct Bodies {
    map: HashMap<Key, Body>,
    bytes: usize,
}

impl Rendered {
    fn lock(&self) -> MutexGuard<'_, Bodies> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The body for `key`, rendered by `render` (and gzipped) if it is not held. Rendering
    /// runs without the lock: two requests may render the same body at once, and the second
    /// one is kept. A body too big to hold is served plain, without a gzip copy.
    pub fn get_or_render<E>(
        &self,
        key: Key,
        render: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Body, E> {
        if let Some(body) = self.lock().map.get(&key) {
            return Ok(body.clone());
        }
        let plain = render()?;
        if plain.len() > MAX_BYTES {
            return Ok(Body { plain, gzip: None });
        }
        let body = Body::new(plain);
        if body.len() <= MAX_BYTES {
            let mut b = self.lock();
            if b.bytes + body.len() > MAX_BYTES {
                b.map.clear();
                b.bytes = 0;
            }
            b.bytes += body.len();
            if let Some(old) = b.map.insert(key, body.clone()) {
                b.bytes -= old.len();
            }
        }
        Ok(body)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn body(n: usize) -> Result<Bytes, ()> {
        Ok(Bytes::from(vec![b'x'; n]))
    }

    #[test]
    fn renders_once_then_serves_the_same_bytes() {
        let r = Rendered::default();
        let first = r.get_or_render(Key::Playlist(1), || body(10)).unwrap();
        let again = r
            .get_or_render(Key::Playlist(1), || -> Result<Bytes, ()> {
                panic!("rendered twice")
            })
            .unwrap();
        assert_eq!(first.plain, again.plain);
        assert_eq!(first.gzip, None, "10 bytes do not shrink: no copy");
        assert_eq!(r.bytes(), 10);
        let err = r.get_or_render(Key::Playlist(2), || Err::<Bytes, _>("bad"));
        assert_eq!(err.map(|b| b.plain), Err("bad"));
        assert_eq!(r.bytes(), 10);
    }

    #[test]
    fn the_gzip_copy_decodes_to_the_body_and_counts() {
        let r = Rendered::default();
        let got = r.get_or_render(Key::Playlists, || body(100_000)).unwrap();
        let z = got.gzip.expect("a compressible body has a gzip copy");
        assert!(z.len() < 1000, "{} bytes", z.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, got.plain);
        assert_eq!(r.bytes(), 100_000 + z.len());
    }

    #[test]
    fn never_holds_more_than_the_cap() {
        let r = Rendered::default();
        let big = MAX_BYTES / 3;
        for id in 0..10 {
            r.get_or_render(Key::Playlist(id), || body(big)).unwrap();
            assert!(r.bytes() <= MAX_BYTES, "{} held", r.bytes());
        }
        // Too big to keep: served, not held.
        let huge = r
            .get_or_render(Key::M3u8(1, "http://h".into(), 0), || body(MAX_BYTES + 1))
            .unwrap();
        assert_eq!(huge.plain.len(), MAX_BYTES + 1);
        assert!(r.bytes() <= MAX_BYTES);
    }

    fn accepts(values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding_is_read_with_its_q_values() {
        assert!(!accepts(&[]), "no header: identity");
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["GZip"]));
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["gzip, deflate, br"]), "browsers");
        assert!(accepts(&["br;q=1.0, gzip;q=0.8, *;q=0.1"]));
        assert!(accepts(&["deflate", "gzip"]), "two header lines");
        assert!(accepts(&["*"]));
        assert!(accepts(&[" gzip ; q = 0.5 "]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip;q=0.000"]));
        assert!(!accepts(&["gzip;q=zero"]), "a q that does not parse");
        assert!(!accepts(&["gzip;q=2"]), "q above 1");
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["deflate, br"]));
        assert!(!accepts(&["*;q=0"]));
        assert!(!accepts(&["gzip;q=0, *"]), "gzip refused by name beats *");
        assert!(!accepts(&["*, gzip;q=0"]), "in either order");
        assert!(accepts(&["*;q=0, gzip"]));
        assert!(!accepts(&["gzipped"]));
        assert!(!accepts(&[""]));
    }
}
