//! Loudness: EBU R128 / ITU-R BS.1770-4 integrated loudness (LUFS) and plain RMS level.
//!
//! In: planar samples per channel at the source rate (loudness is defined on the channels as
//! they are, not on a down-mix: a wide stereo mix is 3 dB louder than its mono fold-down).
//! Out: integrated LUFS (gated: absolute -70 LUFS, relative -10 LU) and RMS in dBFS averaged
//! over channels; `None` for digital silence.
//!
//! K-weighting is the standard's two biquads, derived for any sample rate (the 48 kHz
//! coefficients of BS.1770 come out of the same formulas). Filters run in f32, channel by
//! channel over contiguous slices; what is kept per file is one f32 energy per 100 ms.

use crate::audio::Speaker;

const MAX_CHANNELS: usize = crate::audio::MAX_CHANNELS;

#[derive(Clone, Copy, Default)]
struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
}

#[derive(Clone, Copy, Default)]
struct ChannelState {
    z: [f32; 4],
    weight: f32,
    raw_sq: f64,
}

pub struct LoudnessMeter {
    shelf: Biquad,
    highpass: Biquad,
    channels: heapless::Vec<ChannelState, MAX_CHANNELS>,
    sub_block_len: usize,
    sub_fill: usize,
    sub_energy: f64,
    /// Weighted mean-square energy of each 100 ms sub-block.
    sub_blocks: Vec<f32>,
    frames: u64,
}

impl Default for LoudnessMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LoudnessMeter {
    pub fn new() -> Self {
        LoudnessMeter {
            shelf: Biquad::default(),
            highpass: Biquad::default(),
            channels: heapless::Vec::new(),
            sub_block_len: 4800,
            sub_fill: 0,
            sub_energy: 0.0,
            sub_blocks: Vec::with_capacity(12_000),
            frames: 0,
        }
    }

    /// Starts a new measurement for a stream with this rate and channel layout.
    pub fn begin(&mut self, rate: u32, layout: &[Speaker]) {
        let fs = rate as f64;
        // Stage 1: the head's acoustic effect, a +4 dB high shelf.
        let (f0, gain_db, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
        let k = (std::f64::consts::PI * f0 / fs).tan();
        let vh = 10f64.powf(gain_db / 20.0);
        let vb = vh.powf(0.4996667741545416);
        let a0 = 1.0 + k / q + k * k;
        self.shelf = Biquad {
            b0: ((vh + vb * k / q + k * k) / a0) as f32,
            b1: (2.0 * (k * k - vh) / a0) as f32,
            b2: ((vh - vb * k / q + k * k) / a0) as f32,
            a1: (2.0 * (k * k - 1.0) / a0) as f32,
            a2: ((1.0 - k / q + k * k) / a0) as f32,
        };
        // Stage 2: the RLB high-pass.
        let (f0, q) = (38.13547087602444, 0.5003270373238773);
        let k = (std::f64::consts::PI * f0 / fs).tan();
        let a0 = 1.0 + k / q + k * k;
        self.highpass = Biquad {
            b0: 1.0,
            b1: -2.0,
            b2: 1.0,
            a1: (2.0 * (k * k - 1.0) / a0) as f32,
            a2: ((1.0 - k / q + k * k) / a0) as f32,
        };
        self.channels.clear();
        for speaker in layout {
            let weight = match speaker {
                Speaker::Front => 1.0,
                Speaker::Surround => 1.41,
                Speaker::Lfe => 0.0,
            };
            let _ = self.channels.push(ChannelState {
                weight,
                ..Default::default()
            });
        }
        self.sub_block_len = ((fs * 0.1).round() as usize).max(1);
        self.sub_fill = 0;
        self.sub_energy = 0.0;
        self.sub_blocks.clear();
        self.frames = 0;
    }

    pub fn push(&mut self, planes: &[&[f32]]) {
        let Some(first) = planes.first() else { return };
        let n = first.len();
        let mut start = 0;
        while start < n {
            let end = n.min(start + self.sub_block_len - self.sub_fill);
            // Up to four channels go through the filters together, one per SIMD lane: an IIR
            // is a serial recurrence, so independent channels are the parallelism there is.
            for group in (0..self.channels.len()).step_by(LANES) {
                let width = LANES.min(self.channels.len() - group);
                let mut z = [[0.0f32; LANES]; 4];
                let mut weight = [0.0f32; LANES];
                // Unused lanes repeat the group's first channel; their sums are not read.
                let mut slices: [&[f32]; LANES] = [&planes[group][start..end]; LANES];
                for l in 0..width {
                    let ch = &self.channels[group + l];
                    for (k, zk) in z.iter_mut().enumerate() {
                        zk[l] = ch.z[k];
                    }
                    weight[l] = ch.weight;
                    slices[l] = &planes[group + l][start..end];
                }
                let (k_sq, raw_sq) =
                    filter_lanes(&self.shelf, &self.highpass, &mut z, &slices, end - start);
                for l in 0..width {
                    let ch = &mut self.channels[group + l];
                    for (k, zk) in z.iter().enumerate() {
                        ch.z[k] = zk[l];
                    }
                    ch.raw_sq += raw_sq[l] as f64;
                    self.sub_energy += weight[l] as f64 * k_sq[l] as f64;
                }
            }
            self.sub_fill += end - start;
            if self.sub_fill == self.sub_block_len {
                self.sub_blocks
                    .push((self.sub_energy / self.sub_block_len as f64) as f32);
                self.sub_fill = 0;
                self.sub_energy = 0.0;
            }
            start = end;
        }
        self.frames += n as u64;
    }

    /// Integrated loudness in LUFS, or `None` when no 400 ms block passes the gates.
    pub fn integrated_lufs(&self) -> Option<f64> {
        let blocks = self
            .sub_blocks
            .windows(4)
            .map(|w| w.iter().map(|&e| e as f64).sum::<f64>() / 4.0);
        let lufs = |z: f64| -0.691 + 10.0 * z.log10();
        let abs_gate = 10f64.powf((-70.0 + 0.691) / 10.0);
        let (mut sum, mut count) = (0.0, 0usize);
        for z in blocks.clone().filter(|&z| z > abs_gate) {
            sum += z;
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let rel_gate = 10f64.powf((lufs(sum / count as f64) - 10.0 + 0.691) / 10.0);
        let (mut sum, mut count) = (0.0, 0usize);
        for z in blocks.filter(|&z| z > abs_gate && z > rel_gate) {
            sum += z;
            count += 1;
        }
        (count > 0).then(|| lufs(sum / count as f64))
    }

    /// RMS level in dBFS (power averaged over channels), `None` for digital silence.
    pub fn rms_db(&self) -> Option<f64> {
        if self.frames == 0 || self.channels.is_empty() {
            return None;
        }
        let total: f64 = self.channels.iter().map(|c| c.raw_sq).sum();
        let mean = total / (self.frames as f64 * self.channels.len() as f64);
        (mean > 1e-20).then(|| 10.0 * mean.log10())
    }
}

const LANES: usize = 4;
type Lanes = [f32; LANES];

#[inline(always)]
fn lanes(f: impl Fn(usize) -> f32) -> Lanes {
    [f(0), f(1), f(2), f(3)]
}

/// Both K-weighting stages (transposed direct form II) over `n` frames of up to four channels
/// at once, one per lane (each slice at least `n` long); returns per lane the sums of squares of the weighted and raw signal.
fn filter_lanes(
    s1: &Biquad,
    s2: &Biquad,
    z: &mut [Lanes; 4],
    x: &[&[f32]; LANES],
    n: usize,
) -> (Lanes, Lanes) {
    // Equal, known lengths let the compiler drop the bounds checks in the loop.
    let (x0, x1, x2, x3) = (&x[0][..n], &x[1][..n], &x[2][..n], &x[3][..n]);
    let [mut z0, mut z1, mut z2, mut z3] = *z;
    let mut k_sq = [0.0f32; LANES];
    let mut raw_sq = [0.0f32; LANES];
    for i in 0..n {
        let v = [x0[i], x1[i], x2[i], x3[i]];
        let y = lanes(|l| s1.b0 * v[l] + z0[l]);
        z0 = lanes(|l| (s1.b1 * v[l] + z1[l]) - s1.a1 * y[l]);
        z1 = lanes(|l| s1.b2 * v[l] - s1.a2 * y[l]);
        let w = lanes(|l| y[l] + z2[l]); // stage 2 has b0 = 1, b1 = -2, b2 = 1
        z2 = lanes(|l| (z3[l] - 2.0 * y[l]) - s2.a1 * w[l]);
        z3 = lanes(|l| y[l] - s2.a2 * w[l]);
        k_sq = lanes(|l| k_sq[l] + w[l] * w[l]);
        raw_sq = lanes(|l| raw_sq[l] + v[l] * v[l]);
    }
    *z = [z0, z1, z2, z3];
    (k_sq, raw_sq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(rate: u32, layout: &[Speaker], planes: &[Vec<f32>]) -> LoudnessMeter {
        let mut m = LoudnessMeter::new();
        m.begin(rate, layout);
        let n = planes[0].len();
        let mut i = 0;
        while i < n {
            let e = (i + 1234).min(n);
            let refs: Vec<&[f32]> = planes.iter().map(|p| &p[i..e]).collect();
            m.push(&refs);
            i = e;
        }
        m
    }

    fn sine(rate: u32, freq: f64, dbfs: f64, secs: f64) -> Vec<f32> {
        let amp = 10f64.powf(dbfs / 20.0);
        (0..(rate as f64 * secs) as usize)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32
            })
            .collect()
    }

    /// EBU Tech 3341 test 1: stereo 1 kHz sine at -23 dBFS reads -23.0 ± 0.1 LUFS.
    #[test]
    fn tech3341_stereo_sine_at_minus_23() {
        for &rate in &[44_100u32, 48_000, 96_000] {
            let s = sine(rate, 1000.0, -23.0, 20.0);
            let m = measure(rate, &[Speaker::Front, Speaker::Front], &[s.clone(), s]);
            let l = m.integrated_lufs().unwrap();
            assert!((l + 23.0).abs() <= 0.1, "{rate} Hz: {l}");
        }
    }

    /// Tech 3341 test 3: -36 / -23 / -36 dBFS for 10/60/10 s gates the quiet parts: -23.0.
    #[test]
    fn tech3341_relative_gate() {
        let rate = 48_000;
        let mut s = sine(rate, 1000.0, -36.0, 10.0);
        s.extend(sine(rate, 1000.0, -23.0, 60.0));
        s.extend(sine(rate, 1000.0, -36.0, 10.0));
        let m = measure(rate, &[Speaker::Front, Speaker::Front], &[s.clone(), s]);
        let l = m.integrated_lufs().unwrap();
        assert!((l + 23.0).abs() <= 0.1, "{l}");
    }

    #[test]
    fn silence_has_no_loudness() {
        let z = vec![0.0f32; 48_000 * 3];
        let m = measure(48_000, &[Speaker::Front], &[z]);
        assert_eq!(m.integrated_lufs(), None);
        assert_eq!(m.rms_db(), None);
    }

    #[test]
    fn rms_of_full_scale_sine_is_minus_3() {
        let s = sine(44_100, 440.0, 0.0, 2.0);
        let m = measure(44_100, &[Speaker::Front], &[s]);
        assert!((m.rms_db().unwrap() + 3.01).abs() < 0.02);
    }
}
