//! Rhythm: onset strength envelope, tempo (BPM) with confidence, and onset rate.
//!
//! In: power spectra of the onset STFT (one per hop). Kept: one onset-strength value per frame,
//! for the whole track (~43 floats a second: 620 KB for an hour). Out at the end: BPM,
//! confidence in [0, 1], onsets per second.
//!
//! The envelope is log-compressed spectral flux summed over mel-spaced bands, high-passed by
//! subtracting its local mean. Tempo comes in two steps:
//! 1. the tempo family: every candidate period is scored by the comb of its first multiples in
//!    the envelope's autocorrelation (a real beat period has peaks at 1, 2, 3, 4 x), weighted
//!    by a log-normal prior around 120 BPM;
//! 2. the octave, where older tools lose most of their accuracy: the winner is compared with
//!    its double and its half on two cues besides the prior: whether the harmony (chord
//!    changes, from the key detector's chroma) repeats at four beats of the candidate, and
//!    whether the kick-and-snare bands (below ~2.6 kHz, without the hi-hats that tick at the
//!    tatum) pulse at the candidate's beat as strongly as at twice it.
//!
//! The cue weights were fitted on generated corpora of three seeds and kept round.

/// Onset STFT size and hop at the analysis rate: 23 ms frames, 43 per second (the common
/// 1024/1024-at-44.1-kHz onset front end). A 1024-point frame got one clip more right on
/// one of three generated corpora (Accuracy1 0.85/0.78/0.80 against 0.85/0.75/0.80) for 9 %
/// more total analysis time.
pub const FRAME: usize = 512;
pub const HOP: usize = 512;
const BANDS: usize = 36;
/// Bands below this index (~2.6 kHz) make the kick-and-snare envelope.
const LOW_MID_BANDS: usize = 20;
/// Octave decision: weights of the harmonic cue, the kick-and-snare cue, a bias toward the
/// faster reading, and the prior's centre (BPM) and width (octaves).
const HARMONY_WEIGHT: f64 = 1.0;
const PULSE_WEIGHT: f64 = 0.5;
const FAST_BIAS: f64 = 0.5;
const PRIOR_CENTRE: f64 = 120.0;
const PRIOR_WIDTH: f64 = 0.9;
/// Harmonic activity (see `KeyDetector::harmonic_activity`) at and above which the harmonic
/// cue counts in full; below it, in proportion. Music with chord changes measured 0.026-0.15
/// on the corpora; a click track 0.002.
const FULL_HARMONY_ACTIVITY: f64 = 0.02;
/// Floor added to autocorrelations before taking ratios, so that two near-zero values do not
/// make a strong cue.
const CUE_FLOOR: f64 = 0.05;
const MIN_BPM: f64 = 40.0;
const MAX_BPM: f64 = 240.0;
/// Shortest audio that gets a tempo at all.
pub const MIN_SECONDS_FOR_TEMPO: f64 = 5.0;

/// What the key detector tells the tempo estimate about chord changes.
pub struct Harmony<'a> {
    /// Harmonic change per chroma frame.
    pub change: &'a [f32],
    pub frame_rate: f64,
    /// How much harmony there is to go by (0 for drums alone).
    pub activity: f64,
}

pub struct Rhythm {
    band_of_bin: Vec<u8>,
    band_energy: [f32; BANDS],
    prev_log: [f32; BANDS],
    have_prev: bool,
    /// Onset strength per frame, all bands ...
    envelope: Vec<f32>,
    /// ... and the kick-and-snare bands only.
    low_mid: Vec<f32>,
    /// Scratch for the high-passed envelope and the autocorrelation, reused per file.
    detrended: Vec<f32>,
    acf: Vec<f64>,
    acf_low_mid: Vec<f64>,
    acf_harmony: Vec<f64>,
    frame_rate: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RhythmResult {
    pub bpm: Option<f64>,
    pub confidence: Option<f64>,
    pub onset_rate: Option<f64>,
}

impl Rhythm {
    pub fn new(rate: u32) -> Self {
        let bins = FRAME / 2 + 1;
        let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
        let (lo, hi) = (mel(30.0), mel(rate as f64 / 2.0 * 0.95));
        let band_of_bin = (0..bins)
            .map(|k| {
                let f = k as f64 * rate as f64 / FRAME as f64;
                let b = ((mel(f) - lo) / (hi - lo) * BANDS as f64).floor();
                if f < 30.0 || b >= BANDS as f64 {
                    u8::MAX
                } else {
                    b as u8
                }
            })
            .collect();
        Rhythm {
            band_of_bin,
            band_energy: [0.0; BANDS],
            prev_log: [0.0; BANDS],
            have_prev: false,
            envelope: Vec::with_capacity(64 * 1024),
            low_mid: Vec::with_capacity(64 * 1024),
            detrended: Vec::with_capacity(64 * 1024),
            acf: Vec::with_capacity(1024),
            acf_low_mid: Vec::with_capacity(1024),
            acf_harmony: Vec::with_capacity(16 * 1024),
            frame_rate: rate as f64 / HOP as f64,
        }
    }

    pub fn reset(&mut self) {
        self.have_prev = false;
        self.envelope.clear();
        self.low_mid.clear();
    }

    /// Adds one frame's power spectrum.
    pub fn push(&mut self, power: &[f32]) {
        self.band_energy = [0.0; BANDS];
        for (&b, &p) in self.band_of_bin.iter().zip(power) {
            if let Some(e) = self.band_energy.get_mut(b as usize) {
                *e += p;
            }
        }
        let mut flux = [0.0f32; 2];
        for (band, (e, prev)) in self
            .band_energy
            .iter()
            .zip(self.prev_log.iter_mut())
            .enumerate()
        {
            // 1e-3 is ~72 dB below a full-scale sine's bin power at this size: a floor that
            // keeps dither and silence from producing flux.
            let l = fast_ln(e + 1e-3);
            if self.have_prev {
                flux[(band >= LOW_MID_BANDS) as usize] += (l - *prev).max(0.0);
            }
            *prev = l;
        }
        self.have_prev = true;
        self.envelope.push(flux[0] + flux[1]);
        self.low_mid.push(flux[0]);
    }

    /// Ends the track.
    pub fn finish(&mut self, duration_s: f64, harmony: &Harmony<'_>) -> RhythmResult {
        let fr = self.frame_rate;
        let n = self.envelope.len();
        if n < 8 {
            return RhythmResult::default();
        }
        let half = ((0.35 * fr) as usize).max(1);
        detrend(&self.envelope, half, &mut self.detrended);
        let onset_rate = count_onsets(&self.detrended) as f64 / duration_s.max(1e-9);
        let energy: f64 = self
            .detrended
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum();
        if duration_s < MIN_SECONDS_FOR_TEMPO || energy <= 1e-9 {
            return RhythmResult {
                bpm: None,
                confidence: None,
                onset_rate: Some(if energy <= 1e-9 { 0.0 } else { onset_rate }),
            };
        }
        let max_lag = (4.0 * 60.0 * fr / MIN_BPM).ceil() as usize + 2;
        autocorrelation(&self.detrended, max_lag, &mut self.acf);
        let Some(family) = tempo_family(&self.acf, fr) else {
            return RhythmResult {
                bpm: None,
                confidence: None,
                onset_rate: Some(onset_rate),
            };
        };
        detrend(&self.low_mid, half, &mut self.detrended);
        autocorrelation(&self.detrended, max_lag, &mut self.acf_low_mid);
        // Chord changes: high-pass the novelty over ~3.3 s (9 frames) like the envelope.
        detrend(harmony.change, 4, &mut self.detrended);
        autocorrelation(
            &self.detrended,
            self.detrended.len().saturating_sub(1),
            &mut self.acf_harmony,
        );
        let cues = OctaveCues {
            pulse: &self.acf_low_mid,
            pulse_rate: fr,
            harmony: &self.acf_harmony,
            harmony_rate: harmony.frame_rate,
            harmony_weight: HARMONY_WEIGHT * (harmony.activity / FULL_HARMONY_ACTIVITY).min(1.0),
        };
        let bpm = cues.choose_octave(family);
        let confidence = acf_at(&self.acf, 60.0 * fr / bpm).clamp(0.0, 1.0);
        RhythmResult {
            bpm: Some(bpm),
            confidence: Some(confidence),
            onset_rate: Some(onset_rate),
        }
    }
}

/// `out[i]` = max(0, x[i] - mean of x over i-half..=i+half), the window clipped at the ends.
fn detrend(x: &[f32], half: usize, out: &mut Vec<f32>) {
    out.clear();
    let n = x.len();
    let mut sum = 0.0f64;
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..n {
        while hi < n && hi <= i + half {
            sum += x[hi] as f64;
            hi += 1;
        }
        while lo + half < i {
            sum -= x[lo] as f64;
            lo += 1;
        }
        let mean = sum / (hi - lo) as f64;
        out.push((x[i] as f64 - mean).max(0.0) as f32);
    }
}

/// The evidence for choosing between a tempo, its double and its half.
struct OctaveCues<'a> {
    /// Autocorrelation of the kick-and-snare envelope, per envelope frame.
    pulse: &'a [f64],
    pulse_rate: f64,
    /// Autocorrelation of the chord-change novelty, per chroma frame.
    harmony: &'a [f64],
    harmony_rate: f64,
    /// The harmonic cue's weight, less where there is little harmony to go by.
    harmony_weight: f64,
}

impl OctaveCues<'_> {
    fn log_prior(bpm: f64) -> f64 {
        let z = (bpm / PRIOR_CENTRE).log2() / PRIOR_WIDTH;
        -0.5 * z * z
    }

    /// Whether `2 * slow` explains the music better than `slow`.
    fn faster_wins(&self, slow: f64) -> bool {
        let fast = 2.0 * slow;
        let ratio = |a: f64, b: f64| ((a + CUE_FLOOR) / (b + CUE_FLOOR)).ln();
        let beat = |bpm: f64| 60.0 * self.pulse_rate / bpm;
        let bar = |bpm: f64| 4.0 * 60.0 * self.harmony_rate / bpm;
        let pulse = ratio(
            acf_at(self.pulse, beat(fast)),
            acf_at(self.pulse, beat(slow)),
        );
        let harmony = ratio(
            acf_at(self.harmony, bar(fast)).max(0.0),
            acf_at(self.harmony, bar(slow)).max(0.0),
        );
        self.harmony_weight * harmony + PULSE_WEIGHT * pulse + FAST_BIAS + Self::log_prior(fast)
            - Self::log_prior(slow)
            > 0.0
    }

    fn choose_octave(&self, bpm: f64) -> f64 {
        if 2.0 * bpm <= MAX_BPM && self.faster_wins(bpm) {
            2.0 * bpm
        } else if bpm / 2.0 >= MIN_BPM && !self.faster_wins(bpm / 2.0) {
            bpm / 2.0
        } else {
            bpm
        }
    }
}

/// Autocorrelation, normalised so that lag 0 is 1, for lags 0..=max_lag.
fn autocorrelation(x: &[f32], max_lag: usize, acf: &mut Vec<f64>) {
    acf.clear();
    let n = x.len();
    for lag in 0..=max_lag.min(n.saturating_sub(1)) {
        let mut s = [0.0f32; 4];
        let a = &x[..n - lag];
        let b = &x[lag..];
        let chunks = a.len() / 4;
        for i in 0..chunks {
            for j in 0..4 {
                s[j] += a[4 * i + j] * b[4 * i + j];
            }
        }
        let mut total: f64 = s.iter().map(|&v| v as f64).sum();
        for i in chunks * 4..a.len() {
            total += (a[i] * b[i]) as f64;
        }
        // Unbiased: long lags have fewer products.
        acf.push(total / (n - lag) as f64);
    }
    let zero = acf.first().copied().unwrap_or(0.0);
    if zero > 0.0 {
        for v in acf.iter_mut() {
            *v /= zero;
        }
    }
}

/// Linear interpolation of the ACF at a fractional lag.
fn acf_at(acf: &[f64], lag: f64) -> f64 {
    let i = lag.floor() as usize;
    if i + 1 >= acf.len() {
        return 0.0;
    }
    let t = lag - i as f64;
    acf[i] * (1.0 - t) + acf[i + 1] * t
}

/// The best-scoring tempo under the comb and the prior, to 0.05 BPM; its octave is settled
/// later.
fn tempo_family(acf: &[f64], fr: f64) -> Option<f64> {
    if acf.len() < 8 {
        return None;
    }
    let score = |bpm: f64| -> f64 {
        let period = 60.0 * fr / bpm;
        let comb = (1..=4).map(|k| acf_at(acf, k as f64 * period)).sum::<f64>() / 4.0;
        comb.max(0.0) * OctaveCues::log_prior(bpm).exp()
    };
    let mut best = (0.0f64, 0.0f64);
    let mut bpm = MIN_BPM;
    while bpm <= MAX_BPM {
        let s = score(bpm);
        if s > best.1 {
            best = (bpm, s);
        }
        bpm += 0.5;
    }
    if best.1 <= 0.0 {
        return None;
    }
    let mut fine = best;
    let mut b = best.0 - 0.5;
    while b <= best.0 + 0.5 {
        let s = score(b);
        if s > fine.1 {
            fine = (b, s);
        }
        b += 0.05;
    }
    Some(fine.0)
}

/// Peaks of the detrended envelope that stand out from the track's typical level.
fn count_onsets(env: &[f32]) -> usize {
    let n = env.len();
    if n < 3 {
        return 0;
    }
    let mean = env.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = env.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    let threshold = (mean + 0.5 * var.sqrt()) as f32;
    let mut count = 0;
    let mut last = None::<usize>;
    for i in 0..n {
        let v = env[i];
        if v <= threshold {
            continue;
        }
        let lo = i.saturating_sub(3);
        let hi = (i + 3).min(n - 1);
        if env[lo..=hi].iter().all(|&u| u <= v) && last.is_none_or(|l| i - l > 2) {
            count += 1;
            last = Some(i);
        }
    }
    count
}

/// ln(x) for x > 0 to about 1e-4 absolute, without a libm call per band.
#[inline]
fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // in [1, 2)
    // ln(m) on [1, 2) by a least-squares degree-4 polynomial in (m - 1): error < 2.5e-4.
    let t = mantissa - 1.0;
    let ln_m = t * (0.995_434_1 + t * (-0.464_091_3 + t * (0.216_428_9 + t * -0.054_868_3)));
    ln_m + exponent as f32 * std::f32::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ln_is_close() {
        for &x in &[1e-3f32, 0.5, 1.0, 2.0, 3.7, 1e4, 6.5e4] {
            assert!((fast_ln(x) - x.ln()).abs() < 2e-3, "{x}");
        }
    }
}
