//! The MusiCNN front end: the analysis stream to log-mel frames, as musicnn computes them.
//!
//! In: the mono down-mix at [`ANALYSIS_RATE`] (22.05 kHz), in blocks of any length. Out: calls
//! on a [`FrameSink`], one per log-mel frame the sink wants, in order. The numbers must be the
//! ones the network was trained on (musicnn's librosa code): 16 kHz mono; STFT with n_fft 512,
//! hop 256, periodic Hann, frames centred (frame `f` covers samples `256 f - 256 .. 256 f + 256`,
//! zeros outside the track); power spectrum; 96 mel bands from 0 to 8 kHz on the Slaney mel scale
//! with Slaney area normalisation; `log10(10000 mel + 1)`. musicnn also rounds the mel power to
//! float16 before the log; that changes its patches by at most 2e-4 and is not reproduced.
//!
//! Resampling is a rational 441 → 320 polyphase filter of its own ([`ToSixteen`]): the decoder's
//! resampler puts its cutoff at 0.45 of the lower rate (7.2 kHz), which would dim the top mel
//! bands that reach 8 kHz (0.05 log units off librosa on the fixture, against 0.009 here).
//!
//! Work is skipped, not just discarded, for frames the sink does not want: the audio under them
//! is neither resampled nor transformed. A sink's wishes may only shrink: a frame it once
//! refused must stay refused (the samples for it are gone).
//!
//! Everything is allocated in [`MelFrontEnd::new`]; nothing allocates per block or frame.

use crate::audio::ANALYSIS_RATE;
use crate::dsp::dot;
use crate::features::stft::PowerSpectrum;

/// The network's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 512;
pub const HOP: usize = 256;
pub const N_MELS: usize = 96;
/// Frames in one network input (3 s).
pub const PATCH_FRAMES: usize = 187;
/// Values in one network input, frame-major.
pub const PATCH_LEN: usize = PATCH_FRAMES * N_MELS;

const MEL_FMAX: f64 = 8000.0;

/// Where frames go.
pub trait FrameSink {
    /// Whether frame `frame` will be used. Asked before the audio under the frame is resampled;
    /// once a frame is refused, it must stay refused.
    fn wants(&self, frame: u64) -> bool;
    /// Frame `frame`'s 96 log-mel values, lowest band first.
    fn frame(&mut self, frame: u64, mel: &[f32; N_MELS]);
}

/// Streaming mel spectrogram at 16 kHz from the 22.05 kHz analysis stream.
pub struct MelFrontEnd {
    resampler: ToSixteen,
    bank: MelBank,
    spectrum: PowerSpectrum,
    /// Block `block - 1` and block `block` of 16 kHz samples: the frame centred between them.
    frame: [f32; N_FFT],
    /// Index of the 256-sample block being produced next (block b = samples 256 b .. 256 b + 256).
    block: u64,
    /// Whether the block before `block` was computed (not skipped).
    prev_valid: bool,
    mel: [f32; N_MELS],
    /// Input samples seen since `reset`.
    input_len: u64,
}

impl Default for MelFrontEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontEnd {
    pub fn new() -> Self {
        MelFrontEnd {
            resampler: ToSixteen::new(),
            bank: MelBank::new(),
            spectrum: PowerSpectrum::new(N_FFT),
            frame: [0.0; N_FFT],
            block: 0,
            prev_valid: true,
            mel: [0.0; N_MELS],
            input_len: 0,
        }
    }

    /// Forgets the previous track.
    pub fn reset(&mut self) {
        self.resampler.reset();
        self.frame = [0.0; N_FFT];
        self.block = 0;
        self.prev_valid = true;
        self.input_len = 0;
    }

    /// Feeds the next samples at [`ANALYSIS_RATE`].
    pub fn push(&mut self, input: &[f32], sink: &mut dyn FrameSink) {
        self.input_len += input.len() as u64;
        self.resampler.extend(input);
        while self.resampler.available(HOP as u64 * (self.block + 1)) {
            self.step(sink, u64::MAX);
        }
        self.resampler.trim();
    }

    /// Ends the track: the last frames, zero-padded past the end as librosa's centred frames
    /// are. The track has `1 + n / 256` frames for `n > 0` samples at 16 kHz, none for `n = 0`.
    pub fn finish(&mut self, sink: &mut dyn FrameSink) {
        if self.input_len == 0 {
            return;
        }
        // librosa's resampled length: ceil(n * 320 / 441).
        let total = (self.input_len * UP as u64).div_ceil(DOWN as u64);
        self.resampler.flush();
        let last_frame = total / HOP as u64;
        while self.block <= last_frame {
            self.step(sink, total);
        }
    }

    /// Produces block `self.block` (16 kHz samples from `end` on are zeros) and its frame.
    fn step(&mut self, sink: &mut dyn FrameSink, end: u64) {
        let b = self.block;
        let needed = sink.wants(b) || sink.wants(b + 1);
        if needed {
            let (_, cur) = self.frame.split_at_mut(HOP);
            let first = HOP as u64 * b;
            let valid = end.saturating_sub(first).min(HOP as u64) as usize;
            self.resampler.produce(first, &mut cur[..valid]);
            cur[valid..].fill(0.0);
        }
        if needed && sink.wants(b) {
            debug_assert!(
                self.prev_valid,
                "frame {b} wanted after its first half was skipped"
            );
            let power = self.spectrum.compute(&self.frame);
            self.bank.apply(power, &mut self.mel);
            for m in self.mel.iter_mut() {
                *m = (10_000.0 * *m + 1.0).log10();
            }
            sink.frame(b, &self.mel);
        }
        self.frame.copy_within(HOP.., 0);
        self.prev_valid = needed;
        self.block += 1;
        self.resampler.skip_to(HOP as u64 * self.block);
    }
}

/// Resampling 22 050 → 16 000 Hz, the exact ratio 320/441, one polyphase row per output phase.
const UP: usize = 320;
const DOWN: usize = 441;
/// Taps per output (at the input rate): 4.4 ms of context.
const TAPS: usize = 96;
/// Kaiser window: about 63 dB of stop band.
const KAISER_BETA: f64 = 6.0;
/// −6 dB point. The passband is flat to ~7.2 kHz and the stop band starts near 8 kHz, close
/// to librosa's soxr "HQ" (flat to 7.3 kHz, stop at 8 kHz), which made the fixture.
const CUTOFF_HZ: f64 = 7600.0;
/// Zeros before the first sample, so that output 0 is centred on input 0.
const PAD: usize = TAPS / 2 - 1;

/// Streaming rational resampler whose outputs can be computed out of order or skipped: output
/// `n` depends only on the input around `n * 441 / 320`.
pub struct ToSixteen {
    table: Vec<f32>,
    /// Input samples, preceded by `PAD` zeros; `history[0]` is padded-input index `dropped`.
    history: Vec<f32>,
    dropped: u64,
    /// The first output that may still be asked for: everything before it can be forgotten.
    next: u64,
}

impl Default for ToSixteen {
    fn default() -> Self {
        Self::new()
    }
}

impl ToSixteen {
    pub fn new() -> Self {
        let rate = ANALYSIS_RATE as f64;
        debug_assert_eq!(rate * UP as f64 / DOWN as f64, SAMPLE_RATE as f64);
        let fc = CUTOFF_HZ / rate; // cycles per input sample
        let half = TAPS as f64 / 2.0;
        let mut table = vec![0.0f32; UP * TAPS];
        for (phase, row) in table.chunks_exact_mut(TAPS).enumerate() {
            // Tap k multiplies padded-input index i + k, where i = floor(n * 441 / 320); the
            // output sits `phase / 320` past padded index i + PAD, so at distance d from tap k.
            let frac = phase as f64 / UP as f64;
            let raw: Vec<f64> = (0..TAPS)
                .map(|k| {
                    let d = frac + PAD as f64 - k as f64;
                    let x = 2.0 * fc * d;
                    let sinc = if x.abs() < 1e-12 {
                        1.0
                    } else {
                        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                    };
                    let r = (1.0 - (d / half).powi(2)).max(0.0);
                    sinc * bessel_i0(KAISER_BETA * r.sqrt()) / bessel_i0(KAISER_BETA)
                })
                .collect();
            let sum: f64 = raw.iter().sum();
            for (t, r) in row.iter_mut().zip(&raw) {
                *t = (r / sum) as f32;
            }
        }
        let mut r = ToSixteen {
            table,
            history: Vec::with_capacity(1 << 15),
            dropped: 0,
            next: 0,
        };
        r.reset();
        r
    }

    pub fn reset(&mut self) {
        self.history.clear();
        self.history.resize(PAD, 0.0);
        self.dropped = 0;
        self.next = 0;
    }

    pub fn extend(&mut self, input: &[f32]) {
        self.history.extend_from_slice(input);
    }

    /// Zeros after the last sample, so that every output up to the end can be computed.
    pub fn flush(&mut self) {
        self.history.resize(self.history.len() + TAPS, 0.0);
    }

    /// Whether outputs `.. end` can all be computed from the input so far.
    pub fn available(&self, end: u64) -> bool {
        end == 0 || Self::start(end - 1) + TAPS as u64 <= self.dropped + self.history.len() as u64
    }

    /// Computes outputs `first .. first + out.len()`, none before the last [`Self::skip_to`].
    pub fn produce(&mut self, first: u64, out: &mut [f32]) {
        for (n, y) in (first..).zip(out.iter_mut()) {
            let start = (Self::start(n) - self.dropped) as usize;
            let phase = (n * DOWN as u64 % UP as u64) as usize;
            *y = dot(
                &self.table[phase * TAPS..(phase + 1) * TAPS],
                &self.history[start..start + TAPS],
            );
        }
    }

    /// Forgets input that no output from `next` on needs. Called once per pushed block, so the
    /// history stays a block plus a filter length long.
    fn trim(&mut self) {
        let keep_from = Self::start(self.next).min(self.dropped + self.history.len() as u64);
        let drop = (keep_from - self.dropped) as usize;
        self.history.drain(..drop);
        self.dropped = keep_from;
    }

    /// Padded-input index of output `n`'s first tap.
    fn start(n: u64) -> u64 {
        n * DOWN as u64 / UP as u64
    }

    /// Promises that no output before `n` will be asked for again.
    pub fn skip_to(&mut self, n: u64) {
        self.next = self.next.max(n);
    }
}

/// Modified Bessel function of the first kind, order 0 (power series; converges for the
/// arguments of a Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// librosa's `filters.mel(sr=16000, n_fft=512, n_mels=96, fmin=0, fmax=8000, htk=False,
/// norm="slaney")`, stored sparsely: each band's non-zero weights and the bin they start at.
struct MelBank {
    start: [usize; N_MELS],
    len: [usize; N_MELS],
    offset: [usize; N_MELS],
    weights: Vec<f32>,
}

impl MelBank {
    fn new() -> Self {
        let bins = N_FFT / 2 + 1;
        let fft_hz: Vec<f64> = (0..bins)
            .map(|k| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
            .collect();
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(MEL_FMAX));
        let edges: Vec<f64> = (0..N_MELS + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
            .collect();
        let mut bank = MelBank {
            start: [0; N_MELS],
            len: [0; N_MELS],
            offset: [0; N_MELS],
            weights: Vec::new(),
        };
        for m in 0..N_MELS {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            let w: Vec<(usize, f64)> = fft_hz
                .iter()
                .enumerate()
                .map(|(k, &f)| {
                    let rising = (f - left) / (centre - left);
                    let falling = (right - f) / (right - centre);
                    (k, rising.min(falling).max(0.0) * norm)
                })
                .filter(|&(_, w)| w > 0.0)
                .collect();
            bank.start[m] = w.first().map_or(0, |&(k, _)| k);
            bank.len[m] = w.len();
            bank.offset[m] = bank.weights.len();
            bank.weights.extend(w.iter().map(|&(_, w)| w as f32));
        }
        bank
    }

    fn apply(&self, power: &[f32], out: &mut [f32; N_MELS]) {
        for (m, o) in out.iter_mut().enumerate() {
            let w = &self.weights[self.offset[m]..self.offset[m] + self.len[m]];
            let p = &power[self.start[m]..self.start[m] + self.len[m]];
            *o = w.iter().zip(p).map(|(a, b)| a * b).sum();
        }
    }
}

// Slaney's mel scale (librosa's default, `htk=False`): linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / log_step()
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_bank_is_librosas() {
        // librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, fmin=0, fmax=8000): first
        // non-zero bin and weights of a few bands.
        let bank = MelBank::new();
        let expect: [(usize, usize, &[f32]); 3] = [
            (0, 1, &[0.03199922]),
            (10, 10, &[0.00158572, 0.0304135]),
            (50, 57, &[0.00268838, 0.01190758, 0.01307774, 0.00414951]),
        ];
        for (m, start, weights) in expect {
            assert_eq!(bank.start[m], start, "band {m}");
            let got = &bank.weights[bank.offset[m]..bank.offset[m] + bank.len[m]];
            assert_eq!(got.len(), weights.len(), "band {m}");
            for (g, w) in got.iter().zip(weights) {
                assert!((g - w).abs() < 1e-7, "band {m}: {g} vs {w}");
            }
        }
        assert_eq!((bank.start[95], bank.len[95]), (241, 15));
    }

    fn sine(rate: f64, freq: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    fn resample(input: &[f32]) -> Vec<f32> {
        let mut r = ToSixteen::new();
        r.extend(input);
        r.flush();
        let n = (input.len() as u64 * UP as u64).div_ceil(DOWN as u64);
        let mut out = vec![0.0; n as usize];
        r.produce(0, &mut out);
        out
    }

    #[test]
    fn resampler_passes_the_mel_range_and_stops_above_it() {
        let rate = ANALYSIS_RATE as f64;
        for (freq, lo, hi) in [
            (1000.0, 0.70, 0.72),
            (7000.0, 0.69, 0.72),
            (8600.0, 0.0, 0.002),
            (10000.0, 0.0, 0.001),
        ] {
            let out = resample(&sine(rate, freq, 44_100));
            let level = rms(&out[1000..out.len() - 1000]);
            assert!((lo..=hi).contains(&level), "{freq} Hz: rms {level}");
        }
        // Timing: a 1 kHz sine stays 1 kHz, with no delay (output 0 is centred on input 0).
        let out = resample(&sine(rate, 1000.0, 22_050));
        let expect = sine(SAMPLE_RATE as f64, 1000.0, out.len());
        let err = out[200..15_800]
            .iter()
            .zip(&expect[200..15_800])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn skipped_blocks_do_not_change_the_others() {
        // Every other patch refused, fed in odd block sizes: the frames that are produced are
        // the ones of an unskipped run.
        struct Collect {
            skip_odd_patches: bool,
            frames: Vec<(u64, [f32; N_MELS])>,
        }
        impl FrameSink for Collect {
            fn wants(&self, frame: u64) -> bool {
                !self.skip_odd_patches || (frame / PATCH_FRAMES as u64) % 2 == 0
            }
            fn frame(&mut self, frame: u64, mel: &[f32; N_MELS]) {
                self.frames.push((frame, *mel));
            }
        }
        let x: Vec<f32> = (0..22_050 * 8)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let run = |skip: bool, block: usize| {
            let mut fe = MelFrontEnd::new();
            let mut sink = Collect {
                skip_odd_patches: skip,
                frames: Vec::new(),
            };
            for chunk in x.chunks(block) {
                fe.push(chunk, &mut sink);
            }
            fe.finish(&mut sink);
            sink.frames
        };
        let all = run(false, 4096);
        // 8 s at 16 kHz = 128 000 samples: 1 + 128000 / 256 frames.
        assert_eq!(all.len(), 501);
        let some = run(true, 777);
        assert_eq!(some.len(), 187 + 127);
        for (f, mel) in &some {
            assert_eq!(&all[*f as usize].1, mel, "frame {f}");
        }
    }
}
