//! The picture embedded in an audio file (ID3 APIC, also inside AIFF; FLAC PICTURE, MP4 covr,
//! Vorbis METADATA_BLOCK_PICTURE; through ffmpeg, WMA's and APEv2's pictures), for the
//! server's cover art.
//!
//! In: a path (or a file the server opened). Out: the front cover (else the first picture)
//! as its declared media type and bytes, or `None`. The file is opened through [`super::open`], the same guarded mapping and
//! length checks as the analysis; no audio is decoded.

use std::fs::File;
use std::path::Path;

use symphonia::core::meta::{StandardVisualKey, Visual};

/// An embedded picture.
pub struct Picture {
    pub media_type: String,
    pub data: Box<[u8]>,
}

/// The front cover embedded in `path` (else its first picture), if any.
pub fn embedded(path: &Path) -> Option<Picture> {
    let source = super::mapped::MappedSource::open(path).ok()?;
    from_source(source, path)
}

/// [`embedded`] for a file the caller opened (`path` names it, for the container hint and
/// for ffmpeg).
pub fn embedded_in(file: &File, path: &Path) -> Option<Picture> {
    from_source(super::mapped::MappedSource::map(file).ok()?, path)
}

/// Symphonia's probe; for the formats only ffmpeg reads, ffmpeg.
fn from_source(source: super::mapped::MappedSource, path: &Path) -> Option<Picture> {
    let head = source
        .contents()
        .get(..64)
        .unwrap_or(source.contents())
        .to_vec();
    if super::ffmpeg::fallback_format(&head).is_some() {
        let data = super::ffmpeg::picture(path)?;
        return Some(Picture {
            media_type: String::new(),
            data: data.into_boxed_slice(),
        });
    }
    let opened = contained(|| super::open_mapped(source, path, false).ok())?;
    contained(|| picture(opened))
}

/// `probe()`, a panic inside symphonia taken as no picture, as the analysis takes it as that
/// file's error (a WAV header with a sample rate of 0 makes the probe panic; the `cover` fuzz
/// target found it).
fn contained<T>(probe: impl FnOnce() -> Option<T>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe))
        .ok()
        .flatten()
}

/// The front cover (else the first picture) met while probing; none larger than
/// [`super::MAX_PICTURE_BYTES`].
fn picture(opened: super::Opened) -> Option<Picture> {
    let mut probed = opened.probed;
    let fits = |v: &&Visual| !v.data.is_empty() && v.data.len() <= super::MAX_PICTURE_BYTES;
    let pick = |visuals: &[Visual]| {
        let mut usable = visuals.iter().filter(fits);
        let first = usable.clone().next();
        usable
            .find(|v| v.usage == Some(StandardVisualKey::FrontCover))
            .or(first)
            .map(|v| Picture {
                media_type: v.media_type.clone(),
                data: v.data.clone(),
            })
    };
    if let Some(p) = probed
        .metadata
        .get()
        .as_ref()
        .and_then(|m| m.current())
        .and_then(|rev| pick(rev.visuals()))
    {
        return Some(p);
    }
    let metadata = probed.format.metadata();
    if let Some(p) = metadata.current().and_then(|rev| pick(rev.visuals())) {
        return Some(p);
    }
    // An AIFF file's ID3 chunk.
    let side = opened.side.as_ref().and_then(|(_, id3)| id3.as_ref());
    side.and_then(|rev| pick(rev.visuals()))
}

/// The raster types served (never a type a browser would run or render as a page).
pub const RASTER: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The picture's MIME type: from its first bytes when they say, else what the file declared
/// if it is one of the [`RASTER`] types; `None` for anything else.
pub fn raster_type(declared: &str, head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG") {
        Some("image/png")
    } else if head.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF8") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        let declared = declared.trim().to_ascii_lowercase();
        RASTER.into_iter().find(|t| *t == declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_picture_in_a_file_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("a.wav");
        let spec = crate::synth::SongSpec {
            bpm: 120.0,
            tonic: 0,
            minor: false,
            seconds: 1.0,
        };
        crate::synth::write_song(&wav, &spec, 22_050, 1, crate::synth::WavFormat::Pcm16).unwrap();
        assert!(embedded(&wav).is_none());
        assert!(embedded(&dir.path().join("missing.mp3")).is_none());
        std::fs::write(
            dir.path().join("junk.mp3"),
            b"ID3\x04\0\0\x7f\x7f\x7f\x7fjunk",
        )
        .unwrap();
        assert!(embedded(&dir.path().join("junk.mp3")).is_none());
    }

    #[test]
    fn picture_types_from_their_bytes() {
        assert_eq!(
            raster_type("image/jpeg", b"\x89PNG\r\n\x1a\n"),
            Some("image/png")
        );
        assert_eq!(raster_type("", b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(raster_type("Image/GIF", b"??"), Some("image/gif"));
        assert_eq!(raster_type("image/bmp", b"BM"), None);
        assert_eq!(raster_type("image/svg+xml", b"<svg"), None);
        assert_eq!(raster_type("text/html", b"<html>"), None);
    }
}
