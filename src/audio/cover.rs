//! The picture embedded in an audio file (ID3 APIC, FLAC PICTURE, MP4 covr, Vorbis
//! METADATA_BLOCK_PICTURE), for the server's cover art.
//!
//! In: a path. Out: the front cover (else the first picture) as its declared media type and
//! bytes, or `None`. The file is opened through [`super::open`], the same guarded mapping and
//! length checks as the analysis; no audio is decoded.

use std::path::Path;

use symphonia::core::meta::{StandardVisualKey, Visual};

/// An embedded picture.
pub struct Picture {
    pub media_type: String,
    pub data: Box<[u8]>,
}

/// The front cover embedded in `path` (else its first picture), if any.
pub fn embedded(path: &Path) -> Option<Picture> {
    let mut probed = super::open(path, false).ok()?.probed;
    let pick = |visuals: &[Visual]| {
        visuals
            .iter()
            .find(|v| v.usage == Some(StandardVisualKey::FrontCover))
            .or(visuals.first())
            .filter(|v| !v.data.is_empty())
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
    metadata.current().and_then(|rev| pick(rev.visuals()))
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
}
