//! Answers rendered once per catalog snapshot: the playlist list, playlist JSON and M3U8
//! bodies, kept as bytes so that the next request for the same thing only copies them out.
//!
//! In: a [`Key`] and the function that renders it. Out: the body, shared. The cache lives in
//! the [`Catalog`](super::catalog::Catalog) it was rendered from, so a reload drops it with the
//! old snapshot and nothing is ever stale. It holds at most [`MAX_BYTES`]; a body that does not
//! fit empties it (simpler than LRU, and the few playlists phones are looking at refill it at
//! once). Measured by `bench --serve`: a 500-track playlist costs ~0.5 ms of CPU to render,
//! so 100 clients on a 2-core box queued for far longer than the 20 ms budget.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;

/// Most bytes held per snapshot: ~80 rendered 500-track playlists.
pub const MAX_BYTES: usize = 16 << 20;

/// What a body is the answer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `/api/v1/playlists`.
    Playlists,
    /// `/api/v1/playlists/{id}`.
    Playlist(i64),
    /// `/playlists/{id}.m3u8` with this base URL (it comes from the request's `Host`).
    M3u8(i64, String),
}

#[derive(Default)]
pub struct Rendered {
    inner: Mutex<Bodies>,
}

#[derive(Default)]
struct Bodies {
    map: HashMap<Key, Bytes>,
    bytes: usize,
}

impl Rendered {
    fn lock(&self) -> MutexGuard<'_, Bodies> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The body for `key`, rendered by `render` if it is not held. Rendering runs without the
    /// lock: two requests may render the same body at once, and the second one is kept.
    pub fn get_or_render<E>(
        &self,
        key: Key,
        render: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        if let Some(body) = self.lock().map.get(&key) {
            return Ok(body.clone());
        }
        let body = render()?;
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
        assert_eq!(first, again);
        assert_eq!(r.bytes(), 10);
        let err = r.get_or_render(Key::Playlist(2), || Err::<Bytes, _>("bad"));
        assert_eq!(err, Err("bad"));
        assert_eq!(r.bytes(), 10);
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
            .get_or_render(Key::M3u8(1, "http://h".into()), || body(MAX_BYTES + 1))
            .unwrap();
        assert_eq!(huge.len(), MAX_BYTES + 1);
        assert!(r.bytes() <= MAX_BYTES);
    }
}
