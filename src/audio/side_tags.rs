//! Tags kept where symphonia does not look: the ID3v2 tag inside AIFF (`ID3 ` chunk) and DSD
//! files, AIFF's own text chunks (`NAME`, `AUTH`) and CAF's `info` chunk.
//!
//! In: the tag's or the file's bytes. Out: a symphonia [`MetadataRevision`] (tags, and
//! pictures when asked for, for cover art) read with symphonia's own ID3v2 reader after the
//! same length checks as any file's tag, and for AIFF the text chunks as [`Tags`]. A missing,
//! cut or malformed tag gives nothing, never an error: tags are never worth a file.

use std::io::Cursor;

use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::{Limit, MetadataOptions, MetadataRevision};
use symphonia::core::probe::Instantiate;

use crate::tags::Tags;

/// Largest ID3v2 tag read (pictures included).
pub const MAX_TAG_BYTES: u64 = 16 << 20;

/// The full length (header, body, footer) of the ID3v2 tag whose 10-byte header is `head`.
pub fn id3v2_len(head: &[u8]) -> Option<u64> {
    if head.len() < 10 || &head[..3] != b"ID3" {
        return None;
    }
    let body = head[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7f));
    let footer = if head[3] >= 4 && head[5] & 0x10 != 0 {
        10
    } else {
        0
    };
    Some(10 + body + footer)
}

/// Reads the ID3v2 tag that `bytes` begins with; its pictures too when `pictures`.
pub fn id3v2(bytes: Vec<u8>, pictures: bool) -> Option<MetadataRevision> {
    // The same length checks as for any file's tag before symphonia allocates by them.
    if super::sanity::check(&bytes, bytes.len() as u64).is_err() {
        return None;
    }
    let limit = if pictures {
        super::MAX_PICTURE_BYTES
    } else {
        0
    };
    // A panic inside symphonia on a malformed tag costs the tags, not the file.
    std::panic::catch_unwind(move || {
        let mut stream = MediaSourceStream::new(
            Box::new(Cursor::new(bytes)),
            MediaSourceStreamOptions::default(),
        );
        match symphonia::default::get_probe().next(&mut stream).ok()? {
            Instantiate::Metadata(make) => make(&MetadataOptions {
                limit_visual_bytes: Limit::Maximum(limit),
                ..MetadataOptions::default()
            })
            .read_all(&mut stream)
            .ok(),
            Instantiate::Format(_) => None,
        }
    })
    .ok()
    .flatten()
}

/// The tags of an AIFF or AIFC file (`bytes`: the whole file, as mapped): its text chunks
/// and its `ID3 ` chunk; `None` for any other file. Only chunk headers are read on the way,
/// never the sound data.
pub fn aiff(bytes: &[u8], pictures: bool) -> Option<(Tags, Option<MetadataRevision>)> {
    if bytes.len() < 12 || &bytes[..4] != b"FORM" || !matches!(&bytes[8..12], b"AIFF" | b"AIFC") {
        return None;
    }
    let mut tags = Tags::default();
    let mut id3 = None;
    let mut at = 12usize;
    while let Some(head) = bytes.get(at..at + 8) {
        let size = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let body = at + 8;
        let end = body.saturating_add(size).min(bytes.len());
        let text = || {
            let raw = &bytes[body..end];
            let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
            // AIFF text is ASCII (Mac Roman in old files): what is not UTF-8 is kept lossily.
            String::from_utf8_lossy(raw).trim().to_string()
        };
        match &head[..4] {
            b"NAME" => tags.merge_named("title", &text()),
            b"AUTH" => tags.merge_named("artist", &text()),
            b"ID3 " | b"id3 " if id3.is_none() => {
                let len = (end - body).min(MAX_TAG_BYTES as usize);
                id3 = id3v2(bytes[body..body + len].to_vec(), pictures);
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    Some((tags, id3))
}

/// The tags of a CAF file's `info` chunk (`bytes`: the whole file, as mapped); `None` for any
/// other file.
pub fn caf(bytes: &[u8]) -> Option<(Tags, Option<MetadataRevision>)> {
    if bytes.len() < 8 || &bytes[..4] != b"caff" {
        return None;
    }
    let mut tags = Tags::default();
    let mut at = 8usize;
    while let Some(head) = bytes.get(at..at + 12) {
        let size = i64::from_be_bytes(head[4..12].try_into().ok()?);
        // -1: the audio data runs to the end of the file; nothing follows it.
        let Ok(size) = usize::try_from(size) else {
            break;
        };
        let body = at + 12;
        let end = body.saturating_add(size).min(bytes.len());
        if &head[..4] == b"info" && end >= body + 4 {
            // A count, then that many key and value strings, each ended by a NUL.
            let mut strings = bytes[body + 4..end].split(|&b| b == 0);
            while let (Some(key), Some(value)) = (strings.next(), strings.next()) {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                tags.merge_named(&text(key), &text(value));
            }
        }
        at = body.saturating_add(size);
    }
    Some((tags, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aiff_text_chunks_and_nothing_from_other_files() {
        let mut file = b"FORM\0\0\0\0AIFF".to_vec();
        for (id, text) in [(b"NAME", "A Title\0"), (b"AUTH", "An Artist")] {
            file.extend_from_slice(id);
            file.extend_from_slice(&(text.len() as u32).to_be_bytes());
            file.extend_from_slice(text.as_bytes());
            if text.len() % 2 == 1 {
                file.push(0);
            }
        }
        // A chunk claiming more than the file holds ends the walk, not the program.
        file.extend_from_slice(b"SSND\xff\xff\xff\xff");
        let (tags, id3) = aiff(&file, false).expect("an AIFF");
        assert_eq!(tags.title.as_deref(), Some("A Title"));
        assert_eq!(tags.artist.as_deref(), Some("An Artist"));
        assert!(id3.is_none());
        assert!(aiff(b"RIFF\0\0\0\0WAVEfmt ", false).is_none());
        assert_eq!(id3v2_len(b"ID3\x04\0\0\0\0\x02\x01"), Some(10 + 257));
        assert_eq!(id3v2_len(b"RIFF"), None);
    }
}
