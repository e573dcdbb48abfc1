//! One track in, one analysis out: ties [`crate::audio`] decoding to [`crate::features`] and,
//! in full mode, to the [`crate::embedding`] network, all fed from one decode.
//!
//! In: a path. Out: an [`Analysis`] (the stream's facts and the filled [`Record`]) or an
//! [`AnalysisError`] that says in one line why this file could not be measured. A panic anywhere in decoding or
//! measuring is caught here and reported as that file's error; the [`Analyzer`] then rebuilds
//! its buffers, so one hostile file never takes down a worker.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::audio::ffmpeg::HelperUse;
use crate::audio::{ChunkSink, DecodeError, Decoder, StreamInfo};
use crate::cue::{CueError, Sheet};
use crate::embedding::{Coverage, Embedder, ModelError};
use crate::features::{FeatureExtractor, Record};
use crate::tags::Tags;

/// What an [`Analyzer`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The original's `--fast_mode` set: tempo, key, loudness, danceability, spectral basics.
    #[default]
    Fast,
    /// Fast plus timbre (MFCC, chroma, contrast, flatness, rolloff) and the MusiCNN embedding.
    Full(Coverage),
}

impl std::fmt::Display for Mode {
    /// `fast`, `full:N` (at most N patches) or `full:all`: how a worker process is told.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Fast => write!(f, "fast"),
            Mode::Full(Coverage::Sampled(n)) => write!(f, "full:{n}"),
            Mode::Full(Coverage::Full) => write!(f, "full:all"),
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            None if text == "fast" => Ok(Mode::Fast),
            Some(("full", "all")) => Ok(Mode::Full(Coverage::Full)),
            Some(("full", n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Mode::Full(Coverage::Sampled(n))),
                _ => Err(format!("not an analysis mode: {text:?}")),
            },
            _ => Err(format!("not an analysis mode: {text:?}")),
        }
    }
}

impl Mode {
    /// As stored in `features.mode` and `runs.mode`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fast => "fast",
            Mode::Full(_) => "full",
        }
    }
}

/// What one analysis measures: everything its [`Mode`] measures, or only what full mode adds
/// to a track already measured in fast mode (the full tier of `--tiers` and of `serve`):
/// timbre and the embedding, the fast features neither computed again nor returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Everything,
    FullAdds,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub info: StreamInfo,
    /// Everything measured, with the stream facts and tags; in full mode the embedding too
    /// (`None` for a track too short for one mel frame).
    pub record: Record,
    /// Malformed packets skipped on the way (the rest of the file was still measured).
    pub skipped_packets: u32,
    /// What the ffmpeg helpers used, when the file needed them (their CPU and memory count
    /// against the file like the worker's own).
    pub helper: HelperUse,
    /// Patches the network ran on (0 in fast mode).
    pub patches: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("internal error while analysing: {0}")]
    Panic(String),
    #[error(transparent)]
    Embedding(#[from] ModelError),
    /// A single-file album's sheet that cannot be followed (the album fails, not the run).
    #[error(transparent)]
    Sheet(#[from] CueError),
}

/// Why a file could not be measured, by class: for counting, for `Failed_Files.m3u` and for
/// deciding whether a retry can help. Stored in `tracks.fail_kind` by its [`FailKind::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailKind {
    /// Could not be read.
    Io,
    /// Not audio we decode.
    Unsupported,
    /// Damaged audio.
    Corrupt,
    /// A bug met on the way, or a worker that died.
    Crash,
    /// Over the file's time limit.
    Timeout,
    /// A stored kind this playlista does not know (or none).
    Unknown,
}

impl FailKind {
    pub const ALL: [FailKind; 6] = [
        FailKind::Io,
        FailKind::Unsupported,
        FailKind::Corrupt,
        FailKind::Crash,
        FailKind::Timeout,
        FailKind::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FailKind::Io => "io",
            FailKind::Unsupported => "unsupported",
            FailKind::Corrupt => "corrupt",
            FailKind::Crash => "crash",
            FailKind::Timeout => "timeout",
            FailKind::Unknown => "unknown",
        }
    }

    /// The kind named `name`; [`FailKind::Unknown`] for any other text.
    pub fn from_name(name: &str) -> FailKind {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or(FailKind::Unknown)
    }
}

impl std::fmt::Display for FailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AnalysisError {
    /// The class of failure, for counting and for deciding whether a retry can help.
    pub fn kind(&self) -> FailKind {
        match self {
            AnalysisError::Decode(DecodeError::Open(_) | DecodeError::Read(_)) => FailKind::Io,
            AnalysisError::Decode(DecodeError::Empty(_) | DecodeError::Corrupt(..)) => {
                FailKind::Corrupt
            }
            AnalysisError::Decode(_) => FailKind::Unsupported,
            AnalysisError::Panic(_) | AnalysisError::Embedding(_) => FailKind::Crash,
            AnalysisError::Sheet(_) => FailKind::Corrupt,
        }
    }
}

/// A worker's analysis engine: every buffer is allocated here once and reused per track (in
/// full mode that includes the network, loaded once).
pub struct Analyzer {
    decoder: Decoder,
    extractor: FeatureExtractor,
    embedder: Option<Embedder>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

struct Feed<'a> {
    extractor: &'a mut FeatureExtractor,
    embedder: Option<&'a mut Embedder>,
    /// Patches the network ran on for the last finished track.
    patches: u32,
}

impl ChunkSink for Feed<'_> {
    fn begin(&mut self, info: &StreamInfo) {
        self.extractor.begin(info.sample_rate, &info.layout);
        if let Some(e) = self.embedder.as_deref_mut() {
            e.begin();
        }
    }

    fn chunk(&mut self, planes: &[&[f32]], mono: &[f32]) {
        self.extractor.push(planes, mono);
        if let Some(e) = self.embedder.as_deref_mut() {
            e.push(mono);
        }
    }
}

impl Feed<'_> {
    /// The measurements of the track fed since `begin`.
    fn finish(&mut self, duration_s: f64, info: &StreamInfo) -> Result<Record, ModelError> {
        let mut record = self.extractor.finish(duration_s);
        if let Some(e) = match self.embedder.as_deref_mut() {
            Some(e) => e.finish()?,
            None => None,
        } {
            record.embedding = Some(e.mean.to_vec());
            record.musicnn_tags = Some(e.tags.to_vec());
            self.patches = e.patches;
        }
        record.sample_rate = info.sample_rate;
        record.channels = info.channels as u32;
        record.codec = info.codec.clone();
        Ok(record)
    }
}

/// One track of a single-file album, measured on its own span of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub number: u32,
    /// Where it lies in the file, in seconds.
    pub start_s: f64,
    pub end_s: f64,
    /// Its measurements, with the file's tags overlaid by the sheet's.
    pub record: Record,
}

/// A single-file album, measured track by track in one decoding pass.
#[derive(Debug, Clone)]
pub struct AlbumAnalysis {
    pub parts: Vec<Part>,
    pub skipped_packets: u32,
    pub helper: HelperUse,
}

/// The sink of an album's decode: routes each stretch of samples to the track whose span
/// holds it, finishing one track's measurements where the next begins (one track's state
/// is alive at a time, as for a single file). Audio before the first track (a hidden
/// pregap) is not measured.
struct Split<'a> {
    feed: Feed<'a>,
    sheet: &'a Sheet,
    info: StreamInfo,
    /// Each track's first frame at the stream's rate, filled at `begin`.
    starts: Vec<u64>,
    /// Frames seen so far.
    pos: u64,
    /// The track being fed (index into the sheet) and where it started.
    current: Option<(usize, u64)>,
    /// The index of the next track to start.
    next: usize,
    parts: Vec<Part>,
    error: Option<ModelError>,
}

impl Split<'_> {
    fn close(&mut self, at: u64) {
        let Some((i, start)) = self.current.take() else {
            return;
        };
        let rate = self.info.sample_rate.max(1) as f64;
        let duration_s = (at - start) as f64 / rate;
        match self.feed.finish(duration_s, &self.info) {
            Ok(record) => self.parts.push(Part {
                number: self.sheet.tracks[i].number,
                start_s: start as f64 / rate,
                end_s: at as f64 / rate,
                record,
            }),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

impl ChunkSink for Split<'_> {
    fn begin(&mut self, info: &StreamInfo) {
        self.info = info.clone();
        self.starts = self
            .sheet
            .tracks
            .iter()
            .map(|t| t.start.frame_at(info.sample_rate))
            .collect();
    }

    fn chunk(&mut self, planes: &[&[f32]], mono: &[f32]) {
        let n = planes.first().map_or(0, |p| p.len());
        let mut off = 0;
        while off < n {
            let at = self.pos + off as u64;
            if let Some(&start) = self.starts.get(self.next).filter(|&&s| s <= at) {
                self.close(at);
                self.feed.begin(&self.info);
                self.current = Some((self.next, start.max(at)));
                self.next += 1;
                continue;
            }
            let stop = match self.starts.get(self.next) {
                Some(&start) => off + ((start - at) as usize).min(n - off),
                None => n,
            };
            if self.current.is_some() {
                // The down-mix runs at the analysis rate: cut it at the same instants.
                let (m0, m1) = (off * mono.len() / n, stop * mono.len() / n);
                let mut part: heapless::Vec<&[f32], { crate::audio::MAX_CHANNELS }> =
                    heapless::Vec::new();
                for p in planes {
                    let _ = part.push(&p[off..stop]);
                }
                self.feed.chunk(&part, &mono[m0..m1]);
            }
            off = stop;
        }
        self.pos += n as u64;
    }
}

impl Analyzer {
    /// Decodes a single-file album once and measures each of `sheet`'s tracks on its own span.
    /// A sheet whose tracks do not fit the audio (one starting past its end) fails the album.
    pub fn analyze_album(
        &mut self,
        path: &Path,
        sheet: &Sheet,
    ) -> Result<AlbumAnalysis, AnalysisError> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut split = Split {
                feed: Feed {
                    extractor: &mut self.extractor,
                    embedder: self.embedder.as_mut(),
                    patches: 0,
                },
                sheet,
                info: StreamInfo::default(),
                starts: Vec::new(),
                pos: 0,
                current: None,
                next: 0,
                parts: Vec::with_capacity(sheet.tracks.len()),
                error: None,
            };
            let summary = self.decoder.decode(path, &mut split)?;
            // Checks every start against the decoded length (a track past the end fails).
            sheet.spans(summary.info.sample_rate, Some(summary.frames))?;
            split.close(summary.frames);
            if let Some(e) = split.error {
                return Err(e.into());
            }
            let mut parts = split.parts;
            for part in &mut parts {
                part.record.tags = part_tags(&summary.tags, sheet, part.number);
            }
            Ok(AlbumAnalysis {
                parts,
                skipped_packets: summary.skipped_packets,
                helper: summary.helper,
            })
        }));
        match result {
            Ok(r) => r,
            Err(payload) => {
                self.reset();
                Err(AnalysisError::Panic(panic_message(&payload)))
            }
        }
    }

    /// Fast mode.
    pub fn new() -> Self {
        Analyzer {
            decoder: Decoder::new(),
            extractor: FeatureExtractor::new(),
            embedder: None,
        }
    }

    /// Fast or full mode; full mode loads the network (tens of milliseconds: once per worker).
    pub fn with_mode(mode: Mode) -> Result<Self, ModelError> {
        let embedder = match mode {
            Mode::Fast => None,
            Mode::Full(coverage) => Some(Embedder::new(coverage)?),
        };
        Ok(Analyzer {
            decoder: Decoder::new(),
            extractor: FeatureExtractor::with_mode(embedder.is_some()),
            embedder,
        })
    }

    /// Decodes and measures one file.
    pub fn analyze(&mut self, path: &Path) -> Result<Analysis, AnalysisError> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut feed = Feed {
                extractor: &mut self.extractor,
                embedder: self.embedder.as_mut(),
                patches: 0,
            };
            let summary = self.decoder.decode(path, &mut feed)?;
            let mut record = feed.finish(summary.duration_s(), &summary.info)?;
            record.tags = summary.tags;
            Ok(Analysis {
                info: summary.info,
                record,
                patches: feed.patches,
                skipped_packets: summary.skipped_packets,
                helper: summary.helper,
            })
        }));
        match result {
            Ok(r) => r,
            Err(payload) => {
                // Buffers may be half-updated: start clean. The network itself is read-only
                // and the embedder resets its buffers at the next track.
                self.reset();
                Err(AnalysisError::Panic(panic_message(&payload)))
            }
        }
    }

    fn reset(&mut self) {
        self.decoder = Decoder::new();
        self.extractor = FeatureExtractor::with_mode(self.embedder.is_some());
    }

    /// What the next analyses measure; [`Scope::FullAdds`] needs a full-mode analyzer (a
    /// fast one measures everything of fast mode, as there is nothing to add).
    pub fn set_scope(&mut self, scope: Scope) {
        self.extractor.set_adds_only(scope == Scope::FullAdds);
    }

    /// Decodes only (no down-mix, no features): the floor that analysis speed is judged by.
    /// Returns the frames decoded and what ffmpeg helpers used, if the file needed them.
    pub fn decode_only(&mut self, path: &Path) -> Result<(u64, HelperUse), AnalysisError> {
        struct Discard;
        impl ChunkSink for Discard {
            fn begin(&mut self, _: &StreamInfo) {}
            fn chunk(&mut self, _: &[&[f32]], _: &[f32]) {}
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.decoder.decode_raw(path, &mut Discard)
        }));
        match result {
            Ok(r) => r.map(|s| (s.frames, s.helper)).map_err(AnalysisError::from),
            Err(payload) => {
                self.reset();
                Err(AnalysisError::Panic(panic_message(&payload)))
            }
        }
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A track's tags: the sheet's for that track, then the sheet's album-wide ones, then the
/// file's (which describe the album as a whole).
fn part_tags(file: &Tags, sheet: &Sheet, number: u32) -> Tags {
    let track = sheet.tracks.iter().find(|t| t.number == number);
    let pick = |a: Option<&String>, b: &Option<String>| a.cloned().or_else(|| b.clone());
    let artist = track
        .and_then(|t| t.performer.as_ref())
        .or(sheet.performer.as_ref());
    Tags {
        title: track.and_then(|t| t.title.clone()),
        artist: pick(artist, &file.artist),
        album: pick(sheet.title.as_ref(), &file.album),
        album_artist: pick(sheet.performer.as_ref(), &file.album_artist),
        genre: pick(sheet.genre.as_ref(), &file.genre),
        year: sheet.year.or(file.year),
        track_number: Some(number),
        disc_number: sheet.disc.or(file.disc_number),
        musicbrainz_recording_id: None,
        isrc: track.and_then(|t| t.isrc.clone()),
    }
}

/// The CUE sheet that makes `path` a single-file album, if any: a `.cue` beside it that names
/// it ([`crate::cue::sheet_beside`]), else a CUESHEET block inside a FLAC file. A sheet with
/// one FILE per track describes files that are tracks already: none. A sheet that names this
/// file but cannot be followed is the album's error.
pub fn sheet_for(path: &Path) -> Result<Option<Sheet>, CueError> {
    if let Some(beside) = crate::cue::sheet_beside(path) {
        return match crate::cue::read_sheet(&beside, path) {
            Ok(sheet) => Ok(Some(sheet)),
            Err(CueError::MultipleFiles { .. }) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let is_flac = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("flac"));
    if !is_flac {
        return Ok(None);
    }
    // Reading the metadata blocks only; an unreadable file is the decoder's to report.
    let Ok(opened) = crate::audio::open(path, false) else {
        return Ok(None);
    };
    let format = &opened.probed.format;
    let rate = format
        .default_track()
        .and_then(|t| t.codec_params.sample_rate)
        .unwrap_or(0);
    crate::cue::from_flac_cues(format.cues(), rate)
}
