//! Decoding one file into a stream of analysis-ready chunks.
//!
//! In: a path. Out: calls on a [`ChunkSink`]: first the stream's [`StreamInfo`], then, packet by
//! packet, the native-rate planar samples (for loudness, which must be measured per channel at
//! the source rate) and the same audio down-mixed to mono and resampled to
//! [`ANALYSIS_RATE`] (for everything else). Finally the container's tags and the decoded length.
//!
//! The file is read through [`mapped::MappedSource`]; symphonia demuxes and decodes it packet by
//! packet, so at most one packet of samples (a few thousand frames, far below the one-minute
//! ceiling) is alive at a time. All buffers belong to the per-worker [`Decoder`] and are
//! reused for every file.
//!
//! Error contract (symphonia's): a malformed packet is skipped and counted; the end of the data,
//! even where the header promised more, ends the stream cleanly; anything else (no audio track,
//! unsupported codec, unreadable file, the file truncated under us) fails this file alone.

pub mod cover;
pub mod cut;
pub mod dsd;
pub mod ffmpeg;
pub mod mapped;
pub mod resample;
pub mod sanity;
pub mod side_tags;

use std::path::Path;

use symphonia::core::audio::{AudioBuffer, AudioBufferRef, Channels, Signal};
use symphonia::core::codecs::{CODEC_TYPE_NULL, CodecRegistry, DecoderOptions};
use symphonia::core::conv::IntoSample;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, SeekMode, SeekTo};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::{Limit, MetadataOptions};
use symphonia::core::probe::{Hint, ProbeResult};
use symphonia::core::sample::Sample;

use crate::tags::Tags;
use mapped::MappedSource;
use resample::Resampler;

/// The rate every feature except loudness is computed at: enough for spectral shape up to
/// 11 kHz, half the work of 44.1 kHz.
pub const ANALYSIS_RATE: u32 = 22_050;

/// Most channels we accept (7.1); more is refused as unsupported.
pub const MAX_CHANNELS: usize = 8;

/// Skipped packets in a row after which a file is declared undecodable.
const MAX_CONSECUTIVE_ERRORS: u32 = 64;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("not a supported audio file: {0}")]
    Format(String),
    #[error("no audio track")]
    NoTrack,
    #[error("unsupported codec: {0}")]
    Codec(String),
    #[error("unsupported channel count {0}")]
    Channels(usize),
    #[error("unsupported sample rate {0} Hz")]
    SampleRate(u32),
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("no decodable audio: {0}")]
    Empty(String),
    #[error("stopped after {0} undecodable packets in a row: {1}")]
    Corrupt(u32, String),
    #[error("needs ffmpeg for {0} (not installed)")]
    NeedsFfmpeg(String),
}

/// What the container says about the audio stream.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub sample_rate: u32,
    pub channels: usize,
    pub codec: String,
    /// The speaker of each plane, in plane order (symphonia's channel bit order).
    pub layout: heapless::Vec<Speaker, MAX_CHANNELS>,
}

/// What one plane carries, for loudness weighting and down-mixing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Front,
    Surround,
    Lfe,
}

/// A decoder outside symphonia ([`dsd`], the [`ffmpeg`] pipe). It has read its stream's
/// header before it is handed over, and fills the caller's planes one packet at a time, so
/// that, as with symphonia, one packet of samples is alive at a time whatever the file's length.
pub trait PlanarSource {
    /// The stream's rate, channel count, codec name and layout.
    fn info(&self) -> &StreamInfo;
    /// The container's tags (read with the header; empty when it has none).
    fn tags(&mut self) -> Tags;
    /// Decodes the next packet into `planes[..channels]` (each cleared first, all the same
    /// length) and returns that length; 0 at the end of the stream.
    fn next_packet(&mut self, planes: &mut [Vec<f32>]) -> Result<usize, DecodeError>;
}

/// Where decoded audio goes.
pub trait ChunkSink {
    fn begin(&mut self, info: &StreamInfo);
    /// `planes[c]` holds channel c at the source rate; `mono` the down-mix at [`ANALYSIS_RATE`]
    /// (empty when only the planes were asked for: [`Decoder::decode_planes`]).
    fn chunk(&mut self, planes: &[&[f32]], mono: &[f32]);
    /// True once the sink wants no more: decoding stops after the packet in hand.
    fn done(&self) -> bool {
        false
    }
}

/// What a decode hands its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Nothing (decode-only, the benchmarks' floor).
    Nothing,
    /// The planes at the source rate, from a given frame on.
    Planes { from: u64 },
    /// The planes and the analysis-rate down-mix, from the start.
    Analysis,
}

impl Output {
    fn from(self) -> u64 {
        match self {
            Output::Planes { from } => from,
            _ => 0,
        }
    }
}

/// What a finished decode reports besides the samples.
#[derive(Debug, Clone, Default)]
pub struct DecodeSummary {
    pub info: StreamInfo,
    /// Frames decoded at the source rate.
    pub frames: u64,
    /// Packets skipped as malformed.
    pub skipped_packets: u32,
    pub tags: Tags,
    /// What the ffmpeg helpers used, for a file decoded through them.
    pub helper: ffmpeg::HelperUse,
}

impl DecodeSummary {
    pub fn duration_s(&self) -> f64 {
        if self.info.sample_rate == 0 {
            0.0
        } else {
            self.frames as f64 / self.info.sample_rate as f64
        }
    }
}

/// A per-worker decoder: owns the conversion, down-mix and resampling buffers.
pub struct Decoder {
    planes: Vec<Vec<f32>>,
    mono: Vec<f32>,
    resampled: Vec<f32>,
    resampler: Resampler,
}

/// A file opened through the guarded mapping and its container probed: the reader (with
/// the metadata met while probing) and the file's last 128 bytes, for an ID3v1 trailer.
pub struct Opened {
    pub probed: ProbeResult,
    pub id3v1: [u8; 128],
    pub id3v1_len: usize,
    /// An AIFF file's text chunks and ID3 chunk, or a CAF file's `info` chunk, which
    /// symphonia does not read.
    pub side: Option<(Tags, Option<symphonia::core::meta::MetadataRevision>)>,
}

/// The one way into a file, for the decoder and for cover art alike: maps it (truncation-safe,
/// see [`mapped`]), repairs a lying RIFF size, runs the [`sanity`] checks on its declared
/// lengths, then lets symphonia probe the container. `gapless`: trim encoder delay and
/// padding (the decoder wants it; reading metadata does not care).
pub fn open(path: &Path, gapless: bool) -> Result<Opened, DecodeError> {
    open_mapped(
        MappedSource::open(path).map_err(DecodeError::Open)?,
        path,
        gapless,
    )
}

/// Largest embedded picture read from a file's tags: a bigger one is skipped while probing
/// (cover art is for a phone screen; nothing else reads pictures).
pub const MAX_PICTURE_BYTES: usize = 16 << 20;

/// [`open`] for a file the caller mapped itself (the server opens with checks of its own);
/// `path` gives the container hint (its extension).
pub fn open_mapped(
    mut source: MappedSource,
    path: &Path,
    gapless: bool,
) -> Result<Opened, DecodeError> {
    source.repair_riff_size();
    let bytes = source.contents();
    sanity::check(bytes, bytes.len() as u64).map_err(DecodeError::Format)?;
    let mut id3v1 = [0u8; 128];
    let id3v1_len = source.tail(&mut id3v1).unwrap_or(0);
    // Pictures only when the caller reads metadata (cover art), not for the analysis.
    let side = side_tags::aiff(bytes, !gapless).or_else(|| side_tags::caf(bytes));
    let stream = MediaSourceStream::new(
        Box::new(source),
        MediaSourceStreamOptions {
            buffer_len: 64 * 1024,
        },
    );
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let format_opts = FormatOptions {
        enable_gapless: gapless,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &format_opts,
            &MetadataOptions {
                limit_visual_bytes: Limit::Maximum(MAX_PICTURE_BYTES),
                ..MetadataOptions::default()
            },
        )
        .map_err(|e| DecodeError::Format(one_line(&e)))?;
    Ok(Opened {
        probed,
        id3v1,
        id3v1_len,
        side,
    })
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            planes: (0..MAX_CHANNELS)
                .map(|_| Vec::with_capacity(8192))
                .collect(),
            mono: Vec::with_capacity(8192),
            resampled: Vec::with_capacity(8192),
            resampler: Resampler::new(44_100, ANALYSIS_RATE, 4),
        }
    }

    /// Decodes `path` to the end, feeding `sink`.
    pub fn decode(
        &mut self,
        path: &Path,
        sink: &mut dyn ChunkSink,
    ) -> Result<DecodeSummary, DecodeError> {
        self.run(path, sink, Output::Analysis)
    }

    /// Demuxes and decodes only: no conversion, down-mix or resampling, and `sink` sees no
    /// chunks. The cost floor that benchmarks compare analysis against.
    pub fn decode_raw(
        &mut self,
        path: &Path,
        sink: &mut dyn ChunkSink,
    ) -> Result<DecodeSummary, DecodeError> {
        self.run(path, sink, Output::Nothing)
    }

    /// The planes only (no down-mix), starting at frame `from` of the stream (seeking there
    /// when the container allows, else decoding up to it), until the sink is done: for
    /// cutting one track out of a single-file album.
    pub fn decode_planes(
        &mut self,
        path: &Path,
        from: u64,
        sink: &mut dyn ChunkSink,
    ) -> Result<DecodeSummary, DecodeError> {
        self.run(path, sink, Output::Planes { from })
    }

    /// Picks the decoder by the file's first bytes: DSD, the formats only ffmpeg reads
    /// ([`ffmpeg::fallback_format`]), else symphonia (and ffmpeg for a codec symphonia finds
    /// but cannot make).
    fn run(
        &mut self,
        path: &Path,
        sink: &mut dyn ChunkSink,
        out: Output,
    ) -> Result<DecodeSummary, DecodeError> {
        let source = MappedSource::open(path).map_err(DecodeError::Open)?;
        let mut head = [0u8; 64];
        let n = source.contents().len().min(head.len());
        head[..n].copy_from_slice(&source.contents()[..n]);
        let head = &head[..n];
        if dsd::sniff(head) {
            let mut reader = dsd::DsdReader::open(source)?;
            return self.run_planar(&mut reader, sink, out);
        }
        // Before symphonia's probe, which scans past what it does not know and can take an
        // MPEG sync word inside a WavPack block for an MP3 file.
        if let Some(format) = ffmpeg::fallback_format(head) {
            return self.run_ffmpeg(path, format, sink, out);
        }
        let opened = open_mapped(source, path, true)?;
        self.run_symphonia(opened, path, sink, out)
    }

    fn run_ffmpeg(
        &mut self,
        path: &Path,
        format: &str,
        sink: &mut dyn ChunkSink,
        out: Output,
    ) -> Result<DecodeSummary, DecodeError> {
        let mut pipe = ffmpeg::FfmpegPipe::open(path, format)?;
        let decoded = self.run_planar(&mut pipe, sink, out);
        match (decoded, pipe.finish()) {
            // ffmpeg's own complaint says more than "no samples".
            (Err(DecodeError::Empty(_)), Err(e)) => Err(e),
            (Ok(mut summary), Ok(used)) => {
                summary.helper = used;
                Ok(summary)
            }
            (decoded, _) => decoded,
        }
    }

    /// Decodes a [`PlanarSource`] to its end, feeding `sink` as symphonia's packets do.
    fn run_planar(
        &mut self,
        source: &mut dyn PlanarSource,
        sink: &mut dyn ChunkSink,
        out: Output,
    ) -> Result<DecodeSummary, DecodeError> {
        let info = source.info().clone();
        if info.channels == 0 || info.channels > MAX_CHANNELS {
            return Err(DecodeError::Channels(info.channels));
        }
        if !(4_000..=768_000).contains(&info.sample_rate) {
            return Err(DecodeError::SampleRate(info.sample_rate));
        }
        self.resampler.configure(info.sample_rate);
        sink.begin(&info);
        let mut planes = std::mem::take(&mut self.planes);
        let mut frames = 0u64;
        let result = loop {
            if sink.done() {
                break Ok(());
            }
            match source.next_packet(&mut planes) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let skip = (out.from().saturating_sub(frames) as usize).min(n);
                    if out != Output::Nothing && skip < n {
                        let mut refs: heapless::Vec<&[f32], MAX_CHANNELS> = heapless::Vec::new();
                        for p in planes.iter().take(info.channels) {
                            let _ = refs.push(&p[skip..n]);
                        }
                        self.emit(&refs, &info, sink, out);
                    }
                    frames += n as u64;
                }
                Err(e) => break Err(e),
            }
        };
        self.planes = planes;
        result?;
        if frames == 0 {
            return Err(DecodeError::Empty("the stream holds no samples".into()));
        }
        Ok(DecodeSummary {
            info,
            frames,
            skipped_packets: 0,
            tags: source.tags(),
            helper: ffmpeg::HelperUse::default(),
        })
    }

    fn run_symphonia(
        &mut self,
        opened: Opened,
        path: &Path,
        sink: &mut dyn ChunkSink,
        out: Output,
    ) -> Result<DecodeSummary, DecodeError> {
        let Opened {
            mut probed,
            id3v1,
            id3v1_len,
            side,
        } = opened;
        let mut format = probed.format;

        let track = format
            .tracks()
            .iter()
            .find(|t| {
                t.codec_params.codec != CODEC_TYPE_NULL && t.codec_params.sample_rate.is_some()
            })
            .or_else(|| {
                format
                    .tracks()
                    .iter()
                    .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            })
            .ok_or(DecodeError::NoTrack)?;
        let track_id = track.id;
        let mut params = track.codec_params.clone();
        if let Some(cookie) = params.extra_data.as_deref().and_then(caf_alac_cookie) {
            params.extra_data = Some(cookie);
        }
        let codec = codec_name(params.codec);
        let Ok(mut decoder) = codecs().make(&params, &DecoderOptions::default()) else {
            // A container symphonia reads holding a codec it does not (AC-3 in Matroska, ...).
            drop(format);
            return self.run_ffmpeg(path, &codec, sink, out);
        };

        let mut tags = Tags::default();
        if let Some(rev) = probed.metadata.get().as_ref().and_then(|m| m.current()) {
            tags.merge_revision(rev);
        }
        if let Some(rev) = format.metadata().current() {
            tags.merge_revision(rev);
        }
        if let Some((text, id3)) = side {
            if let Some(rev) = id3 {
                tags.merge_revision(&rev);
            }
            tags.merge_missing(text);
        }
        if id3v1_len == 128 {
            tags.merge_id3v1(&id3v1);
        }

        let mut summary = DecodeSummary {
            tags,
            ..Default::default()
        };
        // Where the next decoded frame lies in the stream: 0, or where a seek landed.
        let mut position = 0u64;
        let from = out.from();
        let frame_ticks = params
            .sample_rate
            .zip(params.time_base)
            .filter(|(rate, tb)| tb.numer == 1 && tb.denom == *rate);
        if from > 0 && frame_ticks.is_some() {
            let to = SeekTo::TimeStamp { ts: from, track_id };
            if let Ok(landed) = format.seek(SeekMode::Accurate, to) {
                position = landed.actual_ts.min(from);
                decoder.reset();
            }
        }
        let mut started = false;
        let mut consecutive_errors = 0u32;
        let mut last_error = String::new();
        loop {
            if sink.done() {
                break;
            }
            let packet = match format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(SymError::IoError(e)) => return Err(DecodeError::Read(e)),
                Err(SymError::ResetRequired) => break,
                Err(e) => {
                    // A demuxer that cannot parse what follows: keep what was decoded if any.
                    last_error = one_line(&e);
                    break;
                }
            };
            if packet.track_id() != track_id {
                continue;
            }
            let decoded = match decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::DecodeError(msg)) => {
                    summary.skipped_packets += 1;
                    consecutive_errors += 1;
                    last_error = msg.to_string();
                    if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                        return Err(DecodeError::Corrupt(consecutive_errors, last_error));
                    }
                    continue;
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(SymError::IoError(e)) => return Err(DecodeError::Read(e)),
                Err(SymError::ResetRequired) => break,
                // A decoder that gives up mid-stream: keep what it decoded, like a demuxer error.
                Err(e) if started => {
                    last_error = one_line(&e);
                    break;
                }
                Err(e) => return Err(DecodeError::Codec(format!("{codec}: {}", one_line(&e)))),
            };
            consecutive_errors = 0;
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let spec = *decoded.spec();
            if !started {
                let channels = spec.channels.count();
                if channels == 0 || channels > MAX_CHANNELS {
                    return Err(DecodeError::Channels(channels));
                }
                if !(4_000..=768_000).contains(&spec.rate) {
                    return Err(DecodeError::SampleRate(spec.rate));
                }
                summary.info = StreamInfo {
                    sample_rate: spec.rate,
                    channels,
                    codec: codec.clone(),
                    layout: layout_of(spec.channels),
                };
                self.resampler.configure(spec.rate);
                sink.begin(&summary.info);
                started = true;
            } else if spec.rate != summary.info.sample_rate
                || spec.channels.count() != summary.info.channels
            {
                // A chained stream that changes format mid-way: analyse the first part only.
                break;
            }
            let skip = (from.saturating_sub(position) as usize).min(frames);
            if out != Output::Nothing && skip < frames {
                self.feed(&decoded, &summary.info, sink, skip, out);
            }
            summary.frames += frames as u64;
            position += frames as u64;
        }
        if !started {
            let why = if last_error.is_empty() {
                "the stream holds no samples".to_string()
            } else {
                last_error
            };
            return Err(DecodeError::Empty(why));
        }
        Ok(summary)
    }

    /// Hands the packet's frames from `skip` on to the sink as `out` asks.
    fn feed(
        &mut self,
        decoded: &AudioBufferRef<'_>,
        info: &StreamInfo,
        sink: &mut dyn ChunkSink,
        skip: usize,
        out: Output,
    ) {
        let channels = info.channels;
        match decoded {
            AudioBufferRef::F32(buf) => {
                // The common case (MP3, AAC, Vorbis): no conversion, borrow the decoder's planes.
                let mut planes: heapless::Vec<&[f32], MAX_CHANNELS> = heapless::Vec::new();
                for c in 0..channels {
                    let _ = planes.push(&buf.chan(c)[skip..]);
                }
                self.emit(&planes, info, sink, out);
                return;
            }
            AudioBufferRef::U8(b) => convert(b, &mut self.planes),
            AudioBufferRef::U16(b) => convert(b, &mut self.planes),
            AudioBufferRef::U24(b) => convert(b, &mut self.planes),
            AudioBufferRef::U32(b) => convert(b, &mut self.planes),
            AudioBufferRef::S8(b) => convert(b, &mut self.planes),
            AudioBufferRef::S16(b) => convert(b, &mut self.planes),
            AudioBufferRef::S24(b) => convert(b, &mut self.planes),
            AudioBufferRef::S32(b) => convert(b, &mut self.planes),
            AudioBufferRef::F64(b) => convert(b, &mut self.planes),
        }
        let planes = std::mem::take(&mut self.planes);
        {
            let mut refs: heapless::Vec<&[f32], MAX_CHANNELS> = heapless::Vec::new();
            for p in planes.iter().take(channels) {
                let _ = refs.push(&p[skip..]);
            }
            self.emit(&refs, info, sink, out);
        }
        self.planes = planes;
    }

    fn emit(
        &mut self,
        planes: &[&[f32]],
        info: &StreamInfo,
        sink: &mut dyn ChunkSink,
        out: Output,
    ) {
        if out != Output::Analysis {
            sink.chunk(planes, &[]);
            return;
        }
        downmix(planes, &info.layout, &mut self.mono);
        self.resampled.clear();
        self.resampler.process(&self.mono, &mut self.resampled);
        sink.chunk(planes, &self.resampled);
    }
}

/// Converts any sample type to f32 planes in reused buffers.
fn convert<S>(buf: &AudioBuffer<S>, planes: &mut [Vec<f32>])
where
    S: Sample + IntoSample<f32>,
{
    let channels = buf.spec().channels.count().min(planes.len());
    for (c, plane) in planes.iter_mut().enumerate().take(channels) {
        plane.clear();
        plane.extend(buf.chan(c).iter().map(|&s| s.into_sample()));
    }
}

/// Mono = mean of the non-LFE channels (all channels if that would leave none).
fn downmix(planes: &[&[f32]], layout: &[Speaker], mono: &mut Vec<f32>) {
    mono.clear();
    let Some(first) = planes.first() else { return };
    let n = first.len();
    if planes.len() == 1 {
        mono.extend_from_slice(first);
        return;
    }
    if planes.len() == 2 {
        let (l, r) = (planes[0], &planes[1][..n]);
        mono.extend(l.iter().zip(r).map(|(a, b)| 0.5 * (a + b)));
        return;
    }
    let used: heapless::Vec<&[f32], MAX_CHANNELS> = planes
        .iter()
        .zip(layout)
        .filter(|(_, s)| **s != Speaker::Lfe)
        .map(|(p, _)| *p)
        .collect();
    let used: &[&[f32]] = if used.is_empty() { planes } else { &used };
    let scale = 1.0 / used.len() as f32;
    mono.resize(n, 0.0);
    for plane in used {
        for (m, s) in mono.iter_mut().zip(plane.iter()) {
            *m += s;
        }
    }
    for m in mono.iter_mut() {
        *m *= scale;
    }
}

fn layout_of(channels: Channels) -> heapless::Vec<Speaker, MAX_CHANNELS> {
    let mut out = heapless::Vec::new();
    for ch in channels.iter() {
        let speaker = if ch == Channels::LFE1 || ch == Channels::LFE2 {
            Speaker::Lfe
        } else if ch == Channels::REAR_LEFT
            || ch == Channels::REAR_RIGHT
            || ch == Channels::SIDE_LEFT
            || ch == Channels::SIDE_RIGHT
            || ch == Channels::REAR_CENTRE
        {
            Speaker::Surround
        } else {
            Speaker::Front
        };
        let _ = out.push(speaker);
    }
    out
}

/// The ALAC configuration inside a CAF file's magic cookie. Apple's CAF wraps it in atoms
/// (`frma`, then `alac` with a version and flags, then a terminator) where MP4 holds it bare,
/// and symphonia's CAF reader hands the wrapped form to an ALAC decoder that wants the bare
/// one (24 bytes, or 48 with a channel layout). `None` when the cookie is not wrapped.
fn caf_alac_cookie(extra: &[u8]) -> Option<Box<[u8]>> {
    if extra.get(4..8)? != b"frma" {
        return None;
    }
    let frma = u32::from_be_bytes(extra.get(..4)?.try_into().ok()?) as usize;
    let atom = extra.get(frma..)?;
    if atom.get(4..8)? != b"alac" {
        return None;
    }
    let size = u32::from_be_bytes(atom.get(..4)?.try_into().ok()?) as usize;
    // size, type, version and flags, then the configuration.
    let config = atom.get(12..size.min(atom.len()))?;
    matches!(config.len(), 24 | 48).then(|| config.into())
}

/// Symphonia's own decoders and libopus (symphonia has no Opus decoder of its own).
fn codecs() -> &'static CodecRegistry {
    static REGISTRY: std::sync::OnceLock<CodecRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_all::<symphonia_adapter_libopus::OpusDecoder>();
        registry
    })
}

fn codec_name(codec: symphonia::core::codecs::CodecType) -> String {
    if let Some(desc) = codecs().get_codec(codec) {
        return desc.short_name.to_string();
    }
    symphonia_codec_name(codec)
}

/// Names for the codecs symphonia knows of but cannot decode (ffmpeg decodes them).
fn symphonia_codec_name(codec: symphonia::core::codecs::CodecType) -> String {
    use symphonia::core::codecs as c;
    let name = match codec {
        c::CODEC_TYPE_EAC3 => "AC-3",
        c::CODEC_TYPE_DCA => "DTS",
        c::CODEC_TYPE_WAVPACK => "WavPack",
        c::CODEC_TYPE_MONKEYS_AUDIO => "Monkey's Audio",
        c::CODEC_TYPE_MUSEPACK => "Musepack",
        c::CODEC_TYPE_TTA => "TTA",
        c::CODEC_TYPE_WMA => "WMA",
        c::CODEC_TYPE_SPEEX => "Speex",
        c::CODEC_TYPE_ATRAC3 | c::CODEC_TYPE_ATRAC3PLUS => "ATRAC3",
        _ => return format!("{codec}"),
    };
    name.to_string()
}

/// Errors from decoders can carry newlines; a failure reason is always one line.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
