//! The fast-mode descriptors, computed as streaming accumulators.
//!
//! In: decoded audio, one chunk at a time: native-rate planes (for loudness) and the mono
//! down-mix at [`crate::audio::ANALYSIS_RATE`] (for everything else). Out: [`Features`].
//! Knows nothing of files or storage.
//!
//! Layout:
//! - [`stft`]: framing and power spectra (microfft), shared by the spectral descriptors;
//! - [`rhythm`]: onset envelope, BPM + confidence, onset rate;
//! - [`key`]: chroma and key profiles;
//! - [`loudness`]: EBU R128 integrated loudness and RMS;
//! - [`danceability`]: detrended fluctuation analysis;
//! - [`spectral`]: spectral centroid and zero-crossing rate.
//!
//! One [`FeatureExtractor`] per worker owns every buffer and is reset, not rebuilt, per file.

pub mod danceability;
pub mod key;
pub mod loudness;
pub mod rhythm;
pub mod spectral;
pub mod stft;

use serde::Serialize;

use crate::audio::{Speaker, ANALYSIS_RATE};

/// Bumped whenever a change alters any stored value, so that stored rows re-analyse lazily.
pub const ANALYSIS_VERSION: u32 = 1;

/// The fast-mode measurements of one track. `None` means "not meaningful for this audio"
/// (silence has no tempo, a one-second clip no key), never "failed".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Features {
    pub duration_s: f64,
    pub bpm: Option<f64>,
    /// Periodicity of the onset envelope at the beat period, 0..1.
    pub bpm_confidence: Option<f64>,
    /// `C C# D Eb E F F# G Ab A Bb B`.
    pub key: Option<&'static str>,
    /// `major` or `minor`.
    pub scale: Option<&'static str>,
    /// Correlation with the best key profile, -1..1.
    pub key_strength: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub loudness_rms_db: Option<f64>,
    /// 0..~3, Essentia's scale.
    pub danceability: Option<f64>,
    /// Onsets per second.
    pub onset_rate: Option<f64>,
    /// Sign changes per sample at 22.05 kHz.
    pub zcr: Option<f64>,
    pub spectral_centroid: Option<f64>,
}

/// Every accumulator for one track; reused across tracks.
pub struct FeatureExtractor {
    framer: stft::Framer,
    spectrum: stft::PowerSpectrum,
    rhythm: rhythm::Rhythm,
    spectral: spectral::Spectral,
    key: key::KeyDetector,
    danceability: danceability::Danceability,
    loudness: loudness::LoudnessMeter,
    analysis_samples: u64,
}

impl Default for FeatureExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureExtractor {
    pub fn new() -> Self {
        FeatureExtractor {
            framer: stft::Framer::new(rhythm::FRAME, rhythm::HOP),
            spectrum: stft::PowerSpectrum::new(rhythm::FRAME),
            rhythm: rhythm::Rhythm::new(ANALYSIS_RATE),
            spectral: spectral::Spectral::new(ANALYSIS_RATE, rhythm::FRAME),
            key: key::KeyDetector::new(),
            danceability: danceability::Danceability::new(ANALYSIS_RATE),
            loudness: loudness::LoudnessMeter::new(),
            analysis_samples: 0,
        }
    }

    /// Starts a new track whose source has this rate and channel layout.
    pub fn begin(&mut self, source_rate: u32, layout: &[Speaker]) {
        self.framer.reset();
        self.rhythm.reset();
        self.spectral.reset();
        self.key.reset();
        self.danceability.reset();
        self.loudness.begin(source_rate, layout);
        self.analysis_samples = 0;
    }

    /// Feeds one decoded chunk: `planes` at the source rate, `mono` at the analysis rate.
    pub fn push(&mut self, planes: &[&[f32]], mono: &[f32]) {
        self.loudness.push(planes);
        self.push_mono(mono);
    }

    fn push_mono(&mut self, mono: &[f32]) {
        self.analysis_samples += mono.len() as u64;
        let Self {
            framer,
            spectrum,
            rhythm,
            spectral,
            ..
        } = self;
        framer.push(mono, |frame| {
            let power = spectrum.compute(frame);
            rhythm.push(power);
            spectral.push_spectrum(power);
        });
        self.spectral.push_samples(mono);
        self.key.push(mono);
        self.danceability.push(mono);
    }

    /// Ends the track. `duration_s` is the decoded length at the source rate.
    pub fn finish(&mut self, duration_s: f64) -> Features {
        let silent = self.loudness.rms_db().is_none();
        let rhythm = self.rhythm.finish(
            duration_s,
            self.key.novelty(),
            key::KeyDetector::frame_rate(),
        );
        let key = if silent {
            None
        } else {
            self.key.finish(duration_s)
        };
        Features {
            duration_s,
            bpm: rhythm.bpm.filter(|_| !silent),
            bpm_confidence: rhythm.confidence.filter(|_| !silent),
            key: key.map(|k| k.name()),
            scale: key.map(|k| if k.minor { "minor" } else { "major" }),
            key_strength: key.map(|k| k.strength),
            loudness_lufs: self.loudness.integrated_lufs(),
            loudness_rms_db: self.loudness.rms_db(),
            danceability: if silent {
                None
            } else {
                self.danceability.finish()
            },
            onset_rate: rhythm.onset_rate,
            zcr: self.spectral.zcr(),
            spectral_centroid: self.spectral.centroid_hz(),
        }
    }
}
