//! Spectral shape and zero-crossing rate.
//!
//! In: power spectra of the onset STFT, and the mono samples at the analysis rate. Kept: a few
//! running sums. Out: mean spectral centroid in Hz over frames with sound in them (silent
//! frames would drag it to 0), and zero-crossing rate as sign changes per sample at the
//! analysis rate (0..1).

pub struct Spectral {
    bin_hz: f32,
    centroid_sum: f64,
    centroid_frames: u64,
    crossings: u64,
    samples: u64,
    last_sign: bool,
    sound: bool,
}

impl Spectral {
    pub fn new(rate: u32, fft_size: usize) -> Self {
        Spectral {
            bin_hz: rate as f32 / fft_size as f32,
            centroid_sum: 0.0,
            centroid_frames: 0,
            crossings: 0,
            samples: 0,
            last_sign: false,
            sound: false,
        }
    }

    pub fn reset(&mut self) {
        self.centroid_sum = 0.0;
        self.centroid_frames = 0;
        self.crossings = 0;
        self.samples = 0;
        self.sound = false;
    }

    pub fn push_spectrum(&mut self, power: &[f32]) {
        let (mut num, mut den) = (0.0f32, 0.0f32);
        for (k, &p) in power.iter().enumerate() {
            let mag = p.sqrt();
            num += k as f32 * mag;
            den += mag;
        }
        // A frame more than ~90 dB below full scale counts as silence.
        if den > 1e-2 {
            self.centroid_sum += (num / den * self.bin_hz) as f64;
            self.centroid_frames += 1;
        }
    }

    pub fn push_samples(&mut self, samples: &[f32]) {
        let Some(&first) = samples.first() else {
            return;
        };
        if self.samples == 0 {
            self.last_sign = first >= 0.0; // the first sample has no predecessor
        }
        // Pairwise over the block (vectorises), plus the pair across the block boundary.
        let inside = samples
            .windows(2)
            .map(|w| ((w[0] >= 0.0) != (w[1] >= 0.0)) as u32)
            .sum::<u32>() as u64;
        let across = ((first >= 0.0) != self.last_sign) as u64;
        let sound = samples.iter().any(|&v| v != 0.0);
        self.crossings += inside + across;
        self.last_sign = samples[samples.len() - 1] >= 0.0;
        self.samples += samples.len() as u64;
        self.sound |= sound;
    }

    pub fn centroid_hz(&self) -> Option<f64> {
        (self.centroid_frames > 0).then(|| self.centroid_sum / self.centroid_frames as f64)
    }

    pub fn zcr(&self) -> Option<f64> {
        (self.sound && self.samples > 1).then(|| self.crossings as f64 / (self.samples - 1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::stft::PowerSpectrum;

    #[test]
    fn centroid_and_zcr_of_a_sine() {
        let rate = 22_050;
        let f = 2_000.0;
        let x: Vec<f32> = (0..rate)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / rate as f64).sin() as f32)
            .collect();
        let mut s = Spectral::new(rate as u32, 1024);
        let mut ps = PowerSpectrum::new(1024);
        for frame in x.chunks_exact(1024) {
            s.push_spectrum(ps.compute(frame));
        }
        s.push_samples(&x[..1000]);
        s.push_samples(&x[1000..]);
        let c = s.centroid_hz().unwrap();
        assert!((c - f).abs() < 60.0, "{c}");
        let z = s.zcr().unwrap();
        let expect = 2.0 * f / rate as f64;
        assert!((z - expect).abs() < 0.002, "{z} vs {expect}");
    }

    #[test]
    fn silence_has_neither() {
        let mut s = Spectral::new(22_050, 1024);
        s.push_spectrum(&[0.0; 513]);
        s.push_samples(&[0.0; 4000]);
        assert_eq!(s.centroid_hz(), None);
        assert_eq!(s.zcr(), None);
    }
}
