//! Lyrics: `getLyrics` (by artist and title, plain text) and `getLyricsBySongId` (the
//! `songLyrics` extension, version 1: every set of lyrics found, synced or not).
//!
//! In: a song (or an artist and a title), and at request time its file and the files beside
//! it: an `.lrc` file of the same name, the ID3 `SYLT` frame (synced; symphonia skips it, so
//! it is read here from the tag), and the text tags symphonia calls lyrics (ID3 `USLT`,
//! Vorbis `LYRICS`/`UNSYNCEDLYRICS`, MP4 `©lyr`). A text tag holding LRC (as many taggers
//! write it) counts as synced. Out: `lyricsList.structuredLyrics[]` (`lang`, `synced`,
//! `offset`, `displayArtist`, `displayTitle`, `line[{start, value}]`, start in ms), or
//! `lyrics` with the text. Nothing found is a valid empty answer.
//!
//! Reads are capped ([`MAX_LRC`], [`MAX_ID3`]): a huge sidecar or tag is skipped, not read.
//! Files are opened through [`files`]: the song's only while it is the file analysed, the
//! sidecar only as a regular file under the library folders.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Ctx;
use super::protocol::{Error, Node, Params};
use symphonia::core::meta::{MetadataRevision, StandardTagKey};

use crate::audio::mapped::MappedSource;
use crate::audio::sanity::resynchronise;
use crate::server::files;
use crate::store::StoredTrack;

/// Longest `.lrc` file read.
const MAX_LRC: u64 = 256 << 10;
/// Longest ID3v2 tag read for its `SYLT` frame (pictures make tags of a few MB).
const MAX_ID3: u64 = 16 << 20;
/// Songs tried when `getLyrics` names an artist and title that several files share.
const LYRICS_TRIES: usize = 4;
/// The language when the source says none (the spec's "undetermined").
const UNDETERMINED: &str = "und";

/// One line: its start in ms when synced.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    start_ms: Option<u64>,
    text: String,
}

/// One set of lyrics, as `structuredLyrics` carries it.
#[derive(Debug, Clone, PartialEq)]
struct Lyrics {
    lang: String,
    synced: bool,
    /// Milliseconds; positive shows the lines sooner (LRC's `[offset:]` and the spec agree).
    offset_ms: i64,
    /// LRC's `[ar:]` and `[ti:]`, when given.
    artist: Option<String>,
    title: Option<String>,
    lines: Vec<Line>,
}

impl Lyrics {
    fn plain_text(&self) -> String {
        let texts: Vec<&str> = self.lines.iter().map(|l| l.text.as_str()).collect();
        texts.join("\n")
    }
}

/// `mm:ss`, `mm:ss.x…` or `mm:ss:xx` (minutes may pass 59) in ms.
fn timestamp(s: &str) -> Option<u64> {
    let (min, rest) = s.split_once(':')?;
    let (sec, frac) = match rest.split_once(['.', ':']) {
        Some((sec, frac)) => (sec, frac),
        None => (rest, ""),
    };
    let digits = |t: &str| !t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(min) || !digits(sec) || !(frac.is_empty() || digits(frac)) {
        return None;
    }
    let sec: u64 = sec.parse().ok()?;
    if sec >= 60 {
        return None;
    }
    // Hundredths usually, thousandths sometimes: scale to ms.
    let frac_ms = match frac.len() {
        0 => 0,
        n => {
            let v: u64 = frac.get(..n.min(3))?.parse().ok()?;
            v * 10u64.pow(3 - n.min(3) as u32)
        }
    };
    Some(min.parse::<u64>().ok()? * 60_000 + sec * 1000 + frac_ms)
}

/// Drops enhanced LRC's word stamps (`<00:12.34>`) from a line's text.
fn without_word_stamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        match rest[open + 1..].find('>') {
            Some(close) if timestamp(&rest[open + 1..open + 1 + close]).is_some() => {
                out.push_str(&rest[..open]);
                rest = &rest[open + 2 + close..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// Lyrics from text: LRC (any `[mm:ss.xx]` line makes them synced, the unstamped lines are
/// then left out), else plain lines (blank lines inside kept: they part the verses). `None`
/// when there is no text at all.
fn parse_text(text: &str, lang: &str) -> Option<Lyrics> {
    let mut lyrics = Lyrics {
        lang: lang.to_string(),
        synced: false,
        offset_ms: 0,
        artist: None,
        title: None,
        lines: Vec::new(),
    };
    let mut stamped: Vec<Line> = Vec::new();
    let mut plain: Vec<String> = Vec::new();
    for raw in text.trim_start_matches('\u{feff}').lines() {
        let mut rest = raw.trim();
        let mut stamps: Vec<u64> = Vec::new();
        let mut was_tag = false;
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else { break };
            let field = &inner[..close];
            if let Some(ms) = timestamp(field.trim()) {
                stamps.push(ms);
            } else if let Some((key, value)) = field.split_once(':')
                && stamps.is_empty()
                && key.len() <= 10
                && key.bytes().all(|b| b.is_ascii_alphabetic())
            {
                let value = value.trim();
                match key.to_ascii_lowercase().as_str() {
                    "ar" if !value.is_empty() => lyrics.artist = Some(value.to_string()),
                    "ti" if !value.is_empty() => lyrics.title = Some(value.to_string()),
                    "offset" => {
                        lyrics.offset_ms = value.trim_start_matches('+').parse().unwrap_or(0)
                    }
                    "la" | "lang" if !value.is_empty() => lyrics.lang = value.to_string(),
                    _ => {}
                }
                was_tag = true;
            } else {
                break;
            }
            rest = inner[close + 1..].trim_start();
        }
        if !stamps.is_empty() {
            let text = without_word_stamps(rest);
            stamped.extend(stamps.into_iter().map(|ms| Line {
                start_ms: Some(ms),
                text: text.clone(),
            }));
        } else if !(was_tag && rest.is_empty()) {
            plain.push(rest.to_string());
        }
    }
    if !stamped.is_empty() {
        // Lines stamped twice (a chorus) appear at each time.
        stamped.sort_by_key(|l| l.start_ms);
        lyrics.synced = true;
        lyrics.lines = stamped;
    } else {
        let first = plain.iter().position(|l| !l.is_empty())?;
        let last = plain.iter().rposition(|l| !l.is_empty())?;
        lyrics.lines = plain[first..=last]
            .iter()
            .map(|t| Line {
                start_ms: None,
                text: t.clone(),
            })
            .collect();
    }
    lyrics
        .lines
        .iter()
        .any(|l| !l.text.is_empty())
        .then_some(lyrics)
}

/// ID3v2 sizes: 28 bits in 4 bytes of 7.
fn synchsafe(b: &[u8]) -> usize {
    b.iter()
        .fold(0, |acc, &x| (acc << 7) | usize::from(x & 0x7f))
}

/// Text in an ID3 encoding (0 Latin-1, 1 UTF-16 with BOM, 2 UTF-16BE, 3 UTF-8) up to its
/// terminator; returns the text and the bytes after it.
fn id3_text(encoding: u8, data: &[u8]) -> Option<(String, &[u8])> {
    if encoding == 1 || encoding == 2 {
        let end = data.chunks_exact(2).position(|c| c == [0, 0]);
        let (body, rest) = match end {
            Some(k) => (&data[..2 * k], &data[2 * k + 2..]),
            None => (&data[..data.len() & !1], &data[data.len()..]),
        };
        let (big, body) = match body {
            [0xfe, 0xff, tail @ ..] => (true, tail),
            [0xff, 0xfe, tail @ ..] => (false, tail),
            _ => (encoding == 2, body),
        };
        let units = body.chunks_exact(2).map(|c| {
            if big {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        let text = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        return Some((text, rest));
    }
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let body = &data[..end];
    let text = match encoding {
        0 => body.iter().map(|&b| char::from(b)).collect(),
        3 => String::from_utf8_lossy(body).into_owned(),
        _ => return None,
    };
    Some((text, data.get(end + 1..).unwrap_or(&[])))
}

/// A `SYLT` frame's body: lyrics synced in milliseconds (frames stamped in MPEG frames are
/// left out: their time depends on the stream).
fn parse_sylt(body: &[u8]) -> Option<Lyrics> {
    let [encoding, l0, l1, l2, format, _content, rest @ ..] = body else {
        return None;
    };
    if *format != 2 {
        return None;
    }
    let lang: String = [*l0, *l1, *l2]
        .iter()
        .filter(|b| b.is_ascii_alphabetic())
        .map(|&b| char::from(b.to_ascii_lowercase()))
        .collect();
    let (_descriptor, mut rest) = id3_text(*encoding, rest)?;
    let mut lines = Vec::new();
    while !rest.is_empty() {
        let (text, after) = id3_text(*encoding, rest)?;
        let (stamp, after) = after.split_first_chunk::<4>()?;
        // Taggers often start each line with a newline: the text is what matters.
        let text = text.trim().to_string();
        if !text.is_empty() {
            lines.push(Line {
                start_ms: Some(u64::from(u32::from_be_bytes(*stamp))),
                text,
            });
        }
        rest = after;
    }
    if lines.is_empty() {
        return None;
    }
    lines.sort_by_key(|l| l.start_ms);
    Some(Lyrics {
        lang: if lang.len() == 3 {
            lang
        } else {
            UNDETERMINED.into()
        },
        synced: true,
        offset_ms: 0,
        artist: None,
        title: None,
        lines,
    })
}

/// The `SYLT` frames of an ID3v2 tag (`tag`: from its 10-byte header on).
fn sylt_frames(tag: &[u8]) -> Vec<Lyrics> {
    let mut found = Vec::new();
    let Some((header, body)) = tag.split_first_chunk::<10>() else {
        return found;
    };
    if &header[..3] != b"ID3" {
        return found;
    }
    let (version, flags) = (header[3], header[5]);
    let size = synchsafe(&header[6..10]).min(body.len());
    let mut body = body[..size].to_vec();
    if flags & 0x80 != 0 && version < 4 {
        body = resynchronise(&body);
    }
    let mut at = 0;
    if flags & 0x40 != 0 && version >= 3 {
        let Some(ext) = body.get(..4) else {
            return found;
        };
        at = if version == 3 {
            4usize.saturating_add(u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize)
        } else {
            synchsafe(ext)
        };
    }
    let (id_len, head_len) = if version == 2 { (3, 6) } else { (4, 10) };
    while let Some(head) = body.get(at..at.saturating_add(head_len)) {
        if head[0] == 0 {
            break; // padding
        }
        let id = &head[..id_len];
        let len = match version {
            2 => (usize::from(head[3]) << 16) | (usize::from(head[4]) << 8) | usize::from(head[5]),
            3 => u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize,
            _ => synchsafe(&head[4..8]),
        };
        let start = at + head_len;
        let end = start.saturating_add(len);
        let Some(data) = body.get(start..end) else {
            break;
        };
        at = end;
        if id != b"SYLT" && id != b"SLT" {
            continue;
        }
        let format = if version >= 3 { head[9] } else { 0 };
        let data = match version {
            // Compressed, encrypted: not for us. Grouped: one byte of group id first.
            3 if format & 0xc0 != 0 => continue,
            3 if format & 0x20 != 0 => data.get(1..).unwrap_or(&[]).to_vec(),
            4 if format & 0x0c != 0 => continue,
            4 => {
                let data = if format & 0x01 != 0 {
                    data.get(4..).unwrap_or(&[])
                } else {
                    data
                };
                if format & 0x02 != 0 || flags & 0x80 != 0 {
                    resynchronise(data)
                } else {
                    data.to_vec()
                }
            }
            _ => data.to_vec(),
        };
        found.extend(parse_sylt(&data));
    }
    found
}

/// The `SYLT` lyrics of the ID3v2 tag a file starts with, if its tag is not too long.
fn file_sylt(mut file: &File) -> Vec<Lyrics> {
    let mut header = [0u8; 10];
    if file.read_exact(&mut header).is_err() || &header[..3] != b"ID3" {
        return Vec::new();
    }
    let size = synchsafe(&header[6..10]) as u64;
    if size > MAX_ID3 {
        return Vec::new();
    }
    let mut tag = header.to_vec();
    if file.take(size).read_to_end(&mut tag).is_err() {
        return Vec::new();
    }
    sylt_frames(&tag)
}

/// The lyrics among a metadata revision's tags; the language from ID3's `USLT!eng` key.
fn tag_lyrics(rev: &MetadataRevision, out: &mut Vec<Lyrics>) {
    for tag in rev.tags() {
        if tag.std_key != Some(StandardTagKey::Lyrics) {
            continue;
        }
        let lang = tag
            .key
            .split_once('!')
            .map(|(_, l)| l.to_ascii_lowercase())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| UNDETERMINED.into());
        out.extend(parse_text(&tag.value.to_string(), &lang));
    }
}

/// Every set of lyrics for the file at `path`: its `.lrc`, then the embedded ones; a set
/// found twice (an LRC also pasted into the tag) once.
fn lyrics_of(roots: &[PathBuf], track: &StoredTrack) -> Vec<Lyrics> {
    let path = Path::new(&track.path);
    let mut all = Vec::new();
    if let Ok((file, _)) = files::open_in_library(roots, &path.with_extension("lrc")) {
        let mut bytes = Vec::new();
        if file.take(MAX_LRC + 1).read_to_end(&mut bytes).is_ok() && bytes.len() as u64 <= MAX_LRC {
            all.extend(parse_text(&String::from_utf8_lossy(&bytes), UNDETERMINED));
        }
    }
    // The tags only of the file that was analysed (see `files`).
    let Ok((file, _)) = files::open_track(roots, track) else {
        return all;
    };
    all.extend(file_sylt(&file));
    let opened = MappedSource::map(&file)
        .ok()
        .and_then(|source| crate::audio::open_mapped(source, path, false).ok());
    if let Some(mut opened) = opened {
        if let Some(rev) = opened
            .probed
            .metadata
            .get()
            .as_ref()
            .and_then(|m| m.current())
        {
            tag_lyrics(rev, &mut all);
        }
        if let Some(rev) = opened.probed.format.metadata().current() {
            tag_lyrics(rev, &mut all);
        }
    }
    let mut unique: Vec<Lyrics> = Vec::with_capacity(all.len());
    for l in all {
        if !unique.iter().any(|u| u.lines == l.lines) {
            unique.push(l);
        }
    }
    unique
}

/// `getLyricsBySongId`: `lyricsList` with every set found for the song.
pub fn by_song(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let i = x.song(p.required("id")?)?;
    let view = x.catalog.view(i);
    let ix = x.index();
    let album_artist = &ix.artists[ix.albums[ix.album_of[i]].artist].name;
    let artist = view.artist.unwrap_or(album_artist);
    let sets = lyrics_of(&x.server.library, &x.catalog.lib.tracks[i])
        .into_iter()
        .map(|l| {
            let lines = l
                .lines
                .iter()
                .map(|line| {
                    Node::new()
                        .opt("start", line.start_ms)
                        .text(line.text.as_str())
                })
                .collect();
            Node::new()
                .attr("displayArtist", l.artist.as_deref().unwrap_or(artist))
                .attr("displayTitle", l.title.as_deref().unwrap_or(&view.title))
                .attr("lang", l.lang.as_str())
                .attr("offset", l.offset_ms)
                .attr("synced", l.synced)
                .many("line", lines)
        })
        .collect();
    Ok(Node::new().one("lyricsList", Node::new().many("structuredLyrics", sets)))
}

/// `getLyrics`: the first lyrics of a song with this artist (its own or its album's) and
/// title, case ignored, as plain text; empty when there are none.
pub fn by_artist_and_title(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let wanted = |name: &str| {
        p.get(name)
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
    };
    let (artist, title) = (wanted("artist"), wanted("title"));
    let mut found = None;
    if artist.is_some() || title.is_some() {
        let ix = x.index();
        let candidates = (0..x.catalog.lib.len())
            .filter(|&i| {
                let view = x.catalog.view(i);
                let album_artist = &ix.artists[ix.albums[ix.album_of[i]].artist].name;
                title
                    .as_ref()
                    .is_none_or(|t| view.title.to_lowercase() == *t)
                    && artist.as_ref().is_none_or(|a| {
                        view.artist.is_some_and(|v| v.trim().to_lowercase() == *a)
                            || album_artist.to_lowercase() == *a
                    })
            })
            .take(LYRICS_TRIES);
        for i in candidates {
            if let Some(l) = lyrics_of(&x.server.library, &x.catalog.lib.tracks[i]).first() {
                let view = x.catalog.view(i);
                let album_artist = &ix.artists[ix.albums[ix.album_of[i]].artist].name;
                found = Some((
                    view.artist.unwrap_or(album_artist).to_string(),
                    view.title,
                    l.plain_text(),
                ));
                break;
            }
        }
    }
    let node = match found {
        Some((artist, title, text)) => Node::new()
            .attr("artist", artist)
            .attr("title", title)
            .text(text),
        None => Node::new()
            .opt("artist", p.get("artist"))
            .opt("title", p.get("title"))
            .text(""),
    };
    Ok(Node::new().one("lyrics", node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(l: &Lyrics) -> Vec<(Option<u64>, &str)> {
        l.lines
            .iter()
            .map(|x| (x.start_ms, x.text.as_str()))
            .collect()
    }

    #[test]
    fn lrc_lines_tags_and_offsets() {
        let lrc = "\u{feff}[ar: Muse]\n[ti:Hysteria]\n[offset:-100]\n[length: 3:47]\n\
                   [00:02.00]Grating me\r\n[00:00.5]It's <00:00.60>bugging me\n\
                   [01:05.123][00:03.01]And twisting me around\nnot stamped\n[re:x]\n";
        let l = parse_text(lrc, "und").unwrap();
        assert!(l.synced);
        assert_eq!(l.offset_ms, -100);
        assert_eq!(l.artist.as_deref(), Some("Muse"));
        assert_eq!(l.title.as_deref(), Some("Hysteria"));
        assert_eq!(
            lines(&l),
            [
                (Some(500), "It's bugging me"),
                (Some(2000), "Grating me"),
                (Some(3010), "And twisting me around"),
                (Some(65_123), "And twisting me around"),
            ]
        );
    }

    #[test]
    fn plain_tag_text_keeps_its_verses() {
        let l = parse_text("\n\nFirst line\nSecond\n\nThird [live]\n\n", "eng").unwrap();
        assert!(!l.synced);
        assert_eq!(l.lang, "eng");
        assert_eq!(
            lines(&l),
            [
                (None, "First line"),
                (None, "Second"),
                (None, ""),
                (None, "Third [live]"),
            ]
        );
        assert_eq!(l.plain_text(), "First line\nSecond\n\nThird [live]");
        assert_eq!(parse_text(" \n\n", "und"), None);
        assert_eq!(parse_text("[ar:Only tags]\n[ti:x]", "und"), None);
        // A bracket that is neither a time nor a tag is text.
        let l = parse_text("[Chorus]\nLa la", "und").unwrap();
        assert_eq!(lines(&l)[0], (None, "[Chorus]"));
    }

    #[test]
    fn text_tags_with_their_language() {
        use symphonia::core::meta::{MetadataBuilder, Tag, Value};
        let mut b = MetadataBuilder::new();
        let lyrics = Some(StandardTagKey::Lyrics);
        b.add_tag(Tag::new(
            lyrics,
            "USLT!eng",
            Value::from("Plain words\nMore"),
        ));
        b.add_tag(Tag::new(lyrics, "LYRICS", Value::from("[00:01.00]Timed")));
        b.add_tag(Tag::new(lyrics, "UNSYNCEDLYRICS", Value::from("  ")));
        b.add_tag(Tag::new(
            Some(StandardTagKey::Comment),
            "COMM!eng",
            Value::from("not lyrics"),
        ));
        let mut found = Vec::new();
        tag_lyrics(&b.metadata(), &mut found);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].lang.as_str(), found[0].synced), ("eng", false));
        assert_eq!(lines(&found[0]), [(None, "Plain words"), (None, "More")]);
        assert_eq!((found[1].lang.as_str(), found[1].synced), ("und", true));
        assert_eq!(lines(&found[1]), [(Some(1000), "Timed")]);
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp("00:12.34"), Some(12_340));
        assert_eq!(timestamp("1:02.5"), Some(62_500));
        assert_eq!(timestamp("104:00:07"), Some(6_240_070));
        assert_eq!(timestamp("00:12"), Some(12_000));
        assert_eq!(timestamp("00:61.00"), None);
        assert_eq!(timestamp("ar:x"), None);
        assert_eq!(timestamp(":12.00"), None);
        assert_eq!(without_word_stamps("a <00:01.00>b <c> d"), "a b <c> d");
    }

    /// An ID3v2 tag of `version` holding these frames (id, flags, body).
    fn id3(version: u8, frames: &[(&[u8; 4], u8, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, flags, data) in frames {
            body.extend_from_slice(*id);
            let n = data.len() as u32;
            if version == 4 {
                body.extend([
                    (n >> 21) as u8 & 0x7f,
                    (n >> 14) as u8 & 0x7f,
                    (n >> 7) as u8 & 0x7f,
                    n as u8 & 0x7f,
                ]);
            } else {
                body.extend(n.to_be_bytes());
            }
            body.extend([0, *flags]);
            body.extend(data);
        }
        body.extend([0; 16]); // padding
        let n = body.len() as u32;
        let mut tag = b"ID3".to_vec();
        tag.extend([version, 0, 0]);
        tag.extend([
            (n >> 21) as u8 & 0x7f,
            (n >> 14) as u8 & 0x7f,
            (n >> 7) as u8 & 0x7f,
            n as u8 & 0x7f,
        ]);
        tag.extend(body);
        tag
    }

    fn sylt_utf8(format: u8) -> Vec<u8> {
        let mut b = vec![3, b'e', b'n', b'g', format, 1];
        b.extend(b"desc\0");
        for (text, ms) in [("\nSecond", 2500u32), ("First", 1000)] {
            b.extend(text.as_bytes());
            b.push(0);
            b.extend(ms.to_be_bytes());
        }
        b
    }

    #[test]
    fn sylt_frames_in_ms_are_read() {
        for version in [3, 4] {
            let tag = id3(
                version,
                &[
                    (b"TIT2", 0, b"\x03Title".to_vec()),
                    (b"SYLT", 0, sylt_utf8(2)),
                    (b"SYLT", 0, sylt_utf8(1)), // MPEG frames: left out
                ],
            );
            let found = sylt_frames(&tag);
            assert_eq!(found.len(), 1, "v2.{version}");
            assert_eq!(found[0].lang, "eng");
            assert_eq!(
                lines(&found[0]),
                [(Some(1000), "First"), (Some(2500), "Second")]
            );
        }
        // UTF-16 with a BOM.
        let mut b = vec![1, b'd', b'e', b'u', 2, 1, 0xff, 0xfe, 0, 0];
        for unit in "Hallo".encode_utf16() {
            b.extend(unit.to_le_bytes());
        }
        b.extend([0, 0]);
        b.extend(42u32.to_be_bytes());
        let found = sylt_frames(&id3(3, &[(b"SYLT", 0, b)]));
        assert_eq!(lines(&found[0]), [(Some(42), "Hallo")]);
        assert_eq!(found[0].lang, "deu");
        // Truncated and hostile tags give nothing, and no panic.
        let tag = id3(3, &[(b"SYLT", 0, sylt_utf8(2))]);
        for cut in 0..tag.len() {
            let _ = sylt_frames(&tag[..cut]);
        }
        assert!(sylt_frames(b"ID3\x03\0\0\x7f\x7f\x7f\x7fjunk").is_empty());
        assert_eq!(
            resynchronise(&[0xff, 0x00, 0xe0, 0xff, 0x01]),
            [0xff, 0xe0, 0xff, 0x01]
        );
    }

    #[test]
    fn a_sidecar_lrc_is_found_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let song = dir.path().join("song.wav");
        std::fs::write(&song, b"not audio").unwrap();
        let roots = [dir.path().to_path_buf()];
        let mut track = crate::playlist::space::tests_support::stored(1, None, "C", false, 0.5);
        track.path = song.to_string_lossy().into_owned();
        let lyrics_of = |t: &StoredTrack| super::lyrics_of(&roots, t);
        let song = track;
        assert!(lyrics_of(&song).is_empty());
        std::fs::write(
            dir.path().join("song.lrc"),
            "[00:01.00]One\n[00:02.00]Two\n",
        )
        .unwrap();
        let found = lyrics_of(&song);
        assert_eq!(found.len(), 1);
        assert_eq!(lines(&found[0]), [(Some(1000), "One"), (Some(2000), "Two")]);
        assert_eq!(found[0].lang, "und");
        let huge = "[00:01.00]x\n".repeat((MAX_LRC as usize) / 12 + 1);
        std::fs::write(dir.path().join("song.lrc"), huge).unwrap();
        assert!(lyrics_of(&song).is_empty());
    }
}
