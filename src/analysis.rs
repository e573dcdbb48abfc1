//! One track in, one analysis out: ties [`crate::audio`] decoding to [`crate::features`].
//!
//! In: a path. Out: an [`Analysis`] (stream facts, features, tags) or an [`AnalysisError`] that
//! says in one line why this file could not be measured. A panic anywhere in decoding or
//! measuring is caught here and reported as that file's error; the [`Analyzer`] then rebuilds
//! its buffers, so one hostile file never takes down a worker.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::audio::{ChunkSink, DecodeError, Decoder, StreamInfo};
use crate::features::{FeatureExtractor, Features};
use crate::metadata::tags::Tags;

#[derive(Debug, Clone)]
pub struct Analysis {
    pub info: StreamInfo,
    pub features: Features,
    pub tags: Tags,
    /// Malformed packets skipped on the way (the rest of the file was still measured).
    pub skipped_packets: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("internal error while analysing: {0}")]
    Panic(String),
}

/// Bumped whenever a change to decoding or features changes what is measured: stored rows
/// from an older version are analysed again.
pub const ANALYSIS_VERSION: i64 = 1;

impl AnalysisError {
    /// The class of failure, for counting and for deciding whether a retry can help:
    /// `io` (could not read), `unsupported` (not audio we decode), `corrupt` (damaged audio),
    /// `crash` (a bug met on the way).
    pub fn kind(&self) -> &'static str {
        match self {
            AnalysisError::Decode(DecodeError::Open(_) | DecodeError::Read(_)) => "io",
            AnalysisError::Decode(DecodeError::Empty(_) | DecodeError::Corrupt(..)) => "corrupt",
            AnalysisError::Decode(_) => "unsupported",
            AnalysisError::Panic(_) => "crash",
        }
    }
}

/// A worker's analysis engine: every buffer is allocated here once and reused per track.
pub struct Analyzer {
    decoder: Decoder,
    extractor: FeatureExtractor,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

struct Feed<'a>(&'a mut FeatureExtractor);

impl ChunkSink for Feed<'_> {
    fn begin(&mut self, info: &StreamInfo) {
        self.0.begin(info.sample_rate, &info.layout);
    }

    fn chunk(&mut self, planes: &[&[f32]], mono: &[f32]) {
        self.0.push(planes, mono);
    }
}

impl Analyzer {
    pub fn new() -> Self {
        Analyzer {
            decoder: Decoder::new(),
            extractor: FeatureExtractor::new(),
        }
    }

    /// Decodes and measures one file.
    pub fn analyze(&mut self, path: &Path) -> Result<Analysis, AnalysisError> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let summary = self.decoder.decode(path, &mut Feed(&mut self.extractor))?;
            let features = self.extractor.finish(summary.duration_s());
            Ok(Analysis {
                info: summary.info,
                features,
                tags: summary.tags,
                skipped_packets: summary.skipped_packets,
            })
        }));
        match result {
            Ok(r) => r,
            Err(payload) => {
                // Buffers may be half-updated: start clean.
                *self = Analyzer::new();
                Err(AnalysisError::Panic(panic_message(&payload)))
            }
        }
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
                *self = Analyzer::new();
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
