//! Sending a track's original file: `/stream/{id}` (and the Subsonic `stream`/`download`),
//! with HTTP Range so that players can seek; or, for a track of a single-file album or a
//! codec players do not read, a WAV decoded on the fly ([`WavCut`]; a download of the
//! latter is the original file).
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
use crate::audio::cut::WavCut;

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
        Some("mp3" | "mp2" | "mp1" | "mpa") => "audio/mpeg",
        Some("flac") => "audio/flac",
        Some("ogg" | "oga" | "opus" | "spx") => "audio/ogg",
        Some("m4a" | "mp4" | "aac" | "m4b") => "audio/mp4",
        Some("wav" | "wave") => "audio/wav",
        Some("aif" | "aiff" | "aifc") => "audio/aiff",
        Some("webm") => "audio/webm",
        Some("mka" | "mkv") => "audio/x-matroska",
        Some("caf") => "audio/x-caf",
        Some("wma" | "asf") => "audio/x-ms-wma",
        Some("wv") => "audio/x-wavpack",
        Some("ape") => "audio/x-ape",
        Some("mpc") => "audio/x-musepack",
        Some("tta") => "audio/x-tta",
        Some("ac3") => "audio/ac3",
        Some("dsf") => "audio/x-dsf",
        Some("dff") => "audio/x-dff",
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
    let track = &catalog.lib.tracks[i];
    // A download is the original file, whatever its format.
    let wav = if download && track.span.is_none() {
        None
    } else {
        track.sent_as_wav()
    };
    let cut = wav.map(|(start, end)| {
        let m = &track.measured;
        let cut = WavCut::new(start, end, m.sample_rate, m.channels);
        (cut, track.file().to_string(), track.path.clone())
    });
    let checked = blocking::run(Work::Open, move || {
        let track = &catalog.lib.tracks[i];
        files::open_track(&roots, track).map(|(file, md)| (file, md.len(), track.path.clone()))
    })
    .await;
    if let (Some((cut, file, path)), Some(Ok(_))) = (cut, &checked) {
        return send_cut(cut, file.into(), request, download, &path);
    }
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
    let Some((status, start, len)) = ranged(request, size) else {
        return unsatisfiable(size);
    };
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "seek failed\n").into_response();
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(len),
        64 << 10,
    ));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("track");
    respond(
        body,
        (status, start, len, size),
        content_type(&path),
        download.then_some(name),
    )
}

/// What the request's `Range` asks of `size` bytes: the status, first byte and length;
/// `None` when it cannot be served ([`unsatisfiable`]).
fn ranged(request: &Parts, size: u64) -> Option<(StatusCode, u64, u64)> {
    let value = request
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    match parse_range(value, size) {
        RangeAsk::Whole => Some((StatusCode::OK, 0, size)),
        RangeAsk::Part(r) => Some((StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1)),
        RangeAsk::Unsatisfiable => None,
    }
}

/// The 416 answer to a range outside `size` bytes.
fn unsatisfiable(size: u64) -> Response {
    (
        StatusCode::RANGE_NOT_SATISFIABLE,
        [(header::CONTENT_RANGE, format!("bytes */{size}"))],
    )
        .into_response()
}

/// The response around a body: status, type, length, range and (for a download) file name.
fn respond(
    body: Body,
    (status, start, len, size): (StatusCode, u64, u64, u64),
    content_type: &'static str,
    download: Option<&str>,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Some(name) = download {
        let name = name.replace(['"', '\\', '\r', '\n'], "_");
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// A track of a single-file album, or a file no player reads: its span as a WAV, cut while
/// it is sent ([`WavCut`]); the decoder runs on a blocking thread and waits while the listener
/// is slower than the decode (a bounded pipe between them), and stops when the listener
/// goes.
fn send_cut(
    cut: WavCut,
    file: std::path::PathBuf,
    request: &Parts,
    download: bool,
    track_path: &str,
) -> Response {
    let size = cut.len();
    let Some((status, start, len)) = ranged(request, size) else {
        return unsatisfiable(size);
    };
    let (mut writer, reader) = tokio::io::duplex(256 << 10);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        use tokio::io::AsyncWriteExt;
        let mut decoder = crate::audio::Decoder::new();
        let mut send = |bytes: &[u8]| runtime.block_on(writer.write_all(bytes)).is_ok();
        if let Err(e) = cut.produce(&mut decoder, &file, start, start + len - 1, &mut send) {
            tracing::warn!("stream of a track of {}: {e}", file.display());
        }
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        reader,
        64 << 10,
    ));
    let name = std::path::Path::new(track_path)
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| format!("{}.wav", n.replace('#', " ")));
    respond(
        body,
        (status, start, len, size),
        "audio/wav",
        download.then_some(name.as_deref().unwrap_or("track.wav")),
    )
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
