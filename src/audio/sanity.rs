//! Length fields that would make the decoder allocate more than the file could hold.
//!
//! In: the bytes of a file (its memory map: only the few header pages walked here are
//! touched). Out: `Err(reason)` when a declared length is impossible for this file, before
//! symphonia sees it.
//!
//! Why: symphonia 0.5 allocates some buffers at the size a header declares, before reading
//! (it ignores `MetadataOptions`' limits). A 20 KB file declaring a 4 GiB tag frame makes it
//! ask for 4 GiB; where the system refuses (a 1 GB Pi, a 32-bit armhf build, overcommit off)
//! Rust aborts the whole process, which no `catch_unwind` can stop. The fuzzer found three
//! such paths; each check below closes one, and rejects only what no valid file can contain:
//! - ID3v2 frames longer than the tag or the file that holds them (MP3 and anything starting
//!   with `ID3`), read as symphonia reads them: unsynchronised, after an extended header, in
//!   every tag the probe meets (the `cover` fuzz target found a v2.3 tag whose footer flag,
//!   which only v2.4 has, made this walk jump over the next tag's 4 GiB frame);
//! - FLAC metadata: Vorbis comment and picture lengths longer than their block, or than the
//!   part of it the file holds when the file ends inside it (the `cover` fuzz target found a
//!   104-byte file declaring a 182 MB picture there);
//! - MP4: `stsz` sample sizes larger than the whole file; in the boxes symphonia reads whole,
//!   a box larger than its parent and a table (`stsc`, `stts`, `stco`, `co64`, `stsz`) with
//!   more entries than its box holds (the `cover` fuzz target found a 64 GB `stsc`);
//! - Ogg Vorbis / Opus comment lengths longer than the comment packet (the same allocation as
//!   FLAC's, through the Ogg demuxer; found by hand after the fuzzer showed the FLAC one).
//!
//! Other containers may hide similar fields; per-file process isolation in the pipeline is
//! the complete defence, this is the cheap first one.

/// How far symphonia's probe searches for a format marker, from the start of the file or the
/// end of a metadata tag.
const PROBE_LIMIT: usize = 1 << 20;

/// Checks the declared lengths in `head`, the file's bytes (or a prefix of them), against
/// `file_len`, the whole file's length.
///
/// Walks the bytes the way symphonia's probe does: skip junk up to the first marker it knows,
/// read any ID3v2 tag there and search again after it, and check the container it lands on.
/// A check only at offset 0 would let a few junk bytes or a second tag carry the same header
/// past it.
pub fn check(head: &[u8], file_len: u64) -> Result<(), String> {
    let mut from = 0usize;
    loop {
        let Some(at) = next_marker(head, from) else {
            return Ok(());
        };
        let rest = &head[at..];
        if rest.starts_with(b"ID3") {
            from = at + check_id3v2(rest, file_len)?.max(1);
        } else if let Some(blocks) = rest.strip_prefix(b"fLaC") {
            return check_flac(blocks);
        } else if rest.starts_with(b"OggS") {
            return check_ogg(rest);
        } else if rest.starts_with(b"ftyp") {
            return check_mp4(&head[at.saturating_sub(4)..], file_len);
        } else {
            return Ok(()); // WAV, AIFF, MPEG audio or ADTS: nothing of these is checked
        }
    }
}

/// The offset of the first marker symphonia's probe would stop at, searching from `from`.
fn next_marker(b: &[u8], from: usize) -> Option<usize> {
    let end = b.len().min(from.saturating_add(PROBE_LIMIT));
    (from..end).find(|&p| {
        let w = &b[p..];
        w.starts_with(b"ID3")
            || w.starts_with(b"fLaC")
            || w.starts_with(b"OggS")
            || w.starts_with(b"ftyp")
            || w.starts_with(b"RIFF")
            || w.starts_with(b"FORM")
            // MPEG audio layers 1-3 and ADTS AAC frame syncs, as symphonia registers them.
            || matches!(w, [0xff, 0xe2..=0xe7 | 0xf1..=0xf7 | 0xfa..=0xff, ..])
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn syncsafe(b: &[u8]) -> u32 {
    b.iter()
        .fold(0u32, |acc, &x| (acc << 7) | (x & 0x7f) as u32)
}

/// Walks the frames of an ID3v2 tag at the start of `b` as symphonia reads them: through the
/// unsynchronisation of a v2.2/2.3 tag flagged so, after an extended header. Returns where
/// the probe searches on: right after the declared tag (a v2.4 footer is searched too: it
/// holds no marker, and a tag that only claims one may be followed by another tag).
fn check_id3v2(b: &[u8], file_len: u64) -> Result<usize, String> {
    let Some(header) = b.get(..10) else {
        return Ok(0);
    };
    let (major, flags) = (header[3], header[5]);
    let tag_len = syncsafe(&header[6..10]) as usize;
    let end = (10 + tag_len).min(b.len());
    // A v2.4 tag unsynchronises frame by frame, after their headers: sizes are read as stored.
    let body = if flags & 0x80 != 0 && major < 4 {
        std::borrow::Cow::Owned(resynchronise(&b[10..end]))
    } else {
        std::borrow::Cow::Borrowed(&b[10..end])
    };
    let (id_len, head_len) = if major == 2 { (3, 6) } else { (4, 10) };
    let mut at = if flags & 0x40 != 0 && major >= 3 {
        extended_header_len(&body, major)
    } else {
        0
    };
    while let Some(frame) = body.get(at..at + head_len) {
        if frame[0] == 0 {
            break; // padding
        }
        let size = match major {
            2 => u32::from_be_bytes([0, frame[3], frame[4], frame[5]]) as usize,
            3 => u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize,
            _ => syncsafe(&frame[id_len..id_len + 4]) as usize,
        };
        if size > tag_len || size as u64 > file_len {
            return Err(format!(
                "ID3v2 frame {} declares {size} bytes in a {tag_len}-byte tag of a {file_len}-byte file",
                frame[..id_len].escape_ascii()
            ));
        }
        at += head_len + size;
    }
    Ok(10 + tag_len)
}

/// `b` with the 0x00 after each 0xFF dropped (ID3v2 unsynchronisation undone; the lyrics
/// reader's SYLT frames need it too).
pub fn resynchronise(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut after_ff = false;
    for &x in b {
        if !(after_ff && x == 0) {
            out.push(x);
        }
        after_ff = x == 0xff;
    }
    out
}

/// How many bytes symphonia reads of the extended header at the start of `body`.
fn extended_header_len(body: &[u8], major: u8) -> usize {
    if major == 3 {
        // Size, flags, padding size; a CRC when the size is 10 and the flags say so.
        let crc = be32(body, 0) == Some(10) && body.get(4).is_some_and(|f| f & 0x80 != 0);
        if crc { 14 } else { 10 }
    } else {
        // Size, flag byte count, flags; then per flag a length byte and its data.
        let flags = body.get(5).copied().unwrap_or(0);
        [(0x40, 1), (0x20, 6), (0x10, 2)]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, n)| n)
            .sum::<usize>()
            + 6
    }
}

/// Vorbis-comment structure (vendor string, count, length-prefixed comments, lengths in
/// little-endian) inside a block or packet of `len` bytes: no length may exceed the block.
fn check_comments(block: &[u8], what: &str) -> Result<(), String> {
    let len = block.len();
    let too_long = |field: &str, n: u32| {
        Err(format!(
            "{what} {field} declares {n} bytes in a {len}-byte block"
        ))
    };
    let mut p = 0usize;
    let vendor = le32(block, p).unwrap_or(0);
    if vendor as usize > len {
        return too_long("vendor string", vendor);
    }
    p += 4 + vendor as usize;
    let count = le32(block, p).unwrap_or(0);
    p += 4;
    for _ in 0..count {
        let Some(n) = le32(block, p) else { break };
        if n as usize > len {
            return too_long("comment", n);
        }
        p += 4 + n as usize;
    }
    Ok(())
}

/// Reassembles the first packets of the first Ogg logical stream (at most 1 MiB of them) and
/// checks a Vorbis or Opus comment packet among them.
fn check_ogg(b: &[u8]) -> Result<(), String> {
    const MAX_PACKET: usize = 1 << 20;
    let mut packet: Vec<u8> = Vec::new();
    let mut serial = None;
    let mut packets_seen = 0;
    let mut at = 0usize;
    while packets_seen < 3 && b.get(at..at + 4) == Some(b"OggS") {
        let Some(&nseg) = b.get(at + 26) else {
            return Ok(());
        };
        let Some(segments) = b.get(at + 27..at + 27 + nseg as usize) else {
            return Ok(());
        };
        let page_serial = le32(b, at + 14);
        let mut data = at + 27 + nseg as usize;
        let page_end = data + segments.iter().map(|&s| s as usize).sum::<usize>();
        if serial.is_none() {
            serial = page_serial;
        }
        if page_serial == serial {
            for &seg in segments {
                let Some(bytes) = b.get(data..data + seg as usize) else {
                    return Ok(());
                };
                if packet.len() + bytes.len() > MAX_PACKET {
                    return Ok(()); // a huge header packet is not ours to judge
                }
                packet.extend_from_slice(bytes);
                data += seg as usize;
                if seg < 255 {
                    if let Some(rest) = packet.strip_prefix(b"\x03vorbis") {
                        check_comments(rest, "Ogg Vorbis")?;
                    } else if let Some(rest) = packet.strip_prefix(b"OpusTags") {
                        check_comments(rest, "Ogg Opus")?;
                    }
                    packet.clear();
                    packets_seen += 1;
                }
            }
        }
        at = page_end;
    }
    Ok(())
}

/// Walks FLAC metadata blocks (`b` starts after `fLaC`).
fn check_flac(b: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    loop {
        let Some(&[flags, l0, l1, l2]) = b.get(at..at + 4) else {
            return Ok(());
        };
        let len = u32::from_be_bytes([0, l0, l1, l2]) as usize;
        let kind = flags & 0x7f;
        // A block cut short by the end of the file is checked against what is there: the
        // demuxer reads its lengths, and allocates for them, before it meets the end.
        let Some(rest) = b.get(at + 4..) else {
            return Ok(());
        };
        let block = &rest[..len.min(rest.len())];
        let room = block.len();
        let too_long = |what: &str, n: u32| {
            Err(format!(
                "FLAC {what} declares {n} bytes in a {room}-byte block"
            ))
        };
        match kind {
            4 => check_comments(block, "FLAC")?,
            6 => {
                // Picture: type, MIME length + MIME, description length + text, 4 x u32, data length.
                let mime = be32(block, 4).unwrap_or(0);
                if mime as usize > room {
                    return too_long("picture MIME type", mime);
                }
                let p = 8 + mime as usize;
                let desc = be32(block, p).unwrap_or(0);
                if desc as usize > room {
                    return too_long("picture description", desc);
                }
                let data = be32(block, p + 4 + desc as usize + 16).unwrap_or(0);
                if data as usize > room {
                    return too_long("picture", data);
                }
            }
            _ => {}
        }
        if flags & 0x80 != 0 {
            return Ok(());
        }
        at += 4 + len;
    }
}

/// Walks the boxes symphonia reads whole (the movie and fragment trees, their user data and
/// metadata) and checks what it allocates for: a box's declared size against its parent,
/// table entry counts against their box, `stsz` sample sizes against the file.
fn check_mp4(b: &[u8], file_len: u64) -> Result<(), String> {
    check_boxes(b, file_len, 0, false)
}

/// Bytes per entry of the tables symphonia reserves room for by their declared count.
fn entry_size(kind: &[u8]) -> Option<u64> {
    match kind {
        b"stsc" => Some(12),
        b"stts" | b"co64" => Some(8),
        b"stco" => Some(4),
        _ => None,
    }
}

/// `b`: the boxes of one parent (`depth` 0: the file from `ftyp` on); `items`: `b` is an
/// `ilst`, whose children (`©nam`, `covr`, …) hold `data` boxes.
fn check_boxes(b: &[u8], file_len: u64, depth: usize, items: bool) -> Result<(), String> {
    let mut at = 0usize;
    while let (Some(size32), Some(kind)) = (be32(b, at), b.get(at + 4..at + 8)) {
        let (header, size) = match size32 {
            0 => (8, b.len() - at),
            1 => match b.get(at + 8..at + 16) {
                Some(s) => (
                    16,
                    u64::from_be_bytes(s.try_into().unwrap_or_default()) as usize,
                ),
                None => return Ok(()),
            },
            n => (8, n as usize),
        };
        if size < header {
            return Ok(()); // malformed: the demuxer will say so without allocating
        }
        // Symphonia reads a box's data at the size it declares, before it meets the end of
        // the parent or the file (a cut-short `mdat` at the top is a partial file, and fine).
        let whole = depth > 0 || kind == b"moov" || kind == b"moof";
        if whole && at.saturating_add(size) > b.len() {
            return Err(format!(
                "MP4 box {} declares {size} bytes where {} are left",
                kind.escape_ascii(),
                b.len() - at
            ));
        }
        let body = &b[(at + header).min(b.len())..(at.saturating_add(size)).min(b.len())];
        let children = match kind {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"udta" | b"edts" | b"mvex"
            | b"moof" | b"traf" | b"ilst" => Some(body),
            b"meta" => body.get(4..), // a full box: version and flags first
            _ if items => Some(body),
            _ => None,
        };
        match (children, entry_size(kind)) {
            (Some(children), _) if depth < 8 => {
                check_boxes(children, file_len, depth + 1, kind == b"ilst")?
            }
            (_, Some(entry)) => {
                let count = be32(body, 4).unwrap_or(0);
                let room = body.len().saturating_sub(8) as u64;
                if u64::from(count) * entry > room {
                    return Err(format!(
                        "MP4 {} declares {count} entries in {room} bytes",
                        kind.escape_ascii()
                    ));
                }
            }
            _ if kind == b"stsz" => check_stsz(body, file_len)?,
            _ => {}
        }
        at = at.saturating_add(size);
    }
    Ok(())
}

/// Sample sizes, fixed or listed (each entry 4 bytes): none larger than the file.
fn check_stsz(body: &[u8], file_len: u64) -> Result<(), String> {
    let fixed = be32(body, 4).unwrap_or(0) as u64;
    if fixed > file_len {
        return Err(format!(
            "MP4 sample size {fixed} exceeds the {file_len}-byte file"
        ));
    }
    if fixed == 0 {
        let count = be32(body, 8).unwrap_or(0);
        let room = body.len().saturating_sub(12) as u64;
        if u64::from(count) * 4 > room {
            return Err(format!("MP4 stsz declares {count} samples in {room} bytes"));
        }
        for i in 0..count as usize {
            let Some(n) = be32(body, 12 + 4 * i) else {
                break;
            };
            if n as u64 > file_len {
                return Err(format!(
                    "MP4 sample {i} declares {n} bytes in a {file_len}-byte file"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_an_id3_frame_longer_than_its_tag() {
        let mut f = b"ID3\x03\x00\x00\x00\x00\x01\x00".to_vec(); // 128-byte tag
        f.extend(b"TIT2\xff\xff\xff\xff\x00\x00");
        f.resize(200, 0);
        assert!(check(&f, 200).unwrap_err().contains("TIT2"));
        let mut ok = b"ID3\x03\x00\x00\x00\x00\x01\x00".to_vec();
        ok.extend(b"TIT2\x00\x00\x00\x05\x00\x00\x00abcd");
        ok.resize(200, 0);
        assert_eq!(check(&ok, 200), Ok(()));
    }

    #[test]
    fn rejects_a_flac_comment_longer_than_its_block() {
        let mut f = b"fLaC\x84\x00\x00\x10".to_vec(); // last block, Vorbis comment, 16 bytes
        f.extend(&0u32.to_le_bytes()); // vendor ""
        f.extend(&1u32.to_le_bytes()); // one comment
        f.extend(&u32::MAX.to_le_bytes());
        f.extend(&[0u8; 4]);
        assert!(check(&f, f.len() as u64).unwrap_err().contains("comment"));
    }

    #[test]
    fn reads_id3v2_frames_where_symphonia_does() {
        let huge = b"TIT2\xff\xff\xff\xff\x00\x00";
        let tag = |flags: u8, body: &[u8]| {
            let mut t = vec![b'I', b'D', b'3', 3, 0, flags, 0, 0, 0, body.len() as u8];
            t.extend(body);
            t
        };
        // A v2.3 tag claiming a footer (only v2.4 has one) right before a second tag.
        let mut f = tag(0x10, &[0; 4]);
        f.extend(tag(0, huge));
        // Unsynchronised: the reader drops the 0x00 after each 0xFF.
        let mut stuffed = b"TIT2\xff\x00\xff\x00\xff\x00\xff\x00\x00\x00".to_vec();
        stuffed.resize(100, 0);
        // After an extended header (size 6, no CRC, no padding).
        let mut extended = vec![0, 0, 0, 6, 0, 0, 0, 0, 0, 0];
        extended.extend(huge);
        for file in [f, tag(0x80, &stuffed), tag(0x40, &extended)] {
            let mut file = file;
            file.resize(300, 0);
            assert!(check(&file, 300).unwrap_err().contains("TIT2"), "{file:?}");
        }
    }

    #[test]
    fn rejects_a_flac_picture_longer_than_the_file_holds_of_its_block() {
        let mut f = b"fLaC\x86\x00\x00\x40".to_vec(); // last block, picture, 64 bytes
        f.extend(3u32.to_be_bytes()); // front cover
        f.extend([0u8; 8]); // no MIME type, no description
        f.extend([0u8; 16]);
        f.extend(u32::MAX.to_be_bytes()); // the data length; the file ends here
        assert!(check(&f, f.len() as u64).unwrap_err().contains("picture"));
    }

    #[test]
    fn rejects_an_ogg_comment_longer_than_its_packet() {
        let mut packet = b"\x03vorbis".to_vec();
        packet.extend(&0u32.to_le_bytes());
        packet.extend(&1u32.to_le_bytes());
        packet.extend(&u32::MAX.to_le_bytes());
        let mut page = b"OggS\x00\x00".to_vec();
        page.extend(&[0u8; 8]); // granule
        page.extend(&7u32.to_le_bytes()); // serial
        page.extend(&[0u8; 8]); // sequence, CRC (not checked here)
        page.push(1);
        page.push(packet.len() as u8);
        page.extend(&packet);
        assert!(
            check(&page, page.len() as u64)
                .unwrap_err()
                .contains("Ogg Vorbis comment")
        );
    }

    #[test]
    fn rejects_an_mp4_sample_larger_than_the_file() {
        let boxed = |kind: &[u8], body: &[u8]| {
            let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend(kind);
            v.extend(body);
            v
        };
        let mut stsz = vec![0u8; 4];
        stsz.extend(0u32.to_be_bytes());
        stsz.extend(1u32.to_be_bytes());
        stsz.extend(u32::MAX.to_be_bytes());
        let tree = boxed(
            b"moov",
            &boxed(
                b"trak",
                &boxed(
                    b"mdia",
                    &boxed(b"minf", &boxed(b"stbl", &boxed(b"stsz", &stsz))),
                ),
            ),
        );
        let mut f = boxed(b"ftyp", b"M4A \x00\x00\x00\x00");
        f.extend(tree);
        assert!(
            check(&f, f.len() as u64)
                .unwrap_err()
                .contains("MP4 sample")
        );
    }

    #[test]
    fn finds_headers_where_the_probe_does() {
        let mut flac = b"fLaC\x84\x00\x00\x10".to_vec();
        flac.extend(&0u32.to_le_bytes());
        flac.extend(&1u32.to_le_bytes());
        flac.extend(&u32::MAX.to_le_bytes());
        flac.extend(&[0u8; 4]);
        // After junk bytes.
        let mut junk = b"junk junk".to_vec();
        junk.extend(&flac);
        assert!(check(&junk, junk.len() as u64).is_err());
        // After an ID3 tag and junk.
        let mut tagged = b"ID3\x03\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00xx".to_vec();
        tagged.extend(&flac);
        assert!(check(&tagged, tagged.len() as u64).is_err());
        // In a second ID3 tag after a clean first one.
        let mut two = b"ID3\x03\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00".to_vec();
        two.extend(b"ID3\x03\x00\x00\x00\x00\x01\x00TIT2\xff\xff\xff\xff\x00\x00");
        two.resize(300, 0);
        assert!(check(&two, 300).unwrap_err().contains("TIT2"));
        // Behind an MPEG frame sync the probe stops: later bytes are audio, not headers.
        let mut mp3 = b"\xff\xfb\x90\x00".to_vec();
        mp3.extend(&flac);
        assert_eq!(check(&mp3, mp3.len() as u64), Ok(()));
    }
}
