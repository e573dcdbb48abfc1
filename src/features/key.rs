//! Key: pitch-class profile (chroma) of the whole track matched against key profiles.
//!
//! In: mono samples at the analysis rate. They are resampled once more to ~5.5 kHz (harmony
//! lives below 2.5 kHz, and a 2048-point FFT there resolves 2.7 Hz, a third of a semitone at
//! the bottom of the bass), framed, and turned into a chroma vector per frame from the
//! spectral peaks, with each peak also credited to the fundamentals it may be a harmonic of.
//! Kept: twelve running sums, and one harmonic-change value per frame (how far the chroma moved
//! from the frame before), which the tempo estimate uses to find the bar. Out: tonic, mode and
//! strength (the profile correlation, -1..1); and, for full mode's chroma, twelve more sums of
//! the same peaks by their power, without the harmonic credit ([`KeyDetector::pitch_classes`]).
//! Power, as librosa's `chroma_stft` weighs bins: it agreed with librosa's argmax on 12 of 15
//! real tracks against 11 for magnitude (mean correlation 0.78 against 0.75), and the
//! harmonic-credited key chroma on 2 of 5.

use super::stft::{Framer, PowerSpectrum};
use crate::audio::resample::HalfBand;

/// The analysis rate divided by four, by two half-band stages.
const RATE: f64 = crate::audio::ANALYSIS_RATE as f64 / 4.0;
const FRAME: usize = 2048;
const HOP: usize = 2048;
const MIN_HZ: f64 = 50.0;
const MAX_HZ: f64 = 2_500.0;
/// Harmonics a peak is credited back to, with their weights (Essentia's HPCP does alike).
const HARMONICS: [f32; 4] = [1.0, 0.6, 0.36, 0.22];
/// Shortest audio that gets a key at all.
pub const MIN_SECONDS_FOR_KEY: f64 = 5.0;

pub const KEY_NAMES: [&str; 12] = [
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];

/// Albrecht & Shanahan's (2013) corpus-derived key profiles, tonic first. On generated
/// corpora of three seeds (120 clips) they found the exact key in 96.7 % against 83 % for
/// Krumhansl & Kessler's probe-tone ratings, whose flatter minor profile lost minor keys to
/// their parallel major.
const MAJOR: [f64; 12] = [
    0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081,
];
const MINOR: [f64; 12] = [
    0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052,
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyResult {
    /// 0 = C .. 11 = B.
    pub tonic: usize,
    pub minor: bool,
    pub strength: f64,
}

impl KeyResult {
    pub fn name(&self) -> &'static str {
        KEY_NAMES[self.tonic]
    }
}

pub struct KeyDetector {
    /// Two 2:1 half-band stages, analysis rate -> RATE.
    halve: [HalfBand; 2],
    halved: Vec<f32>,
    resampled: Vec<f32>,
    framer: Framer,
    spectrum: PowerSpectrum,
    /// Per FFT bin in range: (pitch class, weight of the nearest semitone).
    bin_pc: Vec<(u8, f32)>,
    first_bin: usize,
    chroma: [f64; 12],
    /// Per-frame max-normalised pitch classes of the peaks' power (no harmonic credit), summed.
    pitch_classes: [f64; 12],
    frame_chroma: [f32; 12],
    /// Each frame's chroma, unit length (zero for a silent frame).
    units: Vec<[f32; 12]>,
    /// 1 - cosine similarity of consecutive frames' chroma, one value per frame ...
    novelty: Vec<f32>,
    /// ... and the smaller chroma magnitude of the two frames compared.
    strength: Vec<f32>,
    prev_norm: f32,
}

impl Default for KeyDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyDetector {
    /// Takes samples at [`crate::audio::ANALYSIS_RATE`].
    pub fn new() -> Self {
        let first_bin = (MIN_HZ * FRAME as f64 / RATE).ceil() as usize;
        let last_bin = (MAX_HZ * FRAME as f64 / RATE).floor() as usize;
        let bin_pc = (first_bin..=last_bin)
            .map(|k| {
                let f = k as f64 * RATE / FRAME as f64;
                let midi = 69.0 + 12.0 * (f / 440.0).log2();
                let nearest = midi.round();
                let dist = (midi - nearest).abs(); // 0..0.5 semitone
                let w = (std::f64::consts::PI * dist).cos().powi(2);
                ((nearest as i64).rem_euclid(12) as u8, w as f32)
            })
            .collect();
        KeyDetector {
            halve: [HalfBand::new(), HalfBand::new()],
            halved: Vec::with_capacity(8192),
            resampled: Vec::with_capacity(8192),
            framer: Framer::new(FRAME, HOP),
            spectrum: PowerSpectrum::new(FRAME),
            bin_pc,
            first_bin,
            chroma: [0.0; 12],
            pitch_classes: [0.0; 12],
            frame_chroma: [0.0; 12],
            novelty: Vec::with_capacity(16 * 1024),
            strength: Vec::with_capacity(16 * 1024),
            prev_norm: 0.0,
            units: Vec::with_capacity(16 * 1024),
        }
    }

    pub fn reset(&mut self) {
        for stage in self.halve.iter_mut() {
            stage.reset();
        }
        self.framer.reset();
        self.chroma = [0.0; 12];
        self.pitch_classes = [0.0; 12];
        self.novelty.clear();
        self.strength.clear();
        self.prev_norm = 0.0;
        self.units.clear();
    }

    /// Each frame's chroma scaled to unit length (zeros for a silent frame), for the tempo's
    /// chord-change evidence.
    pub fn chroma_frames(&self) -> &[[f32; 12]] {
        &self.units
    }

    /// Frames per second of [`KeyDetector::chroma_frames`].
    pub fn frame_rate() -> f64 {
        RATE / HOP as f64
    }

    /// How much the harmony moves, on average per frame, counting each change in proportion
    /// to the pitched sound around it (against the track's mean): about 0.03-0.15 for music
    /// with chord changes, near 0 for drums alone, whose tails and gaps make changes of noise.
    pub fn harmonic_activity(&self) -> f64 {
        let voiced = self.strength.iter().filter(|&&e| e > 0.0);
        let (sum, count) = voiced.fold((0.0f64, 0usize), |(s, n), &e| (s + e as f64, n + 1));
        if count == 0 || self.novelty.is_empty() {
            return 0.0;
        }
        let mean = sum / count as f64;
        let weighted: f64 = self
            .novelty
            .iter()
            .zip(&self.strength)
            .map(|(&n, &e)| n as f64 * (e as f64 / mean).min(1.0))
            .sum();
        weighted / self.novelty.len() as f64
    }

    pub fn push(&mut self, samples: &[f32]) {
        self.halved.clear();
        self.halve[0].process(samples, &mut self.halved);
        self.resampled.clear();
        self.halve[1].process(&self.halved, &mut self.resampled);
        let Self {
            framer,
            spectrum,
            bin_pc,
            first_bin,
            chroma,
            pitch_classes,
            frame_chroma,
            resampled,
            novelty,
            strength,
            prev_norm,
            units,
            ..
        } = self;
        framer.push(resampled, |frame| {
            let power = spectrum.compute(frame);
            accumulate_frame(
                power,
                bin_pc,
                *first_bin,
                frame_chroma,
                chroma,
                pitch_classes,
            );
            let norm = frame_chroma.iter().map(|v| v * v).sum::<f32>().sqrt();
            let mut unit = [0.0f32; 12];
            if norm > 0.0 {
                for (u, &c) in unit.iter_mut().zip(frame_chroma.iter()) {
                    *u = c / norm;
                }
            }
            let prev_unit = units.last().copied().unwrap_or([0.0; 12]);
            let cos: f32 = unit.iter().zip(prev_unit.iter()).map(|(a, b)| a * b).sum();
            let had_prev = prev_unit.iter().any(|&v| v != 0.0);
            novelty.push(if had_prev && norm > 0.0 {
                1.0 - cos
            } else {
                0.0
            });
            strength.push(norm.min(*prev_norm));
            units.push(unit);
            *prev_norm = norm;
        });
    }

    /// The pitch-class profile of the spectral peaks' power, each frame scaled to max 1, summed over
    /// voiced frames: C first. The chroma of [`super::timbre`].
    pub fn pitch_classes(&self) -> &[f64; 12] {
        &self.pitch_classes
    }

    pub fn finish(&self, duration_s: f64) -> Option<KeyResult> {
        if duration_s < MIN_SECONDS_FOR_KEY || self.chroma.iter().all(|&c| c <= 0.0) {
            return None;
        }
        best_key(&self.chroma)
    }
}

fn accumulate_frame(
    power: &[f32],
    bin_pc: &[(u8, f32)],
    first_bin: usize,
    frame: &mut [f32; 12],
    total: &mut [f64; 12],
    pitch_classes: &mut [f64; 12],
) {
    *frame = [0.0; 12];
    let mut plain = [0.0f32; 12];
    let max_power = power[first_bin..first_bin + bin_pc.len()]
        .iter()
        .fold(0.0f32, |a, &b| a.max(b));
    if max_power <= 1e-6 {
        return; // silence: no vote
    }
    let floor = max_power * 1e-6; // peaks more than 60 dB down are noise
    for (i, &(pc, w)) in bin_pc.iter().enumerate() {
        let k = first_bin + i;
        let p = power[k];
        if p <= floor || p < power[k - 1] || p <= power[k + 1] {
            continue;
        }
        let mag = p.sqrt() * w;
        plain[pc as usize] += p * w;
        for (h, &hw) in HARMONICS.iter().enumerate() {
            // A peak at f may be harmonic h+1 of f/(h+1): credit that pitch class too.
            let shift = HARMONIC_SHIFT[h];
            frame[(pc as usize + 12 - shift) % 12] += mag * hw;
        }
    }
    add_normalised(frame, total);
    add_normalised(&plain, pitch_classes);
}

/// Adds a frame's profile, scaled to max 1, to the running sums (nothing for an empty frame).
fn add_normalised(frame: &[f32; 12], total: &mut [f64; 12]) {
    let m = frame.iter().fold(0.0f32, |a, &b| a.max(b));
    if m > 0.0 {
        for (t, &f) in total.iter_mut().zip(frame.iter()) {
            *t += (f / m) as f64;
        }
    }
}

/// Semitones from a harmonic down to its fundamental's pitch class: 2f is an octave (0),
/// 3f an octave and a fifth (7), 4f two octaves (0).
const HARMONIC_SHIFT: [usize; 4] = [0, 0, 7, 0];

fn correlation(a: &[f64; 12], b: &[f64; 12], rotate: usize) -> f64 {
    let ma = a.iter().sum::<f64>() / 12.0;
    let mb = b.iter().sum::<f64>() / 12.0;
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for i in 0..12 {
        let x = a[(i + rotate) % 12] - ma;
        let y = b[i] - mb;
        num += x * y;
        da += x * x;
        db += y * y;
    }
    if da <= 0.0 || db <= 0.0 {
        0.0
    } else {
        num / (da * db).sqrt()
    }
}

fn best_key(chroma: &[f64; 12]) -> Option<KeyResult> {
    let mut best: Option<KeyResult> = None;
    for tonic in 0..12 {
        for (minor, profile) in [(false, &MAJOR), (true, &MINOR)] {
            let r = correlation(chroma, profile, tonic);
            if best.is_none_or(|b| r > b.strength) {
                best = Some(KeyResult {
                    tonic,
                    minor,
                    strength: r,
                });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Piano-like tones (fundamental + decaying harmonics) of the given MIDI notes, mixed.
    fn chord(notes: &[u8], rate: u32, secs: f64) -> Vec<f32> {
        let n = (rate as f64 * secs) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / rate as f64;
                notes
                    .iter()
                    .map(|&m| {
                        let f = 440.0 * 2f64.powf((m as f64 - 69.0) / 12.0);
                        (1..=5)
                            .map(|h| {
                                (2.0 * std::f64::consts::PI * f * h as f64 * t).sin() / h as f64
                            })
                            .sum::<f64>()
                    })
                    .sum::<f64>() as f32
                    * 0.05
            })
            .collect()
    }

    fn detect(samples: &[f32], rate: u32) -> KeyResult {
        assert_eq!(rate, crate::audio::ANALYSIS_RATE);
        let mut k = KeyDetector::new();
        for block in samples.chunks(4096) {
            k.push(block);
        }
        k.finish(samples.len() as f64 / rate as f64).unwrap()
    }

    #[test]
    fn a_minor_cadence() {
        // i - iv - V - i in A minor (harmonic minor V: E G# B).
        let rate = 22_050;
        let mut s = chord(&[45, 57, 60, 64], rate, 2.0);
        s.extend(chord(&[50, 57, 62, 65], rate, 2.0));
        s.extend(chord(&[52, 56, 59, 64], rate, 2.0));
        s.extend(chord(&[45, 57, 60, 64], rate, 3.0));
        let k = detect(&s, rate);
        assert_eq!((k.name(), k.minor), ("A", true), "{k:?}");
    }

    #[test]
    fn e_flat_major_cadence() {
        // I - IV - V - I in Eb major.
        let rate = 22_050;
        let mut s = chord(&[51, 63, 67, 70], rate, 2.0);
        s.extend(chord(&[56, 60, 63, 68], rate, 2.0));
        s.extend(chord(&[58, 62, 65, 70], rate, 2.0));
        s.extend(chord(&[51, 63, 67, 70], rate, 3.0));
        let k = detect(&s, rate);
        assert_eq!((k.name(), k.minor), ("Eb", false), "{k:?}");
        assert!(k.strength > 0.5);
    }
}
