//! The `cover` target: the cover-art probe ([`embedded`], and [`embedded_in`] as `getCoverArt`
//! calls it on a file it opened), which maps the file, runs `audio::sanity` and lets symphonia
//! read the container's tags, pictures included.
//!
//! In: fuzz bytes, written to a scratch file of this thread and probed twice: without an
//! extension (the probe sniffs the bytes alone), and with `.mp3`/`.flac`/`.opus`/`.m4a`/`.ogg`
//! chosen by the first byte, since symphonia takes the extension as a hint. Out: nothing, or
//! a panic (one that escaped the probe, or a failed property):
//! - a picture is never empty and never larger than the file, nor than
//!   [`MAX_PICTURE_BYTES`];
//! - a file opened by the caller gives the same answer as its path;
//! - what `getCoverArt` would send a picture as ([`raster_type`]) is JPEG, PNG, GIF or WebP,
//!   or nothing: an SVG or HTML "picture" is never served as such.
//!
//! The runners bound what else the probe may do: libFuzzer's `-malloc_limit_mb` and
//! `-timeout`, `tests/fuzz.rs` its largest single allocation and time per input. The probe
//! turns symphonia's own panics into "no picture"; under libFuzzer, whose panic hook aborts,
//! they are crashes all the same (symphonia's, not ours: see where they point).
//!
//! Shared by `fuzz/fuzz_targets/cover.rs` (libFuzzer) and `tests/fuzz.rs` (stable).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use playlista::audio::MAX_PICTURE_BYTES;
use playlista::audio::cover::{RASTER, embedded, embedded_in, raster_type};

const EXTENSIONS: [&str; 5] = ["mp3", "flac", "opus", "m4a", "ogg"];

pub fn run(data: &[u8]) {
    thread_local! {
        /// This thread's scratch file, without its extension.
        static SCRATCH: PathBuf = {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            std::env::temp_dir().join(format!("playlista-fuzz-cover-{}-{n}", std::process::id()))
        };
    }
    SCRATCH.with(|base| {
        probe(&base.with_extension("bin"), data, false);
        let ext = EXTENSIONS[data
            .first()
            .map_or(0, |&b| usize::from(b) % EXTENSIONS.len())];
        probe(&base.with_extension(ext), data, true);
    });
}

fn probe(path: &Path, data: &[u8], opened_too: bool) {
    std::fs::write(path, data).expect("write the input to a scratch file");
    let by_path = embedded(path);
    let by_file = opened_too.then(|| {
        let file = std::fs::File::open(path).expect("open the scratch file");
        embedded_in(&file, path)
    });
    let _ = std::fs::remove_file(path);
    if let Some(picture) = &by_path {
        let len = picture.data.len();
        assert!(len > 0, "an empty picture");
        assert!(
            len <= data.len() && len <= MAX_PICTURE_BYTES,
            "a {len}-byte picture from a {}-byte file",
            data.len()
        );
        // What `getCoverArt` would send it as: a raster type or nothing, whatever the file
        // declares (an SVG or HTML "picture" is never served).
        let head = &picture.data[..len.min(12)];
        if let Some(sent_as) = raster_type(&picture.media_type, head) {
            assert!(RASTER.contains(&sent_as), "sent as {sent_as}");
        }
        if !picture.media_type.starts_with("image/") || picture.media_type.contains("svg") {
            let sniffed = head.starts_with(b"\x89PNG")
                || head.starts_with(b"\xFF\xD8\xFF")
                || head.starts_with(b"GIF8")
                || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP");
            assert!(
                sniffed || raster_type(&picture.media_type, head).is_none(),
                "a {} picture would be served",
                picture.media_type
            );
        }
    }
    if let Some(by_file) = by_file {
        let same = match (&by_file, &by_path) {
            (Some(a), Some(b)) => a.media_type == b.media_type && a.data == b.data,
            (a, b) => a.is_none() && b.is_none(),
        };
        assert!(same, "the opened file's picture differs from its path's");
    }
}
