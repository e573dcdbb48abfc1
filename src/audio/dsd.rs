//! DSD audio (Sony DSF and Philips DSDIFF/DFF files) decoded to PCM for the analysis.
//!
//! In: a [`MappedSource`] whose first bytes [`sniff`] as DSF or DFF. Out: a [`DsdReader`], a
//! [`PlanarSource`] that low-passes and decimates the 1-bit stream to 88.2 kHz (96 kHz for the
//! 48 kHz family), one 4096-byte block per channel per packet, plus the file's tags (its
//! ID3v2 chunk, read by symphonia's ID3v2 reader; a DFF's DIIN title and artist).
//!
//! The sample data is read through the source's `Read + Seek`, so pages behind the cursor are
//! dropped and memory stays flat, into buffers sized once in [`DsdReader::open`]. The
//! decimating FIR is evaluated a byte (8 taps) at a time through lookup tables built once per
//! process and rate. Gain: bit density p decodes to 2p - 1, so a stream at 50 % modulation
//! (the SACD 0 dB reference) decodes to ±0.5 peaks, and PCM through [`encode`] comes back at
//! its own amplitude. [`encode`] goes the other way, PCM to DSF/DFF, for tests and
//! benchmarks: no tool here writes DSD.
//!
//! Error contract, as for symphonia's formats: a bad or unsupported header fails the file
//! ([`DecodeError::Format`], [`DecodeError::Channels`], [`DecodeError::Codec`] for DST); a
//! file that ends inside its data ends the stream cleanly at the last whole byte it holds.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::OnceLock;

use super::mapped::MappedSource;
use super::side_tags;
use super::{DecodeError, MAX_CHANNELS, PlanarSource, Speaker, StreamInfo};
use crate::tags::Tags;

/// Most channels DSF and DSDIFF define (5.1).
pub const MAX_DSD_CHANNELS: usize = 6;

/// Bytes per channel decoded per packet (DSF's block size): 1024 output samples at DSD64.
const PACKET_BYTES: usize = 4096;

/// Largest DSF block size accepted (the specification fixes 4096).
const MAX_BLOCK: usize = 1 << 16;

/// Largest DSF "DSD " / "fmt " chunk accepted (both are fixed at 28 and 52 bytes).
const MAX_HEADER_CHUNK: u64 = 4096;

/// The DSD idle pattern (four ones, four zeros: decodes to 0). The filter history starts
/// filled with it, so the first outputs rise from silence.
const SILENCE: u8 = 0x69;

/// Filter taps per unit of decimation (see [`taps`]).
const TAPS_PER_DECIMATION: usize = 16;

/// Kaiser window shape: about 70 dB of sidelobe suppression.
const KAISER_BETA: f64 = 6.8;

/// Pass-band edge as a fraction of the output rate (20 kHz of 88.2 kHz).
const PASS_EDGE: f64 = 20_000.0 / 88_200.0;

/// Stop-band edge as a fraction of the output rate: its Nyquist frequency (44.1 kHz).
const STOP_EDGE: f64 = 0.5;

/// True when `head`, a file's first bytes (at least 32 for DSF, 16 for DFF), starts a DSF
/// file ("DSD " chunk, then "fmt ") or a DSDIFF one ("FRM8", form type "DSD ").
pub fn sniff(head: &[u8]) -> bool {
    if head.starts_with(b"DSD ") {
        let fmt_at = usize::try_from(le64(head, 4)).unwrap_or(usize::MAX);
        return fmt_at
            .checked_add(4)
            .and_then(|end| head.get(fmt_at..end))
            .is_some_and(|id| id == b"fmt ");
    }
    head.starts_with(b"FRM8") && head.get(12..16) == Some(b"DSD ")
}

/// The decimation for a DSD rate: to 88.2 kHz for the 44.1 kHz family (DSD64 ÷ 32, DSD128
/// ÷ 64, DSD256 ÷ 128, DSD512 ÷ 256), to 96 kHz for the 48 kHz family. `None`: not a DSD rate.
fn decimation(rate: u32) -> Option<usize> {
    [44_100u32, 48_000].into_iter().find_map(|base| {
        [32usize, 64, 128, 256]
            .into_iter()
            .find(|&d| u64::from(rate) == u64::from(base) * 2 * d as u64)
    })
}

/// The linear-phase low-pass that decimates by `d`: a Kaiser-windowed sinc (β 6.8) of
/// `16·d` taps, the −6 dB point half-way between the pass-band edge (20 kHz at 88.2 kHz out,
/// 21.8 kHz at 96 kHz) and the stop-band edge (the output's Nyquist frequency), normalised
/// to unit gain at DC.
///
/// Length: Kaiser's estimate N − 1 = (A − 7.95) / (14.36 Δf), with the transition
/// Δf = (44.1 − 20) kHz / 2822.4 kHz, gives A ≈ 70 dB for N = 512 at DSD64; the design
/// scales with `d`, so every rate gets the same response at its output rate. 70 dB is where
/// the 1-bit stream's shaped noise, which rises steeply above 20 kHz, no longer matters for
/// the analysis; the test `filter_response` measures it. Cost: the span is 2·d bytes and an
/// output is d/8 bytes apart, so 16 table look-ups per input byte and channel at any rate.
fn taps(d: usize) -> Vec<f64> {
    use std::f64::consts::PI;
    let n = TAPS_PER_DECIMATION * d;
    let fc = (PASS_EDGE + STOP_EDGE) / 2.0 / d as f64; // cycles per input sample
    let mid = (n - 1) as f64 / 2.0;
    let norm = bessel_i0(KAISER_BETA);
    let mut h: Vec<f64> = (0..n)
        .map(|k| {
            let t = k as f64 - mid;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            };
            let r = t / mid;
            sinc * bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm
        })
        .collect();
    let sum: f64 = h.iter().sum();
    for x in &mut h {
        *x /= sum;
    }
    h
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term) = (1.0f64, 1.0f64);
    for k in 1..100 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// One table per byte of the filter's span: entry `b` is the filter's answer to the 8 bits
/// of byte `b` (MSB first in time) at that position, each bit +tap when 1, −tap when 0.
fn build_tables(h: &[f64]) -> Box<[[f32; 256]]> {
    h.chunks_exact(8)
        .map(|taps| {
            let mut table = [0f32; 256];
            for (b, v) in table.iter_mut().enumerate() {
                let s: f64 = taps
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| if b & (0x80 >> i) != 0 { t } else { -t })
                    .sum();
                *v = s as f32;
            }
            table
        })
        .collect()
}

/// The tables for decimation `d`, built on first use and shared by every reader
/// (64 KiB at DSD64, 256 KiB at DSD256).
fn tables(d: usize) -> &'static [[f32; 256]] {
    static CACHE: [OnceLock<Box<[[f32; 256]]>>; 4] = [const { OnceLock::new() }; 4];
    let slot = match d {
        32 => 0,
        64 => 1,
        128 => 2,
        _ => 3,
    };
    CACHE[slot].get_or_init(|| build_tables(&taps(d)))
}

/// How the sound data interleaves its channels.
#[derive(Debug, Clone, Copy)]
enum Interleave {
    /// DSF: `block` bytes of channel 0, then of channel 1, ...; LSB first in time when
    /// `lsb_first` (bits per sample 1), else MSB first (bits per sample 8).
    Blocks { block: usize, lsb_first: bool },
    /// DSDIFF: one byte per channel in turn, MSB first.
    Bytes,
}

/// What the header parsers find.
struct Header {
    rate: u32,
    channels: usize,
    layout: heapless::Vec<Speaker, MAX_CHANNELS>,
    interleave: Interleave,
    /// Offset of the first sound data byte.
    data_start: u64,
    /// Bytes of sound data the file holds (the declared size, cut at the end of the file).
    data_len: u64,
    /// Whole bytes of audio per channel the header declares.
    per_channel: u64,
    tags: Tags,
}

/// A DSF or DFF file decoded to PCM at 88.2 or 96 kHz (see the module documentation).
pub struct DsdReader {
    source: MappedSource,
    info: StreamInfo,
    tags: Tags,
    interleave: Interleave,
    /// Audio bytes per channel not yet read.
    remaining: u64,
    /// Bytes of the sound data chunk not yet read.
    chunk_left: u64,
    table: &'static [[f32; 256]],
    /// Bytes between two outputs (decimation / 8).
    step: usize,
    /// One packet as read from the file.
    raw: Vec<u8>,
    /// Per channel: the filter history (the last span − step bytes and any bytes short of a
    /// whole step), then the packet's bytes, MSB first.
    lines: Vec<Vec<u8>>,
    /// Bytes of history at the front of each line.
    carry: usize,
}

impl DsdReader {
    /// Parses the header of a DSF or DFF file and readies the decoder; the tags are read
    /// here too. The source is left at the first sound data byte.
    pub fn open(mut source: MappedSource) -> Result<DsdReader, DecodeError> {
        let file_len = source.seek(SeekFrom::End(0)).map_err(DecodeError::Read)?;
        seek(&mut source, 0)?;
        let mut head = [0u8; 16];
        read_full(&mut source, &mut head)?;
        let header = if &head[..4] == b"DSD " {
            parse_dsf(&mut source, file_len)?
        } else if &head[..4] == b"FRM8" && &head[12..16] == b"DSD " {
            parse_dff(&mut source, file_len, be64(&head, 4))?
        } else {
            return Err(DecodeError::Format("not a DSF or DSDIFF file".into()));
        };
        let d = decimation(header.rate).ok_or_else(|| {
            DecodeError::Format(format!("{} Hz is not a DSD sample rate", header.rate))
        })?;
        let table = tables(d);
        let span = table.len();
        let step = d / 8;
        let block = match header.interleave {
            Interleave::Blocks { block, .. } => block,
            Interleave::Bytes => PACKET_BYTES,
        };
        seek(&mut source, header.data_start)?;
        let info = StreamInfo {
            sample_rate: header.rate / d as u32,
            channels: header.channels,
            codec: format!("dsd{}", d * 2),
            layout: header.layout,
        };
        Ok(DsdReader {
            source,
            info,
            tags: header.tags,
            interleave: header.interleave,
            remaining: header.per_channel,
            chunk_left: header.data_len,
            table,
            step,
            raw: vec![0; header.channels * block],
            lines: (0..header.channels)
                .map(|_| {
                    let mut line = vec![0; span + block];
                    line[..span - step].fill(SILENCE);
                    line
                })
                .collect(),
            carry: span - step,
        })
    }

    /// Reads the next packet into the lines after the history; returns the bytes per channel
    /// it added (0 at the end).
    fn read_packet(&mut self) -> Result<usize, DecodeError> {
        let channels = self.info.channels;
        let want = (self.raw.len() as u64).min(self.chunk_left) as usize;
        let got = read_full(&mut self.source, &mut self.raw[..want])?;
        self.chunk_left = if got < want {
            0 // the file ends here
        } else {
            self.chunk_left - got as u64
        };
        let at = self.carry;
        let usable = match self.interleave {
            Interleave::Blocks { block, lsb_first } => {
                // A short read ends inside some channel's block: keep what every channel has.
                let usable = (0..channels)
                    .map(|c| got.saturating_sub(c * block).min(block))
                    .min()
                    .unwrap_or(0)
                    .min(clamp_usize(self.remaining));
                for (c, line) in self.lines.iter_mut().enumerate() {
                    let src = &self.raw[c * block..c * block + usable];
                    let dst = &mut line[at..at + usable];
                    if lsb_first {
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d = s.reverse_bits();
                        }
                    } else {
                        dst.copy_from_slice(src);
                    }
                }
                usable
            }
            Interleave::Bytes => {
                let usable = (got / channels).min(clamp_usize(self.remaining));
                for (c, line) in self.lines.iter_mut().enumerate() {
                    let dst = &mut line[at..at + usable];
                    for (d, frame) in dst.iter_mut().zip(self.raw.chunks_exact(channels)) {
                        *d = frame[c];
                    }
                }
                usable
            }
        };
        self.remaining -= usable as u64;
        if usable == 0 {
            self.remaining = 0;
        }
        Ok(usable)
    }
}

impl PlanarSource for DsdReader {
    /// Rate 88.2 or 96 kHz (the DSD rate over its decimation); codec "dsd64", "dsd128",
    /// "dsd256" or "dsd512": the DSD rate as a multiple of 44.1 or 48 kHz.
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn tags(&mut self) -> Tags {
        self.tags.clone()
    }

    /// Decodes up to one block (4096 bytes per channel: 1024 samples at DSD64, 256 at
    /// DSD256). Allocates nothing beyond the planes' own growth. Fails with
    /// [`DecodeError::Channels`] when `planes` has fewer planes than the stream channels.
    fn next_packet(&mut self, planes: &mut [Vec<f32>]) -> Result<usize, DecodeError> {
        let channels = self.info.channels;
        let Some(planes) = planes.get_mut(..channels) else {
            return Err(DecodeError::Channels(channels));
        };
        for plane in planes.iter_mut() {
            plane.clear();
        }
        let span = self.table.len();
        let step = self.step;
        while self.remaining > 0 && self.chunk_left > 0 {
            let added = self.read_packet()?;
            if added == 0 {
                break;
            }
            let len = self.carry + added;
            let outputs = if len >= span {
                (len - span) / step + 1
            } else {
                0
            };
            for (line, plane) in self.lines.iter_mut().zip(planes.iter_mut()) {
                for o in 0..outputs {
                    let window = &line[o * step..o * step + span];
                    plane.push(filter(self.table, window));
                }
                line.copy_within(outputs * step..len, 0);
            }
            self.carry = len - outputs * step;
            if outputs > 0 {
                return Ok(outputs);
            }
        }
        Ok(0)
    }
}

/// One output sample: the sum over the window of each byte's table entry (four partial
/// sums, so the adds do not wait on each other).
#[inline]
fn filter(table: &[[f32; 256]], window: &[u8]) -> f32 {
    let mut acc = [0f32; 4];
    for (t, w) in table.chunks_exact(4).zip(window.chunks_exact(4)) {
        acc[0] += t[0][w[0] as usize];
        acc[1] += t[1][w[1] as usize];
        acc[2] += t[2][w[2] as usize];
        acc[3] += t[3][w[3] as usize];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

fn parse_dsf(source: &mut MappedSource, file_len: u64) -> Result<Header, DecodeError> {
    let bad = |why: String| DecodeError::Format(format!("DSF: {why}"));
    let mut dsd = [0u8; 28];
    seek(source, 0)?;
    read_header(source, &mut dsd, "DSF")?;
    let dsd_size = le64(&dsd, 4);
    if !(28..=MAX_HEADER_CHUNK).contains(&dsd_size) {
        return Err(bad(format!("DSD chunk of {dsd_size} bytes")));
    }
    let metadata_at = le64(&dsd, 20);

    let mut fmt = [0u8; 52];
    seek(source, dsd_size)?;
    read_header(source, &mut fmt, "DSF")?;
    if &fmt[..4] != b"fmt " {
        return Err(bad("no fmt chunk after the DSD chunk".into()));
    }
    let fmt_size = le64(&fmt, 4);
    if !(52..=MAX_HEADER_CHUNK).contains(&fmt_size) {
        return Err(bad(format!("fmt chunk of {fmt_size} bytes")));
    }
    let version = le32(&fmt, 12);
    if version != 1 {
        return Err(bad(format!("format version {version}")));
    }
    let format_id = le32(&fmt, 16);
    if format_id != 0 {
        return Err(DecodeError::Codec(format!("DSF format id {format_id}")));
    }
    let channel_type = le32(&fmt, 20);
    let channels = le32(&fmt, 24) as usize;
    let rate = le32(&fmt, 28);
    let bits = le32(&fmt, 32);
    let sample_count = le64(&fmt, 36);
    let block = le32(&fmt, 44) as usize;
    check_channels(channels, "DSF")?;
    if decimation(rate).is_none() {
        return Err(bad(format!("{rate} Hz is not a DSD sample rate")));
    }
    let lsb_first = match bits {
        1 => true,
        8 => false,
        _ => return Err(bad(format!("{bits} bits per sample"))),
    };
    if !(1..=MAX_BLOCK).contains(&block) {
        return Err(bad(format!("block size {block}")));
    }

    let data_at = dsd_size + fmt_size;
    let mut data = [0u8; 12];
    seek(source, data_at)?;
    read_header(source, &mut data, "DSF")?;
    if &data[..4] != b"data" {
        return Err(bad("no data chunk after the fmt chunk".into()));
    }
    let data_start = data_at + 12;
    if data_start > file_len {
        return Err(bad("the data chunk starts past the end of the file".into()));
    }
    let data_len = le64(&data, 4).saturating_sub(12).min(file_len - data_start);

    let mut layout = heapless::Vec::new();
    for c in 0..channels {
        let _ = layout.push(dsf_speaker(channel_type, channels, c));
    }
    let tags = if metadata_at != 0 && metadata_at < file_len {
        read_id3(source, metadata_at, file_len)?
    } else {
        Tags::default()
    };
    Ok(Header {
        rate,
        channels,
        layout,
        interleave: Interleave::Blocks { block, lsb_first },
        data_start,
        data_len,
        per_channel: sample_count / 8,
        tags,
    })
}

/// The speaker of channel `c` of a DSF file: channel types 4 (quad: FL FR BL BR),
/// 5 (FL FR C LFE), 6 (FL FR C BL BR) and 7 (5.1: FL FR C LFE BL BR) name their surround
/// and LFE channels; everything else is front.
fn dsf_speaker(channel_type: u32, channels: usize, c: usize) -> Speaker {
    match (channel_type, channels, c) {
        (4, 4, 2..=3) | (6, 5, 3..=4) | (7, 6, 4..=5) => Speaker::Surround,
        (5, 4, 3) | (7, 6, 3) => Speaker::Lfe,
        _ => Speaker::Front,
    }
}

/// Walks a DSDIFF file's chunks (all of them: an "ID3 " chunk usually follows the sound
/// data, whose bytes are skipped by seeking, not read). `form_size` is FRM8's size.
fn parse_dff(
    source: &mut MappedSource,
    file_len: u64,
    form_size: u64,
) -> Result<Header, DecodeError> {
    let bad = |why: &str| DecodeError::Format(format!("DSDIFF: {why}"));
    let form_end = form_size.saturating_add(12).min(file_len);
    let mut rate = None;
    let mut channels: Option<(usize, heapless::Vec<Speaker, MAX_CHANNELS>)> = None;
    let mut compression: Option<[u8; 4]> = None;
    let mut data: Option<(u64, u64)> = None;
    let mut tags = Tags::default();
    let mut diin = Tags::default();
    let mut pos = 16u64;
    while pos.saturating_add(12) <= form_end {
        let (id, size) = chunk_header(source, pos)?;
        let body = pos + 12;
        let body_end = body.saturating_add(size).min(form_end);
        match &id {
            b"PROP" => parse_prop(
                source,
                body,
                body_end,
                &mut rate,
                &mut channels,
                &mut compression,
            )?,
            b"DSD " if data.is_none() => data = Some((body, size)),
            b"DST " => return Err(DecodeError::Codec("DST-compressed DSD".into())),
            b"ID3 " => tags.merge_missing(read_id3(source, body, body_end)?),
            b"DIIN" => parse_diin(source, body, body_end, &mut diin)?,
            _ => {}
        }
        let Some(next) = body.checked_add(size).and_then(|e| e.checked_add(size & 1)) else {
            break;
        };
        pos = next;
    }
    // ID3 first, then the DSDIFF's own edited-master title and artist for what it lacks.
    tags.merge_missing(diin);
    match compression.as_ref() {
        None | Some(b"DSD ") => {}
        Some(b"DST ") => return Err(DecodeError::Codec("DST-compressed DSD".into())),
        Some(other) => {
            return Err(DecodeError::Codec(format!(
                "DSDIFF compression {}",
                other.escape_ascii()
            )));
        }
    }
    let rate = rate.ok_or_else(|| bad("no FS (sample rate) chunk"))?;
    let (channels, layout) = channels.ok_or_else(|| bad("no CHNL (channels) chunk"))?;
    check_channels(channels, "DSDIFF")?;
    if decimation(rate).is_none() {
        return Err(DecodeError::Format(format!(
            "DSDIFF: {rate} Hz is not a DSD sample rate"
        )));
    }
    let (data_start, declared) = data.ok_or_else(|| bad("no DSD sound data chunk"))?;
    if data_start > file_len {
        return Err(bad("the sound data chunk starts past the end of the file"));
    }
    Ok(Header {
        rate,
        channels,
        layout,
        interleave: Interleave::Bytes,
        data_start,
        data_len: declared.min(file_len - data_start),
        per_channel: declared / channels as u64,
        tags,
    })
}

/// The "PROP" chunk's "SND " properties: sample rate, channels (with their speakers) and
/// compression type. `body..end` is the chunk's data.
fn parse_prop(
    source: &mut MappedSource,
    body: u64,
    end: u64,
    rate: &mut Option<u32>,
    channels: &mut Option<(usize, heapless::Vec<Speaker, MAX_CHANNELS>)>,
    compression: &mut Option<[u8; 4]>,
) -> Result<(), DecodeError> {
    let mut kind = [0u8; 4];
    seek(source, body)?;
    if body + 4 > end || read_full(source, &mut kind)? < 4 || &kind != b"SND " {
        return Ok(());
    }
    let mut pos = body + 4;
    while pos.saturating_add(12) <= end {
        let (id, size) = chunk_header(source, pos)?;
        let sub = pos + 12;
        let avail = end.saturating_sub(sub).min(size);
        match &id {
            b"FS  " if avail >= 4 => {
                let mut b = [0u8; 4];
                read_header(source, &mut b, "DSDIFF")?;
                *rate = Some(u32::from_be_bytes(b));
            }
            b"CHNL" if avail >= 2 => {
                let mut b = [0u8; 2 + 4 * MAX_DSD_CHANNELS];
                let len = avail.min(b.len() as u64) as usize;
                let n = read_full(source, &mut b[..len])?;
                let count = u16::from_be_bytes([b[0], b[1]]) as usize;
                let mut layout = heapless::Vec::new();
                for c in 0..count.min(MAX_DSD_CHANNELS) {
                    let id = b.get(2 + 4 * c..6 + 4 * c).filter(|_| 6 + 4 * c <= n);
                    let speaker = match id {
                        Some(b"LFE ") => Speaker::Lfe,
                        Some(b"LS  " | b"RS  ") => Speaker::Surround,
                        _ => Speaker::Front,
                    };
                    let _ = layout.push(speaker);
                }
                *channels = Some((count, layout));
            }
            b"CMPR" if avail >= 4 => {
                let mut b = [0u8; 4];
                read_header(source, &mut b, "DSDIFF")?;
                *compression = Some(b);
            }
            _ => {}
        }
        let Some(next) = sub.checked_add(size).and_then(|e| e.checked_add(size & 1)) else {
            break;
        };
        pos = next;
    }
    Ok(())
}

/// The "DIIN" chunk's "DITI" (title) and "DIAR" (artist) texts.
fn parse_diin(
    source: &mut MappedSource,
    body: u64,
    end: u64,
    tags: &mut Tags,
) -> Result<(), DecodeError> {
    const MAX_TEXT: usize = 4096;
    let mut pos = body;
    while pos.saturating_add(12) <= end {
        let (id, size) = chunk_header(source, pos)?;
        let sub = pos + 12;
        let slot = match &id {
            b"DITI" => Some(&mut tags.title),
            b"DIAR" => Some(&mut tags.artist),
            _ => None,
        };
        if let Some(slot) = slot {
            let avail = end.saturating_sub(sub).min(size).min(4 + MAX_TEXT as u64) as usize;
            let mut b = [0u8; 4 + MAX_TEXT];
            let n = read_full(source, &mut b[..avail])?;
            let declared = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            // A u32 length, then the text (encoding unspecified: read as UTF-8, lossily).
            let text = b
                .get(4..n.min(declared.saturating_add(4)))
                .unwrap_or_default();
            let text = String::from_utf8_lossy(text);
            let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
            if slot.is_none() && !text.is_empty() {
                *slot = Some(text.to_string());
            }
        }
        let Some(next) = sub.checked_add(size).and_then(|e| e.checked_add(size & 1)) else {
            break;
        };
        pos = next;
    }
    Ok(())
}

/// Reads the ID3v2 tag at `at` (not past `end`, at most [`side_tags::MAX_TAG_BYTES`]). A
/// missing, cut or malformed tag gives no tags, not an error.
fn read_id3(source: &mut MappedSource, at: u64, end: u64) -> Result<Tags, DecodeError> {
    let mut tags = Tags::default();
    let mut head = [0u8; 10];
    seek(source, at)?;
    if read_full(source, &mut head)? < 10 {
        return Ok(tags);
    }
    let Some(len) = side_tags::id3v2_len(&head) else {
        return Ok(tags);
    };
    let len = len
        .min(end.saturating_sub(at))
        .min(side_tags::MAX_TAG_BYTES) as usize;
    if len < 10 {
        return Ok(tags);
    }
    let mut bytes = vec![0u8; len];
    bytes[..10].copy_from_slice(&head);
    let got = read_full(source, &mut bytes[10..])?;
    bytes.truncate(10 + got);
    if let Some(revision) = side_tags::id3v2(bytes, false) {
        tags.merge_revision(&revision);
    }
    Ok(tags)
}

fn check_channels(channels: usize, container: &str) -> Result<(), DecodeError> {
    if channels == 0 {
        return Err(DecodeError::Format(format!("{container}: no channels")));
    }
    if channels > MAX_DSD_CHANNELS {
        return Err(DecodeError::Channels(channels));
    }
    Ok(())
}

/// A DSDIFF chunk's id and size (big-endian u64) at `pos`.
fn chunk_header(source: &mut MappedSource, pos: u64) -> Result<([u8; 4], u64), DecodeError> {
    let mut ck = [0u8; 12];
    seek(source, pos)?;
    read_header(source, &mut ck, "DSDIFF")?;
    Ok(([ck[0], ck[1], ck[2], ck[3]], be64(&ck, 4)))
}

fn seek(source: &mut MappedSource, to: u64) -> Result<(), DecodeError> {
    source
        .seek(SeekFrom::Start(to))
        .map(|_| ())
        .map_err(DecodeError::Read)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> Result<usize, DecodeError> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(DecodeError::Read(e)),
        }
    }
    Ok(n)
}

/// Fills `buf` from a header; a file that ends first is not a `container` file.
fn read_header(
    source: &mut MappedSource,
    buf: &mut [u8],
    container: &str,
) -> Result<(), DecodeError> {
    if read_full(source, buf)? < buf.len() {
        return Err(DecodeError::Format(format!(
            "{container}: the file ends inside its header"
        )));
    }
    Ok(())
}

fn clamp_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes_at(b, at))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes_at(b, at))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes_at(b, at))
}

pub mod encode {
    //! PCM to DSD files, for tests and benchmarks (no tool at hand writes DSD).
    //!
    //! In: planar PCM at any rate up to the DSD rate, and tags. Out: a DSF file (1 bit per
    //! sample, LSB first, 4096-byte blocks, an ID3v2.3 tag at the end when there are tags) or
    //! a DSDIFF file (FVER, PROP with FS/CHNL/CMPR, the "DSD " data chunk, an "ID3 " chunk).
    //!
    //! Upsampling: a 4-point cubic (Catmull-Rom) interpolation evaluated at each DSD sample's
    //! exact position (integer phase accumulator, so any rate ratio works). From 44.1 kHz its
    //! response is −0.03 dB at 5 kHz, −0.4 dB at 10 kHz, −4.4 dB at 20 kHz, and the image of
    //! a 1 kHz tone (at 43.1 kHz) lies 90 dB down: ample for tempo, key, loudness and timbre
    //! tests, not a mastering-grade converter.
    //!
    //! Modulation: the textbook second-order sigma-delta modulator (two integrators, 1-bit
    //! quantiser, STF z⁻¹, NTF (1 − z⁻¹)²; in-band noise about −63 dB under a 0.5 sine after
    //! decoding). A PCM value v becomes modulation depth v, so a 0.5 amplitude sine is the
    //! SACD 0 dB reference and decodes back to 0.5. Input is clamped to ±[`MAX_INPUT`]
    //! (0.707, the SACD maximum, +3 dB): the modulator was measured stable with sines up to
    //! 0.9, so the limit is the format's, not the loop's, and the corpus's clips (0.7 peak)
    //! pass whole. Louder PCM is clipped: scale it down first to keep it whole. The bits are
    //! produced and written a block (4096 bytes per channel) at a time.

    use std::fs::File;
    use std::io::{self, BufWriter, Write};
    use std::path::Path;

    use super::{MAX_DSD_CHANNELS, PACKET_BYTES, decimation};
    use crate::tags::Tags;

    /// Largest modulation depth written, the SACD maximum (+3 dB over the 0 dB reference at
    /// 50 %); PCM beyond it is clipped.
    pub const MAX_INPUT: f32 = std::f32::consts::FRAC_1_SQRT_2;

    /// Writes `channels` (planar PCM at `pcm_rate`, all the same length) as a DSF file at
    /// `dsd_rate` (2822400, 5644800, ... or the 48 kHz family) with an ID3v2.3 tag holding
    /// `tags`' text fields (none when `tags` is empty).
    pub fn write_dsf(
        path: &Path,
        channels: &[&[f32]],
        pcm_rate: u32,
        dsd_rate: u32,
        tags: &Tags,
    ) -> io::Result<()> {
        let samples = plan(channels, pcm_rate, dsd_rate)?;
        let n = channels.len() as u64;
        let block = PACKET_BYTES as u64;
        let blocks = samples.div_ceil(8).div_ceil(block);
        let data_chunk = 12 + blocks * block * n;
        let tag = id3v23(tags);
        let metadata_at = if tag.is_empty() {
            0
        } else {
            28 + 52 + data_chunk
        };
        let total = 28 + 52 + data_chunk + tag.len() as u64;
        let channel_type: u32 = match channels.len() {
            5 => 6,        // FL FR C BL BR
            6 => 7,        // 5.1
            k => k as u32, // mono, stereo, 3 channels, quad
        };

        let mut w = BufWriter::new(File::create(path)?);
        w.write_all(b"DSD ")?;
        w.write_all(&28u64.to_le_bytes())?;
        w.write_all(&total.to_le_bytes())?;
        w.write_all(&metadata_at.to_le_bytes())?;
        w.write_all(b"fmt ")?;
        w.write_all(&52u64.to_le_bytes())?;
        for v in [1u32, 0, channel_type, n as u32, dsd_rate, 1] {
            w.write_all(&v.to_le_bytes())?;
        }
        w.write_all(&samples.to_le_bytes())?;
        w.write_all(&(block as u32).to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(b"data")?;
        w.write_all(&data_chunk.to_le_bytes())?;

        let mut mods: Vec<Modulator> = channels
            .iter()
            .map(|pcm| Modulator::new(pcm, pcm_rate, dsd_rate, samples))
            .collect();
        let mut buf = vec![0u8; PACKET_BYTES];
        for _ in 0..blocks {
            for m in &mut mods {
                m.fill(&mut buf);
                for b in &mut buf {
                    *b = b.reverse_bits(); // bits per sample 1: LSB first
                }
                w.write_all(&buf)?;
            }
        }
        w.write_all(&tag)?;
        w.flush()
    }

    /// Writes `channels` (planar PCM at `pcm_rate`, all the same length) as an uncompressed
    /// DSDIFF file at `dsd_rate`, with an "ID3 " chunk holding `tags` when there are any.
    pub fn write_dff(
        path: &Path,
        channels: &[&[f32]],
        pcm_rate: u32,
        dsd_rate: u32,
        tags: &Tags,
    ) -> io::Result<()> {
        let samples = plan(channels, pcm_rate, dsd_rate)?;
        let n = channels.len();
        let per_channel = samples.div_ceil(8);
        let data = per_channel * n as u64;
        let tag = id3v23(tags);
        let padded = |len: u64| len + (len & 1);
        let ids: &[&[u8; 4]] = match n {
            1 => &[b"C   "],
            2 => &[b"SLFT", b"SRGT"],
            3 => &[b"MLFT", b"MRGT", b"C   "],
            4 => &[b"MLFT", b"MRGT", b"LS  ", b"RS  "],
            5 => &[b"MLFT", b"MRGT", b"C   ", b"LS  ", b"RS  "],
            _ => &[b"MLFT", b"MRGT", b"C   ", b"LFE ", b"LS  ", b"RS  "],
        };
        let chnl = 2 + 4 * n as u64;
        let cmpr_name = b"not compressed";
        let cmpr = 4 + 1 + cmpr_name.len() as u64;
        let prop = 4 + (12 + 4) + (12 + chnl) + (12 + padded(cmpr));
        let mut form = 4 + (12 + 4) + (12 + prop) + (12 + padded(data));
        if !tag.is_empty() {
            form += 12 + padded(tag.len() as u64);
        }

        let mut w = BufWriter::new(File::create(path)?);
        chunk(&mut w, b"FRM8", form)?;
        w.write_all(b"DSD ")?;
        chunk(&mut w, b"FVER", 4)?;
        w.write_all(&0x0105_0000u32.to_be_bytes())?;
        chunk(&mut w, b"PROP", prop)?;
        w.write_all(b"SND ")?;
        chunk(&mut w, b"FS  ", 4)?;
        w.write_all(&dsd_rate.to_be_bytes())?;
        chunk(&mut w, b"CHNL", chnl)?;
        w.write_all(&(n as u16).to_be_bytes())?;
        for id in ids {
            w.write_all(*id)?;
        }
        chunk(&mut w, b"CMPR", cmpr)?;
        w.write_all(b"DSD ")?;
        w.write_all(&[cmpr_name.len() as u8])?;
        w.write_all(cmpr_name)?;
        if cmpr & 1 == 1 {
            w.write_all(&[0])?;
        }
        chunk(&mut w, b"DSD ", data)?;

        let mut mods: Vec<Modulator> = channels
            .iter()
            .map(|pcm| Modulator::new(pcm, pcm_rate, dsd_rate, samples))
            .collect();
        let mut planes = vec![vec![0u8; PACKET_BYTES]; n];
        let mut frames = vec![0u8; PACKET_BYTES * n];
        let mut left = per_channel;
        while left > 0 {
            let len = left.min(PACKET_BYTES as u64) as usize;
            for (m, plane) in mods.iter_mut().zip(&mut planes) {
                m.fill(&mut plane[..len]);
            }
            for (i, frame) in frames[..len * n].chunks_exact_mut(n).enumerate() {
                for (b, plane) in frame.iter_mut().zip(&planes) {
                    *b = plane[i];
                }
            }
            w.write_all(&frames[..len * n])?;
            left -= len as u64;
        }
        if data & 1 == 1 {
            w.write_all(&[0])?;
        }
        if !tag.is_empty() {
            chunk(&mut w, b"ID3 ", tag.len() as u64)?;
            w.write_all(&tag)?;
            if tag.len() & 1 == 1 {
                w.write_all(&[0])?;
            }
        }
        w.flush()
    }

    /// A DSDIFF chunk header.
    fn chunk(w: &mut impl Write, id: &[u8; 4], size: u64) -> io::Result<()> {
        w.write_all(id)?;
        w.write_all(&size.to_be_bytes())
    }

    /// Checks the arguments; returns the DSD samples per channel.
    fn plan(channels: &[&[f32]], pcm_rate: u32, dsd_rate: u32) -> io::Result<u64> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if channels.is_empty() || channels.len() > MAX_DSD_CHANNELS {
            return Err(invalid(format!("{} channels", channels.len())));
        }
        if decimation(dsd_rate).is_none() {
            return Err(invalid(format!("{dsd_rate} Hz is not a DSD rate")));
        }
        if pcm_rate == 0 || pcm_rate > dsd_rate {
            return Err(invalid(format!("PCM rate {pcm_rate} Hz")));
        }
        let len = channels[0].len();
        if channels.iter().any(|c| c.len() != len) {
            return Err(invalid("channels of different lengths".into()));
        }
        Ok(len as u64 * u64::from(dsd_rate) / u64::from(pcm_rate))
    }

    /// One channel's upsampler and modulator.
    struct Modulator<'a> {
        pcm: &'a [f32],
        /// PCM samples per DSD sample = `advance / period`.
        advance: u64,
        period: u64,
        /// The PCM sample at or before the current position, and the position past it in
        /// units of 1/`period` samples.
        index: usize,
        phase: u64,
        /// Cubic through pcm[index - 1 ..= index + 2] on [index, index + 1].
        poly: [f64; 4],
        i1: f64,
        i2: f64,
        /// DSD samples still to produce.
        left: u64,
    }

    impl<'a> Modulator<'a> {
        fn new(pcm: &'a [f32], pcm_rate: u32, dsd_rate: u32, samples: u64) -> Self {
            Modulator {
                pcm,
                advance: u64::from(pcm_rate),
                period: u64::from(dsd_rate),
                index: 0,
                phase: 0,
                poly: catmull_rom(pcm, 0),
                i1: 0.0,
                i2: 0.0,
                left: samples,
            }
        }

        /// The next output bit.
        #[inline]
        fn bit(&mut self) -> bool {
            let f = self.phase as f64 / self.period as f64;
            let [c0, c1, c2, c3] = self.poly;
            let x = (((c3 * f + c2) * f + c1) * f + c0).clamp(-MAX_INPUT as f64, MAX_INPUT as f64);
            let y = if self.i2 >= 0.0 { 1.0 } else { -1.0 };
            // A guard that never acts within ±MAX_INPUT: integrators stay well under 8 there.
            self.i1 = (self.i1 + x - y).clamp(-8.0, 8.0);
            self.i2 = (self.i2 + self.i1 - y).clamp(-8.0, 8.0);
            self.phase += self.advance;
            if self.phase >= self.period {
                self.phase -= self.period;
                self.index += 1;
                self.poly = catmull_rom(self.pcm, self.index);
            }
            y > 0.0
        }

        /// The next `out.len()` bytes, MSB first. Past the end of the stream the rest of the
        /// last byte alternates (silence) and whole bytes are zero (DSF's padding).
        fn fill(&mut self, out: &mut [u8]) {
            for byte in out {
                if self.left == 0 {
                    *byte = 0;
                    continue;
                }
                let mut b = 0u8;
                for i in 0..8 {
                    let bit = if self.left > 0 {
                        self.left -= 1;
                        self.bit()
                    } else {
                        i % 2 == 0
                    };
                    b = (b << 1) | u8::from(bit);
                }
                *byte = b;
            }
        }
    }

    /// Coefficients (constant first) of the Catmull-Rom cubic on [i, i + 1]; samples outside
    /// the signal are 0.
    fn catmull_rom(pcm: &[f32], i: usize) -> [f64; 4] {
        let at = |k: Option<usize>| f64::from(k.and_then(|k| pcm.get(k)).copied().unwrap_or(0.0));
        let (xm, x0, x1, x2) = (
            at(i.checked_sub(1)),
            at(Some(i)),
            at(i.checked_add(1)),
            at(i.checked_add(2)),
        );
        [
            x0,
            0.5 * (x1 - xm),
            xm - 2.5 * x0 + 2.0 * x1 - 0.5 * x2,
            0.5 * (x2 - xm) + 1.5 * (x0 - x1),
        ]
    }

    /// An ID3v2.3 tag with `tags`' text fields (Latin-1 where it fits, else UTF-16 with a
    /// BOM); empty when there are none.
    fn id3v23(tags: &Tags) -> Vec<u8> {
        let mut frames = Vec::new();
        let number = |v: Option<u32>| v.map(|n| n.to_string());
        let fields = [
            (b"TIT2", tags.title.clone()),
            (b"TPE1", tags.artist.clone()),
            (b"TALB", tags.album.clone()),
            (b"TPE2", tags.album_artist.clone()),
            (b"TCON", tags.genre.clone()),
            (b"TYER", number(tags.year)),
            (b"TRCK", number(tags.track_number)),
            (b"TPOS", number(tags.disc_number)),
            (b"TSRC", tags.isrc.clone()),
        ];
        for (id, value) in fields {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let mut body = Vec::new();
            if value.chars().all(|c| (c as u32) < 0x100) {
                body.push(0);
                body.extend(value.chars().map(|c| c as u8));
            } else {
                body.extend([1, 0xff, 0xfe]);
                body.extend(value.encode_utf16().flat_map(u16::to_le_bytes));
            }
            frames.extend_from_slice(id);
            frames.extend((body.len() as u32).to_be_bytes());
            frames.extend([0, 0]);
            frames.extend(body);
        }
        if frames.is_empty() {
            return frames;
        }
        let size = frames.len() as u32;
        let mut tag = b"ID3\x03\x00\x00".to_vec();
        tag.extend([21, 14, 7, 0].map(|shift| ((size >> shift) & 0x7f) as u8));
        tag.extend(frames);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{write_dff, write_dsf};
    use super::*;
    use std::path::Path;

    fn sine(freq: f64, amp: f64, rate: u32, secs: f64) -> Vec<f32> {
        let n = (rate as f64 * secs) as usize;
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32
            })
            .collect()
    }

    fn open(path: &Path) -> Result<DsdReader, DecodeError> {
        DsdReader::open(MappedSource::open(path).unwrap())
    }

    fn decode(path: &Path) -> (StreamInfo, Vec<Vec<f32>>, Tags) {
        let mut r = open(path).unwrap();
        let info = r.info().clone();
        let mut planes = vec![Vec::with_capacity(PACKET_BYTES); info.channels];
        let mut out = vec![Vec::new(); info.channels];
        loop {
            let n = r.next_packet(&mut planes).unwrap();
            if n == 0 {
                break;
            }
            for (o, p) in out.iter_mut().zip(&planes) {
                assert_eq!(p.len(), n);
                o.extend_from_slice(p);
            }
        }
        (info, out, r.tags())
    }

    /// Least-squares fit of a·sin + b·cos + c at `freq` over `x` (skipping the filter's
    /// start-up and the end): the fitted amplitude and the residual's power relative to the
    /// fitted sine's, in dB.
    fn fit(x: &[f32], freq: f64, rate: u32) -> (f64, f64) {
        let x = &x[200..x.len() - 200];
        let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
        let basis = |i: usize| {
            let t = w * (i + 200) as f64;
            [t.sin(), t.cos(), 1.0]
        };
        let mut a = [[0f64; 4]; 3];
        for (i, &v) in x.iter().enumerate() {
            let b = basis(i);
            for r in 0..3 {
                for c in 0..3 {
                    a[r][c] += b[r] * b[c];
                }
                a[r][3] += b[r] * v as f64;
            }
        }
        // Gauss-Jordan on the 3×3 normal equations.
        for p in 0..3 {
            let pivot = a[p][p];
            a[p].iter_mut().for_each(|v| *v /= pivot);
            let row = a[p];
            for (r, other) in a.iter_mut().enumerate() {
                if r != p {
                    let f = other[p];
                    for (v, pv) in other.iter_mut().zip(row) {
                        *v -= f * pv;
                    }
                }
            }
        }
        let (s, c, dc) = (a[0][3], a[1][3], a[2][3]);
        let mut residual = 0.0;
        for (i, &v) in x.iter().enumerate() {
            let b = basis(i);
            let e = v as f64 - (s * b[0] + c * b[1] + dc);
            residual += e * e;
        }
        let amp = s.hypot(c);
        let signal = amp * amp / 2.0 * x.len() as f64;
        (amp, 10.0 * (residual / signal).log10())
    }

    fn db(a: f64, b: f64) -> f64 {
        20.0 * (a / b).log10()
    }

    #[test]
    fn sniffs_dsf_and_dff_only() {
        let dir = tempfile::tempdir().unwrap();
        let x = sine(1000.0, 0.5, 44_100, 0.01);
        let (dsf, dff) = (dir.path().join("a.dsf"), dir.path().join("a.dff"));
        write_dsf(&dsf, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        write_dff(&dff, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        assert!(sniff(&std::fs::read(&dsf).unwrap()[..64]));
        assert!(sniff(&std::fs::read(&dff).unwrap()[..64]));
        assert!(!sniff(
            b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00"
        ));
        assert!(!sniff(
            b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00\x00\x00\x00\x00"
        ));
        assert!(!sniff(
            b"ID3\x04\x00\x00\x00\x00\x00\x00TIT2\x00\x00\x00\x00"
        ));
        assert!(!sniff(b"DSD \x1c\x00\x00\x00"));
        assert!(!sniff(b"FRM8\x00\x00\x00\x00\x00\x00\x00\x10AIFF"));
    }

    #[test]
    fn dsf_sine_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sine.dsf");
        let x = sine(1000.0, 0.5, 44_100, 2.0);
        write_dsf(&path, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let (info, planes, _) = decode(&path);
        assert_eq!((info.sample_rate, info.channels), (88_200, 1));
        assert_eq!(info.codec, "dsd64");
        assert_eq!(info.layout.as_slice(), &[Speaker::Front]);
        let y = &planes[0];
        assert!(
            y.len().abs_diff(176_400) <= PACKET_BYTES * 8 / 32,
            "{}",
            y.len()
        );
        let (amp, residual) = fit(y, 1000.0, 88_200);
        eprintln!("DSF 1 kHz: amplitude {amp:.5}, residual {residual:.1} dB");
        assert!(db(amp, 0.5).abs() < 0.5, "amplitude {amp}");
        assert!(residual < -50.0, "residual {residual} dB");
    }

    #[test]
    fn dff_stereo_round_trip_keeps_channels_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.dff");
        let l = sine(1000.0, 0.5, 44_100, 1.0);
        let r = sine(3000.0, 0.25, 44_100, 1.0);
        write_dff(&path, &[&l, &r], 44_100, 2_822_400, &Tags::default()).unwrap();
        let (info, planes, tags) = decode(&path);
        assert_eq!((info.sample_rate, info.channels), (88_200, 2));
        assert_eq!(tags, Tags::default());
        for (plane, (freq, want)) in planes.iter().zip([(1000.0, 0.5), (3000.0, 0.25)]) {
            assert!(plane.len().abs_diff(88_200) <= 1024);
            let (amp, residual) = fit(plane, freq, 88_200);
            eprintln!("DFF {freq} Hz: amplitude {amp:.5}, residual {residual:.1} dB");
            assert!(db(amp, want).abs() < 0.5, "{freq} Hz: amplitude {amp}");
            assert!(residual < -45.0, "{freq} Hz: residual {residual} dB");
        }
        // Not swapped: the left channel holds no 3 kHz, the right no 1 kHz.
        assert!(fit(&planes[0], 3000.0, 88_200).0 < 0.01);
        assert!(fit(&planes[1], 1000.0, 88_200).0 < 0.01);
    }

    /// Up to the SACD maximum the modulator stays stable and the level survives; beyond it
    /// the encoder clips instead of going unstable.
    #[test]
    fn loud_input_is_stable_and_clipped_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loud.dsf");
        let x = sine(1000.0, 0.7, 44_100, 0.5);
        write_dsf(&path, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let (amp, residual) = fit(&decode(&path).1[0], 1000.0, 88_200);
        assert!(db(amp, 0.7).abs() < 0.5, "amplitude {amp}");
        assert!(residual < -50.0, "residual {residual} dB");
        let x = sine(1000.0, 1.0, 44_100, 0.2);
        write_dsf(&path, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let y = &decode(&path).1[0];
        let peak = y.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((0.68..0.8).contains(&peak), "peak {peak}");
    }

    #[test]
    fn dsd128_and_the_48k_family() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dsf");
        let x = sine(440.0, 0.5, 48_000, 0.1);
        write_dsf(&path, &[&x], 48_000, 6_144_000, &Tags::default()).unwrap();
        let (info, planes, _) = decode(&path);
        assert_eq!((info.sample_rate, info.codec.as_str()), (96_000, "dsd128"));
        let (amp, _) = fit(&planes[0], 440.0, 96_000);
        assert!(db(amp, 0.5).abs() < 0.5, "amplitude {amp}");
    }

    #[test]
    fn tags_round_trip_through_id3v2() {
        let dir = tempfile::tempdir().unwrap();
        let tags = Tags {
            title: Some("Ünïcødé ☃ title".into()),
            artist: Some("Artïst".into()),
            album: Some("Album".into()),
            album_artist: Some("Various".into()),
            genre: Some("Jazz".into()),
            year: Some(1999),
            track_number: Some(7),
            disc_number: Some(2),
            ..Tags::default()
        };
        let x = sine(1000.0, 0.5, 44_100, 0.05);
        for name in ["t.dsf", "t.dff"] {
            let path = dir.path().join(name);
            if name.ends_with("dsf") {
                write_dsf(&path, &[&x, &x], 44_100, 2_822_400, &tags).unwrap();
            } else {
                write_dff(&path, &[&x, &x], 44_100, 2_822_400, &tags).unwrap();
            }
            let (_, planes, got) = decode(&path);
            assert_eq!(got, tags, "{name}");
            assert!(planes[0].len().abs_diff(4410) <= 1024, "{name}");
        }
    }

    #[test]
    fn five_one_layout() {
        let dir = tempfile::tempdir().unwrap();
        let x = sine(1000.0, 0.5, 44_100, 0.02);
        let chans: Vec<&[f32]> = (0..6).map(|_| x.as_slice()).collect();
        let (dsf, dff) = (dir.path().join("6.dsf"), dir.path().join("6.dff"));
        write_dsf(&dsf, &chans, 44_100, 2_822_400, &Tags::default()).unwrap();
        write_dff(&dff, &chans, 44_100, 2_822_400, &Tags::default()).unwrap();
        use Speaker::*;
        for path in [dsf, dff] {
            let r = open(&path).unwrap();
            assert_eq!(
                r.info().layout.as_slice(),
                &[Front, Front, Front, Lfe, Surround, Surround]
            );
        }
    }

    #[test]
    fn msb_first_dsf_decodes_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lsb.dsf");
        let x = sine(1000.0, 0.5, 44_100, 0.1);
        write_dsf(&path, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[28 + 32..28 + 36].copy_from_slice(&8u32.to_le_bytes());
        for b in &mut bytes[92..] {
            *b = b.reverse_bits();
        }
        let msb = dir.path().join("msb.dsf");
        std::fs::write(&msb, &bytes).unwrap();
        assert_eq!(decode(&path).1, decode(&msb).1);
    }

    #[test]
    fn truncated_dsf_decodes_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.dsf");
        let x = sine(1000.0, 0.5, 44_100, 0.5);
        write_dsf(&path, &[&x, &x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let whole = decode(&path).1;
        let bytes = std::fs::read(&path).unwrap();
        // Cut inside the right channel's fifth block: four whole blocks and a bit per channel.
        let cut = 92 + 4 * 2 * 4096 + 4096 + 1001;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let (_, planes, _) = decode(&path);
        assert_eq!(planes[0].len(), (4 * 4096 + 1001) / 4);
        assert_eq!(planes[0].len(), planes[1].len());
        assert_eq!(planes[0][..], whole[0][..planes[0].len()]);
        // Cut inside the header: a format error.
        std::fs::write(&path, &bytes[..70]).unwrap();
        assert!(matches!(open(&path), Err(DecodeError::Format(_))));
    }

    #[test]
    fn bad_headers_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        for bytes in [
            &b""[..],
            b"DSD \x1c\x00\x00\x00",
            b"FRM8\x00\x00\x00\x00\x00\x00\x00\x04DSD ",
            b"RIFF\x24\x00\x00\x00WAVEfmt ",
            &[0xffu8; 200],
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert!(
                matches!(open(&path), Err(DecodeError::Format(_))),
                "{}",
                bytes.escape_ascii()
            );
        }
        // A DSF with a rate that is not DSD's, and one with 8 channels.
        let x = sine(1000.0, 0.5, 44_100, 0.01);
        write_dsf(&path, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut b = good.clone();
        b[28 + 28..28 + 32].copy_from_slice(&2_000_000u32.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(open(&path), Err(DecodeError::Format(_))));
        let mut b = good.clone();
        b[28 + 24..28 + 28].copy_from_slice(&8u32.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(open(&path), Err(DecodeError::Channels(8))));
        // The data chunk starting past the end of the file.
        std::fs::write(&path, &good[..90]).unwrap();
        assert!(matches!(open(&path), Err(DecodeError::Format(_))));
    }

    #[test]
    fn dst_compressed_dff_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dst.dff");
        let x = sine(1000.0, 0.5, 44_100, 0.01);
        write_dff(&path, &[&x, &x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == b"CMPR").unwrap();
        bytes[at + 12..at + 16].copy_from_slice(b"DST ");
        std::fs::write(&path, &bytes).unwrap();
        match open(&path) {
            Err(DecodeError::Codec(m)) => assert_eq!(m, "DST-compressed DSD"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened a DST file"),
        }
    }

    /// The decimation filter's response, measured on its taps: flat pass band to 20 kHz (at
    /// 88.2 kHz out), at least 65 dB down from the output's Nyquist frequency on.
    #[test]
    fn filter_response() {
        for d in [32usize, 64, 128] {
            let h = taps(d);
            let fs = 88_200.0 * d as f64;
            let gain = |f: f64| {
                let w = 2.0 * std::f64::consts::PI * f / fs;
                let (re, im) = h.iter().enumerate().fold((0.0, 0.0), |(re, im), (k, &t)| {
                    (re + t * (w * k as f64).cos(), im - t * (w * k as f64).sin())
                });
                20.0 * re.hypot(im).log10()
            };
            let ripple = (0..=40)
                .map(|i| gain(i as f64 * 500.0).abs())
                .fold(0.0, f64::max);
            // The stop band from 44.1 kHz, densely to 4× that, then coarsely to fs/2.
            let near = (0..600).map(|i| 44_100.0 + i as f64 * 220.5);
            let far = (0..200).map(|i| 176_400.0 + i as f64 * (fs / 2.0 - 176_400.0) / 200.0);
            let stop = near.chain(far).map(gain).fold(f64::MIN, f64::max);
            eprintln!(
                "decimation {d}: {} taps, pass band ripple {ripple:.4} dB, stop band {stop:.1} dB, \
                 -6 dB at {:.0} Hz",
                h.len(),
                (20_000..44_100)
                    .step_by(50)
                    .find(|&f| gain(f as f64) < -6.0)
                    .unwrap_or(0)
            );
            assert!(ripple < 0.02, "decimation {d}: ripple {ripple} dB");
            assert!(stop < -65.0, "decimation {d}: stop band {stop} dB");
        }
    }

    #[test]
    fn silence_decodes_to_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zero.dff");
        let x = vec![0f32; 4410];
        write_dff(&path, &[&x], 44_100, 2_822_400, &Tags::default()).unwrap();
        let (_, planes, _) = decode(&path);
        let peak = planes[0].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(peak < 1e-3, "peak {peak}");
    }
}
