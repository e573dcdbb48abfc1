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

use crate::audio::{ChunkSink, DecodeError, Decoder, StreamInfo};
use crate::embedding::{Coverage, Embedder, ModelError};
use crate::features::{FeatureExtractor, Record};

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

#[derive(Debug, Clone)]
pub struct Analysis {
    pub info: StreamInfo,
    /// Everything measured, with the stream facts and tags; in full mode the embedding too
    /// (`None` for a track too short for one mel frame).
    pub record: Record,
    /// Malformed packets skipped on the way (the rest of the file was still measured).
    pub skipped_packets: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("internal error while analysing: {0}")]
    Panic(String),
    #[error(transparent)]
    Embedding(#[from] ModelError),
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

impl Analyzer {
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
            };
            let summary = self.decoder.decode(path, &mut feed)?;
            let mut record = self.extractor.finish(summary.duration_s());
            if let Some(e) = match &mut self.embedder {
                Some(e) => e.finish()?,
                None => None,
            } {
                record.embedding = Some(e.mean.to_vec());
                record.musicnn_tags = Some(e.tags.to_vec());
            }
            record.sample_rate = summary.info.sample_rate;
            record.channels = summary.info.channels as u32;
            record.codec = summary.info.codec.clone();
            record.tags = summary.tags;
            Ok(Analysis {
                info: summary.info,
                record,
                skipped_packets: summary.skipped_packets,
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

    /// Decodes only (no down-mix, no features): the floor that analysis speed is judged by.
    pub fn decode_only(&mut self, path: &Path) -> Result<u64, AnalysisError> {
        struct Discard;
        impl ChunkSink for Discard {
            fn begin(&mut self, _: &StreamInfo) {}
            fn chunk(&mut self, _: &[&[f32]], _: &[f32]) {}
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.decoder.decode_raw(path, &mut Discard)
        }));
        match result {
            Ok(r) => Ok(r?.frames),
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
