#!/usr/bin/env python3
"""Writes the binary seeds of the `cover` and `sanity` fuzz targets: fuzz/corpus/{cover,sanity}.

Tiny real files, made from bytes: MP3 (ID3v2.2/2.3/2.4 pictures before a few silent MPEG
frames), FLAC (STREAMINFO and PICTURE blocks, one frame), Ogg Opus (a METADATA_BLOCK_PICTURE
comment), and headers for each length check of `audio::sanity` (ID3 frames, also unsynchronised
or after an extended header; FLAC blocks; Ogg comment packets; MP4 boxes and tables). A name
says what the cover probe must find: `*.picture.*` a picture (whatever its type: `getCoverArt`
serves raster types only), `*.none.*` none (tests/fuzz.rs checks it). Run from the repository
root: `python3 fuzz/make_seeds.py`; the output is the same every time. The `regression_*` files
beside them are inputs the fuzzers found (kept as they were found, or remade here by hand).
"""
import base64
import struct
import zlib
from pathlib import Path


def png():
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0\0")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>'


def syncsafe(n):
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def mpeg_frames(n=4):
    # MPEG-1 layer III, 32 kbit/s, 44.1 kHz, mono: 104-byte frames of silence.
    return (b"\xff\xfb\x10\xc0" + bytes(100)) * n


def id3(major, frames, flags=0):
    body = b"".join(frames)
    return b"ID3" + bytes([major, 0, flags]) + syncsafe(len(body)) + body


def apic(major, mime, kind, data):
    payload = b"\x00" + mime + b"\x00" + bytes([kind]) + b"\x00" + data
    if major == 2:  # PIC: a three-letter image format instead of a MIME type
        payload = b"\x00" + mime + bytes([kind]) + b"\x00" + data
        return b"PIC" + struct.pack(">I", len(payload))[1:] + payload
    size = syncsafe(len(payload)) if major == 4 else struct.pack(">I", len(payload))
    return b"APIC" + size + b"\x00\x00" + payload


def flac_block(kind, data, last=False):
    return bytes([kind | (0x80 if last else 0)]) + struct.pack(">I", len(data))[1:] + data


# 4096-sample blocks, 44.1 kHz, mono, 16 bits, 44100 samples, no MD5.
STREAMINFO = struct.pack(">HH", 4096, 4096) + bytes(6) + bytes.fromhex("0ac440f00000ac44")
STREAMINFO += bytes(16)


def crc(data, poly, bits):
    top, mask, value = 1 << (bits - 1), (1 << bits) - 1, 0
    for b in data:
        value ^= b << (bits - 8)
        for _ in range(8):
            value = ((value << 1) ^ poly) & mask if value & top else (value << 1) & mask
    return value


def flac_frame():
    # Frame 0: 4096 samples at 44.1 kHz, mono, 16 bits, one CONSTANT subframe of zeros.
    head = b"\xff\xf8\xc9\x08\x00"
    frame = head + bytes([crc(head, 0x07, 8)]) + b"\x00\x00\x00"
    return frame + struct.pack(">H", crc(frame, 0x8005, 16))


def picture_block(kind, mime, data):
    return (struct.pack(">II", kind, len(mime)) + mime + struct.pack(">I", 0)
            + struct.pack(">IIIII", 1, 1, 24, 0, len(data)) + data)


def ogg_page(packet, seq, flags=0, granule=0):
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    head = b"OggS\x00" + bytes([flags]) + struct.pack("<qIII", granule, 0x1234, seq, 0)
    page = head + bytes([len(lacing)]) + lacing + packet
    return page[:22] + struct.pack("<I", crc(page, 0x04C11DB7, 32)) + page[26:]


def comments(entries, vendor=b"playlista"):
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(entries))
    return out + b"".join(struct.pack("<I", len(e)) + e for e in entries)


def opus(entries):
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    return (ogg_page(head, 0, flags=2) + ogg_page(b"OpusTags" + comments(entries), 1)
            + ogg_page(b"\xf8\xff\xfe", 2, flags=4, granule=960))


def box(kind, body):
    return struct.pack(">I", len(body) + 8) + kind + body


def seeds():
    pic = png()
    block = base64.b64encode(picture_block(3, b"image/png", pic))
    flac = lambda *blocks: b"fLaC" + flac_block(0, STREAMINFO) + b"".join(blocks) + flac_frame()
    mp3 = lambda major, *frames: id3(major, [apic(major, *f) for f in frames]) + mpeg_frames()
    cover = {
        "mp3_id3v23_apic_png.picture.mp3": mp3(3, (b"image/png", 3, pic)),
        "mp3_id3v24_back_cover_then_front.picture.mp3":
            mp3(4, (b"image/jpeg", 4, JPEG), (b"image/png", 3, pic)),
        "mp3_id3v22_pic_gif.picture.mp3": mp3(2, (b"GIF", 3, GIF)),
        "mp3_apic_svg_with_script.picture.mp3": mp3(3, (b"image/svg+xml", 3, SVG)),
        "mp3_apic_says_png_holds_jpeg.picture.mp3": mp3(3, (b"image/png", 3, JPEG)),
        "mp3_no_tag.none.mp3": mpeg_frames(),
        "flac_picture_jpeg.picture.flac":
            flac(flac_block(6, picture_block(3, b"image/jpeg", JPEG), last=True)),
        "flac_picture_url.picture.flac":
            flac(flac_block(6, picture_block(3, b"-->", b"http://example.com/a.png"), last=True)),
        "flac_empty_picture.none.flac":
            flac(flac_block(6, picture_block(3, b"image/png", b""), last=True)),
        "opus_metadata_block_picture.picture.opus":
            opus([b"TITLE=t", b"METADATA_BLOCK_PICTURE=" + block]),
    }
    full = lambda kind, *fields: box(kind, bytes(4) + struct.pack(f">{len(fields)}I", *fields))
    # Found by the cover target (a 64 GB allocation aborted the test): made again by hand.
    stsc = box(b"stbl", full(b"stsc", 0xFFFFFFFF, 1, 1, 1))
    moov = box(b"moov", box(b"trak", box(b"mdia", box(b"minf", stsc))))
    cover["regression_m4a_stsc_4g_entries.none.m4a"] = box(b"ftyp", b"M4A \0\0\0\0") + moov
    # The headers each length check of audio::sanity reads, within their bounds.
    stbl = box(b"stbl", full(b"stts", 1, 2, 1024) + full(b"stsc", 1, 1, 2, 1)
               + full(b"stsz", 0, 2, 100, 200) + full(b"stco", 1, 400))
    covr = box(b"covr", box(b"data", struct.pack(">II", 14, 0) + pic))
    meta = box(b"meta", bytes(4) + box(b"hdlr", bytes(25)) + box(b"ilst", covr))
    trak = box(b"trak", box(b"mdia", box(b"minf", stbl)))
    moov = box(b"moov", trak + box(b"udta", meta + bytes(4)))
    # A v2.3 TIT2 frame: `size` counts the bytes after unsynchronisation is undone.
    tit2 = lambda text, size: b"TIT2" + struct.pack(">I", size) + b"\0\0\0" + text
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    sanity = {
        "id3v23_text_frame.mp3": id3(3, [tit2(b"abcd", 5)]) + mpeg_frames(2),
        "id3v23_unsynchronised.mp3":
            id3(3, [tit2(b"\xff\x00\xe0\xff\x00\x00", 5)], flags=0x80) + mpeg_frames(1),
        "id3v23_extended_header.mp3":
            id3(3, [struct.pack(">IHI", 6, 0, 0), tit2(b"ab", 3)], flags=0x40) + mpeg_frames(1),
        "id3v24_two_tags.mp3":
            id3(4, []) + id3(4, [b"TIT2" + syncsafe(3) + b"\0\0\0ab"]) + mpeg_frames(1),
        "flac_comment_block.flac":
            flac(flac_block(4, comments([b"ARTIST=a", b"TITLE=b"]), last=True)),
        "junk_then_flac.flac": b"junk" * 4 + b"fLaC" + flac_block(4, comments([b"A=b"]), last=True),
        "ogg_opus_tags.opus": opus([b"ARTIST=a"]),
        "m4a_tables_and_ilst.m4a": box(b"ftyp", b"M4A \0\0\0\0") + moov + box(b"mdat", bytes(300)),
        "riff_wave.wav": b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + fmt + b"data\0\0\0\0",
    }
    return cover, sanity


def main():
    root = Path(__file__).resolve().parent / "corpus"
    for target, files in zip(("cover", "sanity"), seeds()):
        (root / target).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (root / target / name).write_bytes(data)


if __name__ == "__main__":
    main()
