//! Sending a track's original file: `/stream/{id}` (and the Subsonic `stream`/`download`),
//! with HTTP Range so that players can seek.
//!
//! In: a track id (never a path: the file comes from the catalog) and the request (its
//! `Range`, and its connection's [`Slot`]). Out: 200 with the whole file, 206 with one byte
//! range, 416 for a range that is malformed or lies past the end, 404 for an unknown id or a
//! file that is no longer the one analysed ([`files::open_track`]; a rescan is asked for), 503
//! when every stream slot is taken. The body streams from disk in 64 KiB reads.

use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::blocking::{self, Work};
use super::listener::Slot;
use super::{Server, files};

/// One satisfiable byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    Whole,
    Part(ByteRange),
    /// Malformed, several ranges, or past the end: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` (one range; several are refused).
pub fn parse_range(value: Option<&str>, size: u64) -> RangeAsk {
    let Some(value) = value else {
        return RangeAsk::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Unsatisfiable;
    };
    if spec.contains(',') {
        return RangeAsk::Unsatisfiable;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Unsatisfiable;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let range = match (a.trim().is_empty(), b.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(b) {
            Some(n) if n > 0 && size > 0 => Some(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
            _ => None,
        },
        (false, true) => match number(a) {
            Some(start) if start < size => Some(ByteRange {
                start,
                end: size - 1,
            }),
            _ => None,
        },
        (false, false) => match (number(a), number(b)) {
            (Some(start), Some(end)) if start <= end && start < size => Some(ByteRange {
                start,
                end: end.min(size - 1),
            }),
            _ => None,
        },
        (true, true) => None,
    };
    range.map_or(RangeAsk::Unsatisfiable, RangeAsk::Part)
}

/// The MIME type of an audio file, from its extension.
pub fn content_type(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp3") => "audio/mpeg",
        Some("flac") => "audio/flac",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("m4a" | "mp4" | "aac" | "m4b") => "audio/mp4",
        Some("wav") => "audio/wav",
        Some("aif" | "aiff") => "audio/aiff",
        Some("wma") => "audio/x-ms-wma",
        _ => "application/octet-stream",
    }
}

/// Answers a request for track `id`'s file.
pub async fn send(s: &Server, id: i64, request: &Parts, download: bool) -> Response {
    let catalog = s.catalog.get();
    let Some(i) = catalog.track(id) else {
        return (StatusCode::NOT_FOUND, "no such track\n").into_response();
    };
    let slot = request.extensions.get::<Arc<Slot>>();
    if slot.is_some_and(|slot| !slot.claim_stream()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5"), (header::CONNECTION, "close")],
            "every stream slot is taken; try again in a moment\n",
        )
            .into_response();
    }
    let roots = s.library.clone();
    let checked = blocking::run(Work::Open, move || {
        let track = &catalog.lib.tracks[i];
        files::open_track(&roots, track).map(|(file, md)| (file, md.len(), track.path.clone()))
    })
    .await;
    let (file, size, path) = match checked {
        Some(Ok(opened)) => opened,
        Some(Err(refused)) => {
            tracing::warn!("stream {id}: {refused}");
            if matches!(refused, files::Refused::Changed(_)) {
                s.activity.request_rescan();
            }
            return (StatusCode::NOT_FOUND, "the file is not readable now\n").into_response();
        }
        None => return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
    };
    let path = std::path::PathBuf::from(path);
    let mut file = tokio::fs::File::from_std(file);
    let headers = &request.headers;
    let ask = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match ask {
        RangeAsk::Whole => (StatusCode::OK, 0, size),
        RangeAsk::Part(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1),
        RangeAsk::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response();
        }
    };
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "seek failed\n").into_response();
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(len),
        64 << 10,
    ));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if download {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("track")
            .replace(['"', '\\', '\r', '\n'], "_");
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeAsk {
        RangeAsk::Part(ByteRange { start, end })
    }

    #[test]
    fn ranges_within_the_file() {
        assert_eq!(parse_range(None, 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 100), part(0, 99));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), part(10, 19));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-500"), 100), part(0, 99));
    }

    #[test]
    fn broken_or_past_the_end_is_unsatisfiable() {
        for bad in [
            "bytes=100-",
            "bytes=200-300",
            "bytes=5-1",
            "bytes=-0",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(
                parse_range(Some(bad), 100),
                RangeAsk::Unsatisfiable,
                "{bad}"
            );
        }
        assert_eq!(parse_range(Some("bytes=0-"), 0), RangeAsk::Unsatisfiable);
    }
}
